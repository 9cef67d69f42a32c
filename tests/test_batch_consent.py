"""POST /api/v1/consent: many may-send questions at once, each answered as the GET does."""

from __future__ import annotations

from preference_center import consent
from preference_center.consent import Via


def test_batch_agrees_with_get_item_by_item(app, make, client, api_auth):
    insights = make.list("market-insights")
    notes = make.list("personal-notes", audience="personal")
    pat = make.contact("pat@example.com")
    make.subscription(pat, insights)
    make.subscription(pat, notes, state="invited")
    sam = make.contact("sam@example.com")
    consent.withdraw(make.subscription(sam, insights), Via("admin", "test"))
    auth = api_auth("consent:read")
    questions = [
        {"email": "pat@example.com", "list": "market-insights"},
        {"email": "PAT@example.com ", "list": "personal-notes"},
        {"email": "sam@example.com", "list": "market-insights"},
        {"email": "nobody@example.com", "list": "market-insights"},
        {"email": "pat@example.com", "list": "no-such-list"},
        {"email": "pat@example.com", "list": "market-insights"},
    ]
    response = client.post("/api/v1/consent", headers=auth, json={"items": questions})
    assert response.status_code == 200
    answers = response.get_json()["items"]
    assert len(answers) == len(questions)
    for question, answer in zip(questions, answers, strict=True):
        single = client.get("/api/v1/consent", headers=auth, query_string=question)
        if single.status_code == 404:
            assert answer["status"] == "unknown_list"
            assert answer["allowed"] is False
        else:
            assert answer == single.get_json()
    assert [a["status"] for a in answers] == [
        "subscribed", "invited", "unsubscribed", "unknown", "unknown_list", "subscribed",
    ]  # fmt: skip


def test_more_than_a_thousand_items_is_413(app, make, client, api_auth):
    make.list("market-insights")
    auth = api_auth("consent:read")
    item = {"email": "pat@example.com", "list": "market-insights"}
    too_many = client.post("/api/v1/consent", headers=auth, json={"items": [item] * 1001})
    assert too_many.status_code == 413
    assert too_many.get_json()["error"]["code"] == "batch_too_large"
    most = client.post("/api/v1/consent", headers=auth, json={"items": [item] * 1000})
    assert most.status_code == 200
    assert len(most.get_json()["items"]) == 1000


def test_malformed_batches_are_refused_clearly(app, make, client, api_auth):
    make.list("market-insights")
    auth = api_auth("consent:read")
    for body, code in [
        ({"items": []}, "invalid_request"),
        ({"items": "pat@example.com"}, "invalid_request"),
        ({"items": [{"email": "pat@example.com"}]}, "invalid_request"),
        ({"items": [{"email": 7, "list": "market-insights"}]}, "invalid_email"),
        ({"items": [{"email": "a\x00@example.com", "list": "market-insights"}]}, "invalid_email"),
        ({}, "invalid_request"),
    ]:
        response = client.post("/api/v1/consent", headers=auth, json=body)
        assert response.status_code == 422, body
        assert response.get_json()["error"]["code"] == code, body
    not_json = client.post("/api/v1/consent", headers=auth, data="items", content_type="text/plain")
    assert not_json.status_code == 400
    no_scope = client.post("/api/v1/consent", headers=api_auth("links"), json={"items": []})
    assert no_scope.status_code == 403
