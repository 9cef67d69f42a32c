"""The OpenAPI 3.1 document of /api/v1: paths by hand, request bodies from ``requests.py``.

The request schemas are the pydantic models' own JSON Schema, so a limit (the
batch size, a field's length) is written once. tests/test_api_schema.py runs
schemathesis against the document: a route, status code, content type or
field that drifts from the code fails the suite.
"""

from __future__ import annotations

from pydantic.json_schema import models_json_schema

from .. import audience
from .requests import MAX_BATCH, ConsentBatch, ContactRequest, LinkBatchRequest, LinkRequest


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra) -> dict:
    return {"type": [kind, "null"], **extra}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json(description: str, schema: dict, **extra) -> dict:
    content = {"application/json": {"schema": schema}}
    return {"description": description, "content": content, **extra}


UNAUTHORIZED = _error("Missing, wrong or revoked API key.")
FORBIDDEN = _error("The key lacks the scope this route needs.")
TOO_MANY = _error("Rate limit of this key exceeded.")
BAD_REQUEST = _error("The body is not a JSON object, or a parameter is malformed.")
TOO_LARGE = _error("The body (or the batch) is too large.")
INVALID = _error("A field is missing or wrong, or a consent rule refuses the change.")


def request_schemas() -> dict:
    """The request bodies' JSON Schemas, each referring to the others by component."""
    _, schemas = models_json_schema(
        [
            (model, "validation")
            for model in (LinkRequest, LinkBatchRequest, ContactRequest, ConsentBatch)
        ],
        ref_template="#/components/schemas/{model}",
    )
    return schemas["$defs"]


_REQUESTS = request_schemas()
_EMAIL = _REQUESTS["LinkRequest"]["properties"]["email"]
_SLUG = _REQUESTS["SubscriptionRequest"]["properties"]["list"]

SCHEMAS = {
    **_REQUESTS,
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "ListUnsubscribeHeaders": {
        "type": "object",
        "required": ["List-Unsubscribe", "List-Unsubscribe-Post"],
        "properties": {
            "List-Unsubscribe": {"type": "string", "pattern": "^<https?://[^<>\\s]+>$"},
            "List-Unsubscribe-Post": {"const": "List-Unsubscribe=One-Click"},
        },
    },
    "Links": {
        "type": "object",
        "required": ["email", "list", "manage_url"],
        "properties": {
            "email": {"type": "string"},
            "list": _nullable("string"),
            "manage_url": {"type": "string", "format": "uri"},
            "unsubscribe_url": {"type": "string", "format": "uri"},
            "headers": _ref("ListUnsubscribeHeaders"),
            "metadata": {
                "type": "object",
                "description": "Attach as SendGrid custom args, Mailgun variables or Postmark "
                "metadata, so the ESP's feedback names the list.",
                "required": ["pc_list"],
                "properties": {"pc_list": {"type": "string"}},
            },
        },
    },
    "LinkItemError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "email": {"type": "string"},
            "list": _nullable("string"),
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "LinkBatch": {
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "items": {"anyOf": [_ref("Links"), _ref("LinkItemError")]},
            }
        },
    },
    "Answer": {
        "type": "object",
        "required": [
            "allowed",
            "status",
            "basis",
            "reason",
            "deliver_to",
            "expires_at",
            "jurisdiction",
        ],
        "properties": {
            "allowed": {"type": "boolean"},
            "status": {
                "type": "string",
                "description": "subscribed, invited, pending, unsubscribed, expired, paused, "
                "not_subscribed, business_declined, undeliverable, wrong_address, unknown "
                "or (in a batch) unknown_list.",
            },
            "basis": _nullable("string"),
            "reason": {"type": "string", "description": "A refusal names the rule."},
            "deliver_to": _nullable("string"),
            "expires_at": _nullable("string", format="date-time"),
            "jurisdiction": {
                **_nullable("string"),
                "description": "ISO 3166-1 alpha-2 (the contact's, else DEFAULT_JURISDICTION); "
                "null when unknown.",
            },
            "paused_until": _nullable("string", format="date-time"),
            "cadence": _nullable("string"),
            "language": {
                **_nullable("string"),
                "description": "The contact's language (BCP 47), the default if none is "
                "stored; null for an unknown address.",
            },
        },
    },
    "ConsentAnswers": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": _ref("Answer")}},
    },
    "Recipient": {
        "type": "object",
        "required": list(audience.FIELDS),
        "properties": {
            "email": {"type": "string", "description": "The deliver-to address."},
            "contact": {"type": "string", "description": "Public id; the `after` cursor."},
            "name": _nullable("string"),
            "basis": {"type": "string"},
            "expires_at": _nullable("string", format="date-time"),
            "jurisdiction": _nullable("string"),
            "cadence": _nullable("string"),
            "language": {
                "type": "string",
                "description": "The contact's language (BCP 47), the default if none is stored.",
            },
            "manage_url": {"type": "string", "format": "uri"},
            "unsubscribe_url": {"type": "string", "format": "uri"},
            "list_unsubscribe": {"type": "string"},
            "list_unsubscribe_post": {"const": "List-Unsubscribe=One-Click"},
        },
    },
    "ContactResult": {
        "type": "object",
        "required": ["contact", "subscriptions"],
        "properties": {
            "contact": {
                "type": "object",
                "required": ["id", "email", "name"],
                "properties": {
                    "id": {"type": "string"},
                    "email": {"type": "string"},
                    "name": _nullable("string"),
                    "language": _nullable("string"),
                },
            },
            "subscriptions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["list", "state", "outcome"],
                    "properties": {
                        "list": {"type": "string"},
                        "state": {"type": "string"},
                        "outcome": {"enum": ["created", "updated", "unchanged"]},
                    },
                },
            },
        },
    },
    "Event": {
        "type": "object",
        "required": [
            "id",
            "contact",
            "list",
            "action",
            "from_state",
            "to_state",
            "basis",
            "source",
            "channel",
            "actor",
            "occurred_at",
            "notice_version",
            "evidence",
            "request_id",
            "personal_digest",
            "prev_hash",
            "hash",
        ],
        "properties": {
            "id": {"type": "integer", "description": "Position in the log (ascending)."},
            "contact": {"type": "string", "description": "The contact's public id."},
            "list": _nullable("string"),
            "action": {"type": "string"},
            "from_state": _nullable("string"),
            "to_state": _nullable("string"),
            "basis": _nullable("string"),
            "source": _nullable("string"),
            "channel": {"type": "string"},
            "actor": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "notice_version": _nullable("integer"),
            "jurisdiction": _nullable("string"),
            "evidence": _nullable("string"),
            "request_id": {"type": "string"},
            "personal_digest": {
                "type": "string",
                "description": "What the hash covers in place of the personal fields "
                "(IP, user agent, evidence, detail); see the README.",
            },
            "prev_hash": _nullable("string"),
            "hash": {"type": "string"},
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["events", "next_cursor", "has_more"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_cursor": {"type": "string"},
            "has_more": {"type": "boolean"},
        },
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "Consent Preference Center API",
        "version": "1",
        "description": "Signed links, the may-I-send check, contacts with provenance, and the "
        'consent log. Every error is {"error": {"code", "message"}}.',
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": {
        "/links": {
            "post": {
                "operationId": "mintLinks",
                "summary": "Manage and one-click URLs with List-Unsubscribe headers.",
                "description": f"Needs the `links` scope. A batch takes up to {MAX_BATCH:,} items; "
                "an unknown address or list is an error for that item alone.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"anyOf": [_ref("LinkRequest"), _ref("LinkBatchRequest")]}
                        }
                    },
                },
                "responses": {
                    "200": _json("The links.", {"anyOf": [_ref("Links"), _ref("LinkBatch")]}),
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "404": _error("No contact has that address, or no list has that slug."),
                    "413": TOO_LARGE,
                    "422": INVALID,
                    "429": TOO_MANY,
                },
            }
        },
        "/consent": {
            "get": {
                "operationId": "maySend",
                "summary": "May this list be sent to this address now?",
                "description": "Needs the `consent:read` scope. An unknown address is a 200 "
                "with `allowed: false` and `status: unknown`.",
                "parameters": [
                    {"name": "email", "in": "query", "required": True, "schema": _EMAIL},
                    {"name": "list", "in": "query", "required": True, "schema": _SLUG},
                ],
                "responses": {
                    "200": _json("The answer.", _ref("Answer")),
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "404": _error("No list has that slug."),
                    "429": TOO_MANY,
                },
            },
            "post": {
                "operationId": "maySendBatch",
                "summary": "Up to 1,000 may-I-send questions at once.",
                "description": "Needs the `consent:read` scope. The answers come in the order "
                "of the items, each the one `GET /consent` gives (an unknown list is an answer "
                "with `status: unknown_list` rather than a 404). More than 1,000 items is a 413.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ConsentBatch")}},
                },
                "responses": {
                    "200": _json("The answers, in order.", _ref("ConsentAnswers")),
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "413": TOO_LARGE,
                    "422": INVALID,
                    "429": TOO_MANY,
                },
            },
        },
        "/lists/{slug}/audience": {
            "get": {
                "operationId": "listAudience",
                "summary": "Everyone who may be sent this list now, streamed.",
                "description": "Needs the `consent:read` scope. One row per recipient, exactly "
                "those for whom `GET /consent` answers allowed at their deliver-to address, read "
                "from one snapshot, in contact order. NDJSON by default, CSV with "
                "`format=csv`. To resume, pass the last row's `contact` as `after`.",
                "parameters": [
                    {"name": "slug", "in": "path", "required": True, "schema": _SLUG},
                    {"name": "format", "in": "query", "schema": {"enum": ["ndjson", "csv"]}},
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The recipients, one a line (CSV: with a header line).",
                        "content": {
                            "application/x-ndjson": {
                                "schema": {"type": "string"},
                                "x-item-schema": _ref("Recipient"),
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "404": _error("No list has that slug."),
                    "429": TOO_MANY,
                },
            }
        },
        "/contacts": {
            "post": {
                "operationId": "putContact",
                "summary": "Create or update a contact and its subscriptions.",
                "description": "Needs the `contacts:write` scope. Provenance is required; "
                "networking sources can only invite; an unsubscribed, disputed or erased "
                "address is a 409 and nothing is written.",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                        "description": "The same key with the same body replays the stored "
                        "response; with a different body it is a 422.",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("ContactRequest")}},
                },
                "responses": {
                    "200": _json("The contact existed and was updated.", _ref("ContactResult")),
                    "201": _json("The contact was created.", _ref("ContactResult")),
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "409": _error("Suppressed (unsubscribed, disputed or erased) or declined."),
                    "413": TOO_LARGE,
                    "422": INVALID,
                    "429": TOO_MANY,
                },
            }
        },
        "/events": {
            "get": {
                "operationId": "listEvents",
                "summary": "The consent log in id order, one page after the cursor.",
                "description": "Needs the `events:read` scope. Send `Accept: "
                "application/x-ndjson` for one event per line, with the next cursor in the "
                "`X-Next-Cursor` header.",
                "parameters": [
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "A page of events.",
                        "headers": {
                            "X-Next-Cursor": {
                                "description": "NDJSON only: the cursor of the next page.",
                                "schema": {"type": "string"},
                            },
                            "X-Has-More": {
                                "description": "NDJSON only: whether more events are ready.",
                                "schema": {"enum": ["true", "false"]},
                            },
                        },
                        "content": {
                            "application/json": {"schema": _ref("EventPage")},
                            "application/x-ndjson": {
                                "schema": {"type": "string"},
                                "x-item-schema": _ref("Event"),
                            },
                        },
                    },
                    "400": BAD_REQUEST,
                    "401": UNAUTHORIZED,
                    "403": FORBIDDEN,
                    "429": TOO_MANY,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapiDocument",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": _json("The OpenAPI document.", {"type": "object"}),
                    "429": TOO_MANY,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key from `flask --app app create-api-key`.",
            }
        },
        "schemas": SCHEMAS,
    },
}
