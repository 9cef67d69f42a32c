"""Request inputs that no hostile client can turn into a 500.

- Whole numbers in URLs and query strings fit a 64-bit database integer; a
  larger one names nothing (404 in a path, ``None`` from ``bounded_id``).
- JSON nested deeper than the parser's stack is a malformed body (400), not a
  RecursionError.
"""

from __future__ import annotations

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

# The largest id a database column holds (BIGINT on PostgreSQL, INTEGER on SQLite).
MAX_ID = 2**63 - 1


class BoundedInteger(IntegerConverter):
    """``<int:…>`` as werkzeug has it, but never more than a database id can be."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def bounded_id(text: str | None) -> int | None:
    """A positive id from a query string (``before=…``), or None when it names no row."""
    text = (text or "").strip()
    # isdigit() alone accepts "²" and "①", which int() refuses.
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, where a body too deeply nested to parse is malformed JSON."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            # Flask turns a ValueError into 400 (or None for get_json(silent=True)).
            raise ValueError("The JSON is nested too deeply.") from None


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedInteger
    app.json = GuardedJSONProvider(app)
