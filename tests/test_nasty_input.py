"""A fixed list of nasty values through every input that stores text.

Each value goes in through the real door (the import form, the API, the
preference page, the admin forms, the fresh-link form); the answer is never a
5xx, a refusal writes nothing, and every page that shows what was stored
shows it as text: the raw markup never reaches the HTML.
"""

from __future__ import annotations

import base64
import csv
import io
import re

import pytest
from admin_helpers import PASSWORD, create, finished_import, row_counts, sign_in, token_of
from helpers import all_events, events_of

from preference_center import tokens
from preference_center.extensions import db
from preference_center.models import Address, Contact, MailingList

SCRIPT = "<script>alert('pwned')</script>"
IMG = '"><img src=x onerror=alert(1)>'
NASTY = [
    "Long " * 4000,  # 20,000 characters
    "nul\x00byte",
    "right\u202eto-left override\u202c",
    "zero\u200bwidth\u200c\u200djoiners\ufeff",
    SCRIPT,
    IMG,
    "'; DROP TABLE contacts; --",
    "1' OR '1'='1",
    '=HYPERLINK("https://evil.example","Click")',
    "+1+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "-2+3",
    "{{ 7 * 7 }} {% raw %}",
    "line\r\nBcc: victim@example.com",
    "emoji 👩🏽‍💻 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]
RAW_MARKUP = re.compile(r"<script>alert|<img src=x", re.IGNORECASE)


def inert(response, *, shows_script: bool = False) -> str:
    """The page's HTML, after checking it answered and carries no injected markup."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    html = response.get_data(as_text=True)
    assert not RAW_MARKUP.search(html), RAW_MARKUP.search(html)
    if shows_script:
        # The value is on the page, as text: the check above was not vacuous.
        assert "&lt;script&gt;alert(" in html
    return html


def stored(response) -> bool:
    """True for an answer that accepted the change; a refusal must be a clear 4xx."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    return response.status_code < 400


@pytest.fixture
def admin_client(client, app):
    create("ada@example.com", "admin")
    assert sign_in(client, "ada@example.com").status_code == 303
    return client


def contact_by_email(email: str) -> Contact | None:
    address = db.session.execute(
        db.select(Address).filter_by(email=email.lower())
    ).scalar_one_or_none()
    return address.contact if address else None


def test_imported_names_and_evidence_render_inert(admin_client, make):
    notes = make.list("notes", "personal")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "name", "evidence"])
    for number, value in enumerate(NASTY):
        writer.writerow([f"person{number}@example.com", value, value])
    posted = admin_client.post(
        "/admin/imports",
        data={
            "csrf_token": token_of(admin_client, "/admin/imports"),
            "list": notes.slug,
            "source": "nasty.csv",
            "basis": "personal",
            "added_by": "Ada",
            "file": (io.BytesIO(buffer.getvalue().encode()), "nasty.csv"),
        },
        content_type="multipart/form-data",
    )
    answer = finished_import(admin_client, posted)
    assert inert(answer).count("created") and answer.status_code == 200
    inert(admin_client.get("/admin/contacts"), shows_script=True)
    for number, value in enumerate(NASTY):
        contact = contact_by_email(f"person{number}@example.com")
        assert contact is not None and "\x00" not in (contact.name or "")
        inert(
            admin_client.get(f"/admin/contacts/{contact.public_id}"), shows_script=value == SCRIPT
        )
        inert(admin_client.get(f"/p/{tokens.sign(tokens.MANAGE, contact)}"))
        inert(admin_client.get(f"/admin/log/{events_of(contact)[0].id}"))
    inert(admin_client.get("/admin/log"))


def test_api_contact_fields_are_stored_or_refused_cleanly(admin_client, api_auth, make):
    make.list("insights")
    headers = api_auth("contacts:write")
    for number, value in enumerate(NASTY):
        spec = {
            "list": "insights",
            "state": "subscribed",
            "basis": "express",
            "source": value,
            "added_by": value,
            "evidence": value,
        }
        before = row_counts()
        response = admin_client.post(
            "/api/v1/contacts",
            headers=headers,
            json={"email": f"api{number}@example.com", "name": value, "subscriptions": [spec]},
        )
        if not stored(response):
            assert response.get_json()["error"]["code"]
            assert row_counts() == before, value
            continue
        contact = contact_by_email(f"api{number}@example.com")
        inert(
            admin_client.get(f"/admin/contacts/{contact.public_id}"), shows_script=value == SCRIPT
        )
        inert(admin_client.get(f"/p/{tokens.sign(tokens.MANAGE, contact)}"))
    # The long value and the NUL are refused; the rest is kept as given.
    assert contact_by_email("api0@example.com") is None
    assert contact_by_email("api1@example.com") is None
    assert contact_by_email(f"api{NASTY.index(SCRIPT)}@example.com").name == SCRIPT
    inert(admin_client.get("/admin/disputes"))


def test_dispute_words_render_inert(admin_client, make):
    insights = make.list("insights")
    for number, value in enumerate(NASTY):
        contact = make.contact(f"disputer{number}@example.com")
        make.subscription(contact, insights)
        manage = tokens.sign(tokens.MANAGE, contact)
        before = row_counts()
        response = admin_client.post(
            f"/p/{manage}/lists/insights/dispute",
            data={"csrf_token": token_of(admin_client, f"/p/{manage}"), "words": value},
        )
        if not stored(response):
            assert "\x00" in value and response.status_code == 400
            assert row_counts() == before
        inert(admin_client.get(f"/p/{manage}"))
    inert(admin_client.get("/admin/disputes"), shows_script=True)
    inert(admin_client.get("/admin/log"))


def test_business_addresses_render_inert(admin_client, make):
    contact = make.contact("owner@example.com")
    manage = tokens.sign(tokens.MANAGE, contact)
    for value in NASTY + [f"{SCRIPT}@example.com", f"{IMG}@example.com"]:
        before = row_counts()
        response = admin_client.post(
            f"/p/{manage}/business-address",
            data={"csrf_token": token_of(admin_client, f"/p/{manage}"), "email": value},
            headers={"HX-Request": "true"},
        )
        if not stored(response):
            assert row_counts() == before, value
        inert(response)
        inert(admin_client.get(f"/p/{manage}"))
    inert(admin_client.get(f"/admin/contacts/{contact.public_id}"))


def test_list_names_and_descriptions_render_inert(admin_client, make):
    contact = make.contact("reader@example.com")
    for number, value in enumerate(NASTY):
        before = row_counts()
        response = admin_client.post(
            "/admin/lists",
            data={
                "csrf_token": token_of(admin_client, "/admin/lists/new"),
                "slug": f"nasty-{number}",
                "audience": "personal",
                "name": value,
                "description": value,
                "frequency": value,
            },
        )
        if not stored(response):
            assert row_counts() == before, value
            inert(response)
            continue
        inert(admin_client.get(f"/admin/lists/nasty-{number}"), shows_script=value == SCRIPT)
        make.subscription(contact, db.session.get(MailingList, _list_id(f"nasty-{number}")))
        confirm = tokens.sign(tokens.CONFIRM, contact, l=f"nasty-{number}")
        inert(
            admin_client.get(f"/u/{tokens.sign(tokens.UNSUBSCRIBE, contact, l=f'nasty-{number}')}")
        )
        inert(admin_client.get(f"/confirm/{confirm}"))
    assert _list_id("nasty-0") is None  # a 20,000-character name is refused
    inert(admin_client.get("/admin/lists"), shows_script=True)
    inert(admin_client.get(f"/p/{tokens.sign(tokens.MANAGE, contact)}"), shows_script=True)
    inert(admin_client.get(f"/admin/contacts/{contact.public_id}"), shows_script=True)


def _list_id(slug: str) -> int | None:
    return db.session.execute(db.select(MailingList.id).filter_by(slug=slug)).scalar_one_or_none()


def test_admin_reasons_and_evidence_render_inert(admin_client, make):
    make.list("notes", "personal")
    for number, value in enumerate(NASTY):
        contact = make.contact(f"pat{number}@example.com")
        path = f"/admin/contacts/{contact.public_id}"
        before = row_counts()
        response = admin_client.post(
            f"{path}/consent",
            data={
                "csrf_token": token_of(admin_client, path),
                "list": "notes",
                "state": "subscribed",
                "basis": "personal",
                "evidence": value,
                "reason": value,
            },
        )
        inert(response)
        if not stored(response):
            assert row_counts() == before, value
            continue
        response = admin_client.post(
            f"{path}/lists/notes/withdraw",
            data={"csrf_token": token_of(admin_client, path), "reason": value},
        )
        assert stored(response)
        inert(admin_client.get(path), shows_script=value == SCRIPT)
    events = [e for e in all_events() if e.detail]
    assert [e.detail for e in events].count(SCRIPT) == 2
    for event in events:
        inert(admin_client.get(f"/admin/log/{event.id}"))
    inert(admin_client.get("/admin/log"))
    inert(admin_client.get("/admin/actions"), shows_script=True)


def test_fresh_link_email_is_answered_cleanly(client, make):
    make.contact("known@example.com")
    for number, value in enumerate(NASTY + [f"{SCRIPT}@example.com"]):
        before = row_counts()
        response = client.post(
            "/p",
            data={"csrf_token": token_of(client, "/p"), "email": value},
            # One visitor each: the per-address limit is what would answer otherwise.
            environ_base={"REMOTE_ADDR": f"192.0.2.{number}"},
        )
        inert(response)
        assert response.status_code in (200, 400), value
        assert row_counts() == before  # none of them is a known address


def test_a_nul_byte_is_a_clear_400_before_the_database(client, make):
    """PostgreSQL refuses NUL in text (a DataError); the request never gets that far."""
    contact = make.contact("pat@example.com")
    manage = tokens.sign(tokens.MANAGE, contact)
    csrf = token_of(client, f"/p/{manage}")
    before = row_counts()
    for path, field in [
        (f"/p/{manage}/business-address", "email"),
        ("/p", "email"),
        (f"/p/{manage}/receipts", "receipts"),
    ]:
        response = client.post(path, data={"csrf_token": csrf, field: "a\x00b@example.com"})
        assert response.status_code == 400
        assert "NUL character" in response.get_data(as_text=True)
    assert client.get("/admin/login?next=%00").status_code == 400
    # A NUL in a path names no page: the token routes give their one 404 page.
    response = client.post(f"/p/{manage}/lists/a%00b", data={"csrf_token": csrf})
    assert response.status_code == 404
    assert client.get("/p/%00").status_code == 404
    assert "This link isn" in client.get("/u/abc%00def").get_data(as_text=True)
    assert row_counts() == before


# --- the outside probe's requests (issue 17, finding 6): each a clear 4xx ----

HUGE = "99999999999999999999999"
OVERFLOWING_CURSOR = base64.urlsafe_b64encode(b"e" + b"9" * 30).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    ["limit=%C2%B2", "limit=%E2%91%A0", f"cursor={OVERFLOWING_CURSOR}", "limit=" + HUGE],
)
def test_probe_event_feed_parameters_are_a_clear_400(client, api_auth, query):
    response = client.get(f"/api/v1/events?{query}", headers=api_auth())
    assert response.status_code == 400
    assert response.json["error"]["code"] in ("bad_limit", "bad_cursor")


def test_probe_json_nested_100000_deep_is_a_clear_400(client, api_auth):
    headers = {**api_auth(), "Content-Type": "application/json"}
    before = row_counts()
    body = "[" * 100_000 + "]" * 100_000
    for path in ("/api/v1/contacts", "/api/v1/links"):
        response = client.post(path, data=body, headers=headers)
        assert response.status_code == 400, path
        assert response.json["error"]["code"] == "bad_json"
    nested = '{"email": "pat@example.com", "name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert client.post("/api/v1/contacts", data=nested, headers=headers).status_code == 400
    assert row_counts() == before


@pytest.mark.parametrize("field", ["name", "email"])
def test_probe_a_lone_surrogate_is_a_clear_422(client, api_auth, field):
    headers = {**api_auth(), "Content-Type": "application/json"}
    before = row_counts()
    values = {"email": "pat@example.com", "name": "Pat"}
    values[field] = values[field] + "\\ud800"
    body = "{" + ", ".join(f'"{k}": "{v}"' for k, v in values.items()) + "}"
    response = client.post(
        "/api/v1/contacts",
        data=body,
        headers=headers,
    )
    assert response.status_code == 422
    assert row_counts() == before


def test_probe_an_implied_basis_dated_9999_12_31_is_a_clear_422(client, api_auth, make):
    make.list("insights")
    headers = api_auth()
    before = row_counts()
    item = {
        "list": "insights",
        "state": "subscribed",
        "source": "shop",
        "added_by": "Dana Reyes",
        "basis": "implied_purchase",
        "basis_date": "9999-12-31",
    }
    response = client.post(
        "/api/v1/contacts",
        json={"email": "pat@example.com", "subscriptions": [item]},
        headers=headers,
    )
    assert response.status_code == 422
    assert row_counts() == before


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/admin/log/{HUGE}", 404),
        (f"/admin/log?before={HUGE}", 400),
        (f"/admin/actions?before={HUGE}", 400),
        ("/admin/log?before=%C2%B2", 400),
        ("/admin/log?until=9999-12-31", 200),
        ("/admin/log/export?format=csv&until=9999-12-31", 200),
        ("/admin/log?since=9999-12-31&until=9999-12-31", 200),
    ],
)
def test_probe_admin_log_parameters_are_answered_cleanly(admin_client, path, status):
    response = admin_client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("next_", ["/admin/\r\nSet-Cookie: x=1", "/admin/\nx", "/admin\\\\evil"])
def test_probe_a_next_with_control_characters_signs_in_to_the_dashboard(client, next_):
    create("ada@example.com", "admin")
    token = token_of(client, "/admin/login")
    response = client.post(
        "/admin/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token, "next": next_},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
