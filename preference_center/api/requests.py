"""Request bodies of the API as pydantic v2 models: one place that says what is accepted.

A body that does not fit is a 422 naming the first field that is wrong.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The batch size every batch route takes.
MAX_BATCH = 1000


def _plain(value: str) -> str:
    # PostgreSQL refuses NUL in text; a stripped empty string is no value.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


class ConsentQuery(BaseModel):
    """One "may I send?" question: an address and a list slug."""

    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=1, max_length=320)
    list: str = Field(min_length=1, max_length=64)

    _plain_text = field_validator("email", "list")(_plain)


class ConsentBatch(BaseModel):
    """``POST /consent``: up to ``MAX_BATCH`` questions, answered in order."""

    model_config = ConfigDict(extra="ignore")

    items: list[ConsentQuery] = Field(min_length=1, max_length=MAX_BATCH)
