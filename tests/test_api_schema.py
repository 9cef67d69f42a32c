"""schemathesis over /api/v1/openapi.json, in-process through the WSGI app.

Every documented operation gets generated requests (valid ones, then invalid
ones) with a real API key; each answer must be no 5xx and must match the
document: a documented status code, content type, headers and body schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.generation import GenerationMode

from preference_center.extensions import db

CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_as_its_openapi_document_says(app, make, api_auth, mode):
    insights = make.list("market-insights")
    pat = make.contact("pat@example.com")
    make.subscription(pat, insights)
    make.list("personal-notes", audience="personal")
    app.config["API_RATE_LIMIT"] = "100000 per minute"
    auth = api_auth()
    db.session.commit()

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document's own URL.
    assert {op.label for op in operations} == {
        "POST /links",
        "GET /consent",
        "POST /consent",
        "GET /lists/{slug}/audience",
        "POST /contacts",
        "GET /events",
    }
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=auth, checks=CONFORMANCE)
            db.session.rollback()  # each generated request starts from committed state

        check()
    assert calls >= len(operations)
