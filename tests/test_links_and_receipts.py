"""The contact's rights around links: a fresh link, expired links, reset, history, receipts."""

import re
from datetime import timedelta

import pytest
from helpers import csrf_token, events_of, state_of

from preference_center import mailer, receipts, tokens
from preference_center.extensions import db
from preference_center.models import OutboxMessage, utcnow


@pytest.fixture
def morgan(make):
    notes = make.list("personal-notes", audience="personal", name="Dana's personal notes")
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("Morgan@Example.com", "Morgan Lee")
    make.subscription(contact, notes, basis="personal")
    make.subscription(contact, insights)
    return contact, notes, insights


def outbox() -> list[OutboxMessage]:
    db.session.commit()
    return list(db.session.execute(db.select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def ask_for_link(client, email, ip="198.51.100.1"):
    form = client.get("/p", environ_base={"REMOTE_ADDR": ip})
    return client.post(
        "/p",
        data={"email": email, "csrf_token": csrf_token(form.text)},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_the_fresh_link_answer_is_the_same_for_known_and_unknown(app, morgan, smtp):
    contact, *_ = morgan
    known = ask_for_link(app.test_client(), "  MORGAN@example.com ")
    unknown = ask_for_link(app.test_client(), "stranger@example.com")

    assert known.status_code == unknown.status_code == 200
    assert known.data == unknown.data
    drop = {"Date", "Set-Cookie", "Content-Length"}
    assert {k: v for k, v in known.headers if k not in drop} == {
        k: v for k, v in unknown.headers if k not in drop
    }
    assert "If this address is on our lists" in known.text
    [queued] = outbox()
    assert queued.to_email == "morgan@example.com"  # the stored address, not the typed text
    assert mailer.deliver_due() == (1, 0)
    [mail] = smtp.messages
    link = re.search(r"https://prefs\.example\.test(/p/\S+)", mail.text()).group(1)
    assert app.test_client().get(link).status_code == 200
    assert tokens.verify(tokens.MANAGE, link.removeprefix("/p/")).contact.id == contact.id


def test_fresh_link_requests_are_rate_limited_per_address_and_per_ip(app, morgan):
    client = app.test_client()
    statuses = [
        ask_for_link(client, "morgan@example.com", ip=f"203.0.113.{n}").status_code
        for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]  # per address, whatever the IP
    assert len(outbox()) == 3

    per_ip = [
        ask_for_link(client, f"someone{n}@example.com", ip="192.0.2.9").status_code
        for n in range(4)
    ]
    assert per_ip == [200, 200, 200, 429]
    known_429 = ask_for_link(client, "morgan@example.com", ip="192.0.2.10")
    unknown_429 = ask_for_link(client, "nobody@example.com", ip="192.0.2.9")
    assert known_429.status_code == unknown_429.status_code == 429
    assert known_429.data == unknown_429.data


def test_a_bad_address_gets_a_clear_message(client):
    form = client.get("/p")
    response = client.post("/p", data={"email": "nope", "csrf_token": csrf_token(form.text)})
    assert response.status_code == 400 and "Please enter your email address." in response.text


@pytest.fixture
def expired_link(app, morgan):
    contact, *_ = morgan
    token = tokens.sign(tokens.MANAGE, contact)
    app.config["MANAGE_LINK_MAX_AGE_DAYS"] = -1  # every link is now past its age
    return contact, f"/p/{token}"


def test_an_expired_link_still_withdraws_but_shows_no_details(client, morgan, expired_link):
    contact, notes, insights = morgan
    _, path = expired_link

    page = client.get(path)
    assert page.status_code == 200
    assert "saying no never expires" in page.text
    assert "because you know each other personally" not in page.text  # no details
    assert "Email me a link" in page.text

    stopped = client.post(
        f"{path}/lists/personal-notes", data={"csrf_token": csrf_token(page.text)}
    )
    assert stopped.status_code == 303 and state_of(contact, notes) == "unsubscribed"
    everything = client.post(f"{path}/everything", data={"csrf_token": csrf_token(page.text)})
    assert everything.status_code == 303 and state_of(contact, insights) == "unsubscribed"


def test_an_expired_link_cannot_opt_in_or_change_addresses(client, morgan, expired_link):
    contact, notes, _ = morgan
    _, path = expired_link
    token = csrf_token(client.get(path).text)
    before = len(events_of(contact))

    for url, data in [
        (f"{path}/lists/personal-notes", {"subscribed": "yes"}),
        (f"{path}/business", {"business": "allowed"}),
        (f"{path}/business-address", {"email": "m@work.example"}),
        (f"{path}/reset", {}),
    ]:
        response = client.post(url, data={**data, "csrf_token": token})
        assert response.status_code == 403, url
        assert "This link has expired for that" in response.text
    assert len(events_of(contact)) == before


def test_reset_my_links_revokes_old_links_and_emails_a_new_one(
    app, client, manage_path, morgan, smtp
):
    contact, *_ = morgan
    old = manage_path(contact)
    page = client.get(old)

    response = client.post(f"{old}/reset", data={"csrf_token": csrf_token(page.text)})

    assert response.status_code == 200 and "no longer work" in response.text
    assert client.get(old).status_code == 404
    assert events_of(contact)[-1].action == "links_reset"
    mailer.deliver_due()
    [mail] = smtp.messages
    new = re.search(r"https://prefs\.example\.test(/p/\S+)", mail.text()).group(1)
    assert client.get(new).status_code == 200


def test_a_forwarded_link_cannot_sign_anyone_up(client, manage_path, morgan, make):
    contact, *_ = morgan
    offers = make.list("offers", audience="personal", name="Offers")
    page = client.get(manage_path(contact))

    client.post(
        f"{manage_path(contact)}/lists/offers",
        data={"subscribed": "yes", "csrf_token": csrf_token(page.text)},
    )

    assert state_of(contact, offers) == "pending"  # nothing is sent until the owner confirms
    [confirmation] = [m for m in outbox() if m.kind == "confirmation"]
    assert confirmation.to_email == "morgan@example.com"


def test_the_page_shows_the_history_in_plain_language(client, manage_path, morgan):
    contact, *_ = morgan
    page = client.get(manage_path(contact))
    client.post(
        f"{manage_path(contact)}/lists/personal-notes", data={"csrf_token": csrf_token(page.text)}
    )

    html = client.get(manage_path(contact)).text
    history = html[html.index('id="your-history"') :]
    assert "Dana&#39;s personal notes was stopped (on this page)." in history
    assert "You were added to Market Insights (by an import, by the sender&#39;s" not in history
    assert "You were added to Market Insights (by the sender&#39;s staff" in history


def test_a_burst_of_changes_gives_one_receipt(app, client, manage_path, morgan, smtp):
    contact, *_ = morgan
    page = client.get(manage_path(contact))
    token = csrf_token(page.text)
    for slug in ("personal-notes", "market-insights"):
        client.post(f"{manage_path(contact)}/lists/{slug}", data={"csrf_token": token})

    assert receipts.queue_due() == 0  # the batch window is still open
    later = utcnow() + timedelta(seconds=app.config["RECEIPT_DELAY_SECONDS"] + 1)
    assert receipts.queue_due(later) == 1
    assert receipts.queue_due(later) == 0
    mailer.deliver_due()

    [receipt] = smtp.messages
    text = receipt.text()
    assert "Dana's personal notes was stopped" in text and "Market Insights was stopped" in text
    assert receipt.message["Subject"].startswith("Your preference changes")


def test_receipts_can_be_turned_off(app, client, manage_path, morgan):
    contact, *_ = morgan
    page = client.get(manage_path(contact))
    token = csrf_token(page.text)
    client.post(f"{manage_path(contact)}/receipts", data={"receipts": "off", "csrf_token": token})
    client.post(f"{manage_path(contact)}/lists/personal-notes", data={"csrf_token": token})

    later = utcnow() + timedelta(seconds=app.config["RECEIPT_DELAY_SECONDS"] + 1)
    assert receipts.queue_due(later) == 0
    assert [e.action for e in events_of(contact)[-2:]] == ["receipts_off", "withdraw"]


def test_one_click_links_keep_working_after_a_reset(client, manage_path, morgan):
    contact, _, insights = morgan
    one_click = tokens.unsubscribe_url(contact, "market-insights").split("prefs.example.test")[1]
    page = client.get(manage_path(contact))
    client.post(f"{manage_path(contact)}/reset", data={"csrf_token": csrf_token(page.text)})

    response = client.post(one_click, data={"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert state_of(contact, insights) == "unsubscribed"
    assert events_of(contact)[-1].channel == "one_click"


def test_mail_sending_actions_are_limited_per_link_but_saying_no_never_is(
    app, client, manage_path, morgan
):
    contact, notes, _ = morgan
    app.config["MAIL_SENDING_RATE_LIMIT"] = "2 per hour"
    path = manage_path(contact)
    token = csrf_token(client.get(path).text)

    statuses = [
        client.post(
            f"{path}/business-address", data={"email": f"m{n}@work.example", "csrf_token": token}
        ).status_code
        for n in range(3)
    ]
    assert statuses == [303, 303, 429]
    opting_in = client.post(
        f"{path}/lists/market-insights", data={"subscribed": "yes", "csrf_token": token}
    )
    assert opting_in.status_code == 429  # the same link's bucket is spent

    for _ in range(3):  # withdrawals are never limited
        response = client.post(f"{path}/lists/personal-notes", data={"csrf_token": token})
        assert response.status_code == 303
    assert state_of(contact, notes) == "unsubscribed"
