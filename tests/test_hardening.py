"""Issue 17: each finding of the outside probe, as the request that reproduced it.

Findings 2 and 3 (slow clients, the access log) run against `make serve` in
test_serve.py; the hostile inputs of finding 6 are in test_nasty_input.py.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from admin_helpers import PASSWORD, create, sign_in, token_of
from helpers import csrf_token, events_of, fresh

from preference_center import create_app, importers, mailer, sender, tokens
from preference_center.extensions import db
from preference_center.models import (
    Address,
    AdminUser,
    Contact,
    LoginThrottle,
    MailingList,
    OutboxMessage,
    utcnow,
)

VICTIM = "victim@corp.example"
SUBSCRIBE = {
    "list": "insights",
    "state": "subscribed",
    "source": "signup form",
    "added_by": "Dana Reyes",
    "basis": "express",
    "evidence": "ticked the box",
}


@pytest.fixture
def insights(make):
    return make.list("insights")


@pytest.fixture
def claimer(client, make, manage_path, insights):
    """A contact who typed the victim's address as their business address (never verified)."""
    contact = make.contact("claimer@example.com", name="Claimer")
    page = manage_path(contact)
    token = csrf_token(client.get(page).get_data(as_text=True))
    response = client.post(f"{page}/business-address", data={"csrf_token": token, "email": VICTIM})
    assert response.status_code in (200, 303)
    fresh()
    claim = db.session.execute(db.select(Address).filter_by(email=VICTIM)).scalar_one()
    assert claim.contact_id == contact.id and claim.verified_at is None
    return contact


def outbox_to(email: str) -> list[OutboxMessage]:
    fresh()
    return list(db.session.execute(db.select(OutboxMessage).filter_by(to_email=email)).scalars())


# --- 1. an unverified business address belongs to nobody --------------------


def test_an_unverified_address_is_unknown_to_every_lookup(client, api_auth, claimer, insights):
    auth = api_auth()

    consent = client.get(f"/api/v1/consent?email={VICTIM}&list=insights", headers=auth)
    assert consent.status_code == 200
    assert consent.json["status"] == "unknown" and consent.json["deliver_to"] is None

    links = client.post("/api/v1/links", json={"email": VICTIM, "list": "insights"}, headers=auth)
    assert links.status_code == 404 and links.json["error"]["code"] == "unknown_contact"

    with pytest.raises(sender.UnknownRecipient):
        sender.headers_for(VICTIM, "insights")

    before = len(outbox_to("claimer@example.com"))
    client.post("/p", data={"email": VICTIM})
    assert len(outbox_to("claimer@example.com")) == before  # no fresh link to the claimer


def test_the_api_creates_the_real_owner_and_leaves_the_claimer_alone(
    client, api_auth, claimer, insights
):
    body = {"email": VICTIM, "name": "Victim", "subscriptions": [SUBSCRIBE]}
    response = client.post("/api/v1/contacts", json=body, headers=api_auth())

    assert response.status_code == 201, response.json
    assert response.json["contact"]["id"] != claimer.public_id
    fresh()
    owner = db.session.execute(
        db.select(Contact).filter_by(public_id=response.json["contact"]["id"])
    ).scalar_one()
    assert owner.name == "Victim" and owner.primary_email == VICTIM
    db.session.refresh(claimer)
    assert claimer.name == "Claimer" and claimer.business_address is None
    # The claim's removal is on the claimer's own chain.
    assert events_of(claimer)[-1].action == "business_address_removed"
    consent = client.get(f"/api/v1/consent?email={VICTIM}&list=insights", headers=api_auth())
    assert consent.json["allowed"] is True and consent.json["deliver_to"] == VICTIM


def test_an_import_creates_the_real_owner_too(claimer, insights):
    summary = importers.import_contacts(
        f"email,name\n{VICTIM},Victim\n".encode(),
        importers.ImportOptions(
            list_slug="insights", source="seminar", basis="express", added_by="Dana Reyes"
        ),
    )
    db.session.commit()
    assert summary.created == 1 and summary.updated == 0
    db.session.refresh(claimer)
    assert claimer.business_address is None and claimer.name == "Claimer"


def test_a_verified_address_of_another_contact_cannot_be_added(client, make, manage_path):
    owner = make.contact("owner@example.com")
    owner.addresses.append(
        Address(email="work@corp.example", kind="business", verified_at=utcnow())
    )
    db.session.commit()
    taker = make.contact("taker@example.com")
    page = manage_path(taker)
    token = csrf_token(client.get(page).get_data(as_text=True))

    for email in ("work@corp.example", "owner@example.com"):
        response = client.post(
            f"{page}/business-address", data={"csrf_token": token, "email": email}
        )
        assert response.status_code == 409
    fresh()
    assert (
        db.session.execute(
            db.select(Address.contact_id).filter_by(email="work@corp.example")
        ).scalar_one()
        == owner.id
    )
    assert taker.business_address is None


# --- 4. a one-click link never opens the full page ---------------------------


def test_the_one_click_page_links_to_the_fresh_link_form_not_a_manage_link(client, make, insights):
    pat = make.contact("pat@example.com")
    make.subscription(pat, insights)
    html = client.get(urlsplit(tokens.unsubscribe_url(pat, "insights")).path).text
    assert 'href="https://prefs.example.test/p"' in html
    assert "/p/" not in html


# --- 5. implied consent dated in the future ----------------------------------


@pytest.mark.parametrize("day", ["2090-01-01", "9999-12-31"])
def test_the_api_refuses_an_implied_basis_dated_in_the_future(client, api_auth, insights, day):
    item = {**SUBSCRIBE, "basis": "implied_purchase", "basis_date": day}
    response = client.post(
        "/api/v1/contacts",
        json={"email": "buyer@example.com", "subscriptions": [item]},
        headers=api_auth(),
    )
    assert response.status_code == 422 and "future" in response.json["error"]["message"]
    fresh()
    assert (
        db.session.execute(db.select(Address).filter_by(email="buyer@example.com")).first() is None
    )


def test_the_admin_consent_form_refuses_an_implied_basis_dated_in_the_future(
    client, make, insights
):
    admin = create()
    assert sign_in(client, admin.email).status_code == 303
    sam = make.contact("sam@example.com")
    response = client.post(
        f"/admin/contacts/{sam.public_id}/consent",
        data={
            "csrf_token": token_of(client),
            "list": "insights",
            "state": "subscribed",
            "basis": "implied_purchase",
            "basis_date": "2090-01-01",
            "evidence": "bought a boat",
            "reason": "phone call",
        },
    )
    assert response.status_code == 409 and "future" in response.text
    assert events_of(sam) == []


# --- 7. logging out ends every copy of the session ---------------------------


def copy_session(source, target) -> None:
    cookie = source.get_cookie("session")
    target.set_cookie("session", cookie.value, domain=cookie.domain)


def test_a_copied_cookie_stops_working_at_logout(app, client, insights):
    admin = create()
    assert sign_in(client, admin.email).status_code == 303
    thief = app.test_client()
    copy_session(client, thief)
    assert thief.get("/admin/").status_code == 200
    stolen_token = token_of(thief, "/admin/lists")

    client.post("/admin/logout", data={"csrf_token": token_of(client)})

    assert thief.get("/admin/").status_code == 302
    archive = thief.post("/admin/lists/insights/archive", data={"csrf_token": stolen_token})
    assert archive.status_code in (302, 400)
    fresh()
    assert db.session.get(MailingList, insights.id).archived_at is None


def test_a_password_change_ends_every_session(app, client, runner):
    admin = create()
    assert sign_in(client, admin.email).status_code == 303
    new_password = "a brand new passphrase"

    result = runner.invoke(
        args=["set-admin-password", admin.email], input=f"{new_password}\n{new_password}\n"
    )

    assert result.exit_code == 0, result.output
    assert client.get("/admin/").status_code == 302
    assert sign_in(client, admin.email, PASSWORD).status_code == 401
    assert sign_in(client, admin.email, new_password).status_code == 303


# --- 8. names that break mail, and mail that cannot be sent ------------------


@pytest.mark.parametrize("name", ["Pat\r\nBcc: attacker@evil.example", "Pat\u2028Reyes", "Pat\x07"])
def test_a_name_that_would_break_a_header_is_refused_by_the_api(client, api_auth, name):
    response = client.post(
        "/api/v1/contacts", json={"email": "pat@example.com", "name": name}, headers=api_auth()
    )
    assert response.status_code == 422
    fresh()
    assert db.session.execute(db.select(Address).filter_by(email="pat@example.com")).first() is None


def test_a_list_name_with_a_line_break_is_refused(client):
    admin = create()
    assert sign_in(client, admin.email).status_code == 303
    response = client.post(
        "/admin/lists",
        data={
            "csrf_token": token_of(client, "/admin/lists/new"),
            "slug": "broken",
            "audience": "business",
            "name": "News\r\nBcc: attacker@evil.example",
            "description": "What it sends.",
            "frequency": "Monthly",
        },
    )
    assert response.status_code == 422 and "one line" in response.text
    fresh()
    assert db.session.execute(db.select(MailingList).filter_by(slug="broken")).first() is None


def test_a_business_address_with_a_line_break_is_refused(client, make, manage_path):
    pat = make.contact("pat@example.com")
    page = manage_path(pat)
    token = csrf_token(client.get(page).get_data(as_text=True))
    response = client.post(
        f"{page}/business-address",
        data={"csrf_token": token, "email": "work@corp.example\r\nBcc: attacker@evil.example"},
    )
    assert response.status_code == 409
    fresh()
    db.session.refresh(pat)
    assert pat.business_address is None


def test_mail_the_server_refuses_for_good_is_not_retried_and_shows_on_the_dashboard(
    client, make, smtp, insights
):
    make.contact("refused@example.com")
    mailer.queue("fresh_link", "refused@example.com", "Your link", "fresh_link")
    mailer.queue("fresh_link", "bad@example.com\r\nBcc: x@evil.example", "Your link", "fresh_link")
    db.session.commit()

    assert mailer.deliver_due() == (0, 2)
    assert mailer.deliver_due() == (0, 0)  # nothing is left to retry
    fresh()
    failed = db.session.execute(db.select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
    for message in failed:
        assert message.failed_at is not None and message.attempts == 1

    admin = create()
    assert sign_in(client, admin.email).status_code == 303
    dashboard = client.get("/admin/").text
    assert "Mail that could not be delivered" in dashboard
    assert "refused@example.com" in dashboard and "550" in dashboard


def test_a_message_that_keeps_failing_is_given_up_after_the_limit(app, make, monkeypatch):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    monkeypatch.setattr(app.extensions["mail"], "port", 1)  # nothing listens on port 1
    mailer.queue("fresh_link", "pat@example.com", "Your link", "fresh_link")
    db.session.commit()
    for _ in range(3):
        db.session.execute(db.update(OutboxMessage).values(next_attempt_at=utcnow()))
        db.session.commit()
        assert mailer.deliver_due() == (0, 1)
    fresh()
    message = db.session.execute(db.select(OutboxMessage)).scalar_one()
    assert message.attempts == 3 and message.failed_at is not None
    db.session.execute(db.update(OutboxMessage).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert mailer.deliver_due() == (0, 0)


# --- 9. instance/config.py is read -------------------------------------------


def test_instance_config_py_is_read(tmp_path, monkeypatch, database_url):
    instance = tmp_path / "own-instance"
    instance.mkdir()
    (instance / "config.py").write_text('ORGANISATION_NAME = "Read From Instance"\n')
    monkeypatch.setenv("INSTANCE_PATH", str(instance))
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    assert app.config["ORGANISATION_NAME"] == "Read From Instance"
    with app.app_context():
        db.engine.dispose()


# --- 10. failed logins slow the attacker down, never lock the owner out ------


def wrong(client, email: str, ip: str = "198.51.100.7"):
    token = csrf_token(client.get("/admin/login").text)
    return client.post(
        "/admin/login",
        data={"email": email, "password": "a wrong guess!", "csrf_token": token},
        environ_base={"REMOTE_ADDR": ip},
    )


def right(client, email: str, ip: str = "198.51.100.7"):
    token = csrf_token(client.get("/admin/login").text)
    return client.post(
        "/admin/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_failed_logins_back_off_and_the_right_password_works_after_the_wait(client):
    admin = create()
    assert [wrong(client, admin.email).status_code for _ in range(5)] == [401] * 5

    blocked = right(client, admin.email)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    # From another IP too: the address itself waits.
    assert right(client, admin.email, ip="203.0.113.9").status_code == 429

    # The wait is over (as if the time had passed): the right password works again.
    db.session.execute(
        db.update(LoginThrottle).values(blocked_until=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    assert right(client, admin.email).status_code == 303
    fresh()
    assert db.session.execute(db.select(LoginThrottle)).first() is None


def test_each_failure_beyond_the_free_ones_doubles_the_wait(client):
    admin = create()
    for _ in range(5):
        wrong(client, admin.email)
    fresh()
    first = db.session.execute(db.select(LoginThrottle).filter(LoginThrottle.key.like("email:%")))
    first_wait = first.scalar_one().blocked_until - utcnow()
    db.session.execute(db.update(LoginThrottle).values(blocked_until=None))
    db.session.commit()
    wrong(client, admin.email)
    fresh()
    second = db.session.execute(db.select(LoginThrottle).filter(LoginThrottle.key.like("email:%")))
    second_wait = second.scalar_one().blocked_until - utcnow()
    assert timedelta(seconds=10) < first_wait <= timedelta(seconds=15)
    assert timedelta(seconds=25) < second_wait <= timedelta(seconds=30)


def test_failures_spread_over_many_addresses_slow_down_their_ip(client):
    admin = create()
    for number in range(5):
        assert wrong(client, f"guess{number}@example.com").status_code == 401
    assert right(client, admin.email).status_code == 429  # the same IP waits
    assert right(client, admin.email, ip="203.0.113.9").status_code == 303  # another does not
    fresh()
    assert db.session.get(AdminUser, admin.id) is not None


def test_the_login_page_never_puts_cr_lf_from_next_into_a_header(client):
    admin = create()
    token = csrf_token(client.get("/admin/login").text)
    response = client.post(
        "/admin/login",
        data={
            "email": admin.email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/admin/\r\nSet-Cookie: evil=1",
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    assert "evil" not in json.dumps(dict(response.headers))
