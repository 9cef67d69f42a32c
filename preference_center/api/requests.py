"""The API's request bodies as pydantic models: each limit is written once, here.

``openapi.py`` takes their JSON Schema for its components, and the routes
validate with them, so the document and the code cannot disagree on a batch
size or a field length. ``parse`` turns pydantic's errors into the API's own
``{"code", "message"}`` answer for the first thing wrong.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from .. import jurisdictions, languages
from ..models import BASES, INVITED, SUBSCRIBED
from ..validation import MAX_LENGTH as EMAIL_MAX_LENGTH
from ..validation import InvalidAddress, email_address, is_encodable

MAX_BATCH = 1000
TEXT_MAX = 200
SLUG_MAX = 64
BASIS_MAX = 32
EVIDENCE_MAX = 2000


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL refuses NUL in text
        raise ValueError("nul")
    if not is_encodable(value):  # JSON may carry a lone surrogate ("\ud800"); UTF-8 cannot
        raise ValueError("surrogate")
    return value


def _address(value: str) -> str:
    try:
        return email_address(value)
    except InvalidAddress as error:
        raise ValueError(str(error)) from None


def _iso_date(value: object) -> object:
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("date")
    return date.fromisoformat(value)


def _text(max_length: int) -> object:
    """A trimmed, non-empty string of at most ``max_length`` characters, no NUL."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
        AfterValidator(_no_nul),
    ]


Email = Annotated[
    str,
    StringConstraints(max_length=EMAIL_MAX_LENGTH),
    AfterValidator(_no_nul),
    AfterValidator(_address),
    Field(json_schema_extra={"format": "email", "example": "pat@example.com"}),
]
Slug = Annotated[_text(SLUG_MAX), Field(json_schema_extra={"example": "market-insights"})]
Text = _text(TEXT_MAX)
OptionalDate = Annotated[
    date | None,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": ["string", "null"], "format": "date"}),
]


class Body(BaseModel):
    """Unknown fields are ignored, as before; known ones are checked."""

    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class LinkRequest(Body):
    email: Email
    list_: Slug | None = Field(None, alias="list")


class LinkBatchRequest(Body):
    items: Annotated[list[LinkRequest], Field(min_length=1, max_length=MAX_BATCH)]


def _law(parse):
    """A jurisdictions parser as a validator: its refusal becomes the field's message."""

    def validate(value: str | None) -> str | None:
        try:
            return parse(value)
        except jurisdictions.JurisdictionError as error:
            raise ValueError(f"law: {error}") from None

    return AfterValidator(validate)


Jurisdiction = Annotated[
    str | None,
    _law(jurisdictions.parse),
    WithJsonSchema(
        {
            "type": ["string", "null"],
            "pattern": "^[A-Za-z]{2}$",
            "description": "ISO 3166-1 alpha-2 country code, e.g. US, CA, GB, DE.",
        }
    ),
]
SubscriberType = Annotated[
    str | None,
    _law(jurisdictions.parse_subscriber_type),
    WithJsonSchema({"enum": ["individual", "corporate", None]}),
]


def _language(value: str | None) -> str | None:
    """A BCP 47 tag of a language we speak, cleaned up (``fr-ca`` → ``fr``), or None."""
    if value is None:
        return None
    known = languages.normalise(value)
    if known is None:
        tags = ", ".join(languages.SUPPORTED)
        raise ValueError(f"say: 'language' must be a BCP 47 tag of {tags}.")
    return known


Language = Annotated[
    str | None,
    AfterValidator(_language),
    WithJsonSchema(
        {
            "type": ["string", "null"],
            "maxLength": 35,
            "description": "BCP 47: en, fr, de, es, pt-BR or ar (fr-CA is read as fr).",
        }
    ),
]


class SubscriptionRequest(Body):
    list_: Slug = Field(alias="list")
    state: Literal["invited", "subscribed"]
    source: Annotated[Text, Field(json_schema_extra={"example": "signup form"})]
    added_by: Annotated[Text, Field(json_schema_extra={"example": "Dana Reyes"})]
    basis: Annotated[
        _text(BASIS_MAX), WithJsonSchema({"enum": list(BASES)})
    ]  # unknown bases are the consent rules' to refuse, in their words
    evidence: (
        Annotated[str, StringConstraints(max_length=EVIDENCE_MAX), AfterValidator(_no_nul)] | None
    ) = None
    basis_date: Annotated[
        OptionalDate,
        Field(description="The purchase, inquiry, donation, capture or sale date."),
    ] = None
    relationship_ended_on: Annotated[
        OptionalDate,
        Field(
            description="CASL s.10(14): the end of an ongoing relationship, which starts "
            "the 2-year clock (implied_purchase, implied_nonbusiness)."
        ),
    ] = None


class ContactRequest(Body):
    email: Email
    name: Annotated[str, StringConstraints(max_length=TEXT_MAX), AfterValidator(_no_nul)] | None = (
        None
    )
    jurisdiction: Jurisdiction = None
    subscriber_type: SubscriberType = None
    language: Language = None
    subscriptions: list[SubscriptionRequest] | None = None


class ConsentQuery(Body):
    """One "may I send?" question: an address and a list slug, answered as the GET answers."""

    # Any string the GET would take: an address that is not valid is answered, not refused.
    email: _text(EMAIL_MAX_LENGTH)
    list_: Slug = Field(alias="list")


class ConsentBatch(Body):
    """``POST /consent``: up to ``MAX_BATCH`` questions, answered in order."""

    items: Annotated[list[ConsentQuery], Field(min_length=1, max_length=MAX_BATCH)]


assert (INVITED, SUBSCRIBED) == ("invited", "subscribed")  # the Literal above


class RequestInvalid(ValueError):
    """A body that is not what the API takes: a code and a message for the caller."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: object) -> M:
    """``data`` as ``model``, or ``RequestInvalid`` naming the first thing wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _first(error) from None


def _first(error: ValidationError) -> RequestInvalid:
    problem = error.errors(include_url=False)[0]
    names = [part for part in problem["loc"] if isinstance(part, str)]
    name = names[-1] if names else ""
    kind, ctx = problem["type"], problem.get("ctx") or {}
    if name == "subscriptions" and kind == "list_type":
        return RequestInvalid("invalid_request", "'subscriptions' must be an array.")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        what = "subscription" if "subscriptions" in names else "item"
        return RequestInvalid("invalid_request", f"Each {what} must be a JSON object.")
    if kind == "string_too_long":
        message = f"'{name}' is longer than {ctx['max_length']} characters."
        return RequestInvalid("invalid_email" if name == "email" else "invalid_request", message)
    if kind == "value_error" and str(ctx.get("error")) == "nul":
        code = "invalid_email" if name == "email" else "invalid_request"
        return RequestInvalid(code, f"'{name}' must not contain NUL characters.")
    if kind == "value_error" and str(ctx.get("error")) == "surrogate":
        code = "invalid_email" if name == "email" else "invalid_request"
        return RequestInvalid(code, f"'{name}' is not valid Unicode text.")
    if kind == "value_error" and str(ctx.get("error")).startswith("law: "):
        return RequestInvalid("invalid_request", str(ctx.get("error"))[5:])
    if kind == "value_error" and str(ctx.get("error")).startswith("say: "):
        return RequestInvalid("invalid_request", str(ctx.get("error"))[5:])
    if name in ("jurisdiction", "subscriber_type", "language"):
        return RequestInvalid("invalid_request", f"'{name}' must be a string.")
    if name == "email":
        if kind == "value_error":
            return RequestInvalid("invalid_email", str(ctx.get("error")))
        return RequestInvalid("invalid_email", "'email' must be an email address (a string).")
    if name == "state":
        return RequestInvalid(
            "invalid_state", "'state' must be 'invited' or 'subscribed' via the API."
        )
    if name in ("basis_date", "relationship_ended_on"):
        return RequestInvalid("invalid_request", f"'{name}' must be a date (YYYY-MM-DD).")
    if name == "items":
        return RequestInvalid("invalid_request", "'items' must be a non-empty array.")
    return RequestInvalid("invalid_request", f"'{name}' must be a non-empty string.")
