"""RFC 8058 one-click unsubscribe: POST works without cookies or CSRF, GET changes nothing."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
from helpers import all_events, events_of, state_of

from preference_center import tokens
from preference_center.extensions import db

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def pat(make, insights):
    contact = make.contact("pat@example.com", name="Pat")
    make.subscription(contact, insights)
    return contact


@pytest.fixture
def path(pat):
    return urlsplit(tokens.unsubscribe_url(pat, "market-insights")).path


def assert_bare(response) -> None:
    """What RFC 8058 senders and mail providers rely on."""
    assert "Set-Cookie" not in response.headers
    assert "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_one_click_urlencoded_unsubscribes_at_once(client, path, pat, insights):
    events_before = len(events_of(pat))
    response = client.post(path, data=ONE_CLICK, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert_bare(response)
    assert len(response.data) <= 1024 and response.mimetype == "text/html"
    assert b"unsubscribed from Market Insights" in response.data
    assert state_of(pat, insights) == "unsubscribed"
    events = events_of(pat)
    assert len(events) == events_before + 1
    assert (events[-1].action, events[-1].channel, events[-1].to_state) == (
        "withdraw",
        "one_click",
        "unsubscribed",
    )


def test_one_click_multipart_unsubscribes(client, path, pat, insights):
    response = client.post(
        path, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    assert_bare(response)
    assert state_of(pat, insights) == "unsubscribed"


def test_a_repeat_is_a_harmless_200_without_a_second_event(client, path, pat):
    first = client.post(path, data={"List-Unsubscribe": "One-Click"})
    count = len(all_events())
    again = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert first.status_code == again.status_code == 200
    assert b"already unsubscribed" in again.data
    assert_bare(again)
    assert len(all_events()) == count


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=Yes", "application/x-www-form-urlencoded"),
        ("Unsubscribe=One-Click", "application/x-www-form-urlencoded"),
        (ONE_CLICK, "text/plain"),
        ('{"List-Unsubscribe": "One-Click"}', "application/json"),
    ],
)
def test_any_other_body_is_a_400_and_changes_nothing(
    client, path, pat, insights, data, content_type
):
    count = len(all_events())
    response = client.post(path, data=data, content_type=content_type)
    assert response.status_code == 400
    assert "Set-Cookie" not in response.headers
    assert state_of(pat, insights) == "subscribed"
    assert len(all_events()) == count


@pytest.mark.parametrize("method", ["get", "head"])
def test_get_and_head_change_nothing_and_set_no_cookie(client, path, pat, insights, method):
    count = len(all_events())
    client.set_cookie("session", "left-over-from-another-visit")
    response = getattr(client, method)(path)
    assert response.status_code == 200
    assert_bare(response)
    assert state_of(pat, insights) == "subscribed"
    assert len(all_events()) == count


def test_the_page_has_one_button_that_posts_one_click(client, path, pat, insights):
    html = client.get(path).get_data(as_text=True)
    assert f'<form method="post" action="{path}">' in html
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in html
    assert html.count("<button") == 1 and "csrf_token" not in html
    # Never a manage link: the page that emails one (a one-click link outlives manage links).
    assert 'href="https://prefs.example.test/p"' in html
    assert 'href="https://prefs.example.test/p/' not in html
    assert "p***@example.com" in html and "pat@example.com" not in html

    # Submitting that form, exactly as a browser would, unsubscribes.
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and state_of(pat, insights) == "unsubscribed"
    assert b"already unsubscribed" in client.get(path).data


def test_a_list_the_contact_is_not_on(client, make, pat):
    make.list("offers-events", name="Offers & Events")
    path = urlsplit(tokens.unsubscribe_url(pat, "offers-events")).path
    count = len(all_events())
    assert b"not on Offers &amp; Events" in client.get(path).data
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and b"not on Offers &amp; Events" in response.data
    assert len(all_events()) == count


def test_bad_or_expired_links_get_the_one_invalid_link_page(app, client, path, pat):
    for bad in (path[:-3] + "abc", "/u/nonsense", path.replace("/u/", "/u/x")):
        response = client.post(bad, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 404 and b"This link isn" in response.data
        assert client.get(bad).status_code == 404
    # A manage token is not a one-click token: each purpose has its own salt.
    manage_token = tokens.sign(tokens.MANAGE, pat)
    assert (
        client.post("/u/" + manage_token, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    )
    app.config["UNSUBSCRIBE_LINK_MAX_AGE_DAYS"] = -1  # every link is now too old
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 404
    assert client.get(path).status_code == 404


def test_one_click_links_survive_a_reset_of_manage_links(client, path, pat, insights):
    pat.token_version += 1  # the contact revoked every manage link
    db.session.commit()
    html = client.get(path).get_data(as_text=True)
    # The page no longer hands out a manage link from an old email.
    assert 'href="https://prefs.example.test/p"' in html
    assert 'href="https://prefs.example.test/p/' not in html
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and state_of(pat, insights) == "unsubscribed"


def test_one_click_over_real_http_as_a_mail_provider_sends_it(live_server, pat, insights):
    url = urlsplit(tokens.unsubscribe_url(pat, "market-insights"))
    db.session.rollback()  # release SQLite's write lock: the server thread writes
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request(
        "POST",
        url.path,
        body=ONE_CLICK.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200 and len(body) <= 1024
    assert response.getheader("Set-Cookie") is None and response.getheader("Location") is None
    assert state_of(pat, insights) == "unsubscribed"
