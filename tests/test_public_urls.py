"""Public links come from the URL map on PUBLIC_BASE_URL; their tokens never reach a log."""

from __future__ import annotations

import logging

from preference_center import tokens
from preference_center.security import RedactTokens

TOKEN = "eyJjIjoiYWJjIn0.Z3Fx.c2lnbmF0dXJl-_x"


def test_links_use_public_base_url_and_never_the_requests_host(app, make):
    pat = make.contact("pat@example.com")
    with app.test_request_context("/", headers={"Host": "evil.example"}):
        manage = tokens.manage_url(pat)
        one_click = tokens.unsubscribe_url(pat, "insights")
    assert manage.startswith("https://prefs.example.test/p/")
    assert one_click.startswith("https://prefs.example.test/u/")
    assert tokens.verify(tokens.MANAGE, manage.rsplit("/", 1)[1]).contact.id == pat.id


def test_a_base_url_with_a_path_keeps_it(app, make):
    pat = make.contact("pat@example.com")
    app.config["PUBLIC_BASE_URL"] = "https://mail.example.org/preferences"
    assert tokens.manage_url(pat).startswith("https://mail.example.org/preferences/p/")
    assert tokens.public_url("fresh_link.form") == "https://mail.example.org/preferences/p"


def test_every_route_with_a_token_is_redacted_in_logs(app, caplog):
    rules = [rule for rule in app.url_map.iter_rules() if "token" in rule.arguments]
    assert len(rules) >= 10  # manage, one-click, confirm, verify-address, download, erase…
    logger = logging.getLogger("werkzeug")
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        for rule in rules:
            values = {name: "x" for name in rule.arguments} | {"token": TOKEN}
            path = tokens.public_url(rule.endpoint, **values)
            logger.info('"%s %s HTTP/1.1" 200 -', "GET", path)
    assert TOKEN not in caplog.text
    assert caplog.text.count("[token]") == len(rules)


def test_paths_without_a_token_are_left_alone():
    redact = RedactTokens().redact
    assert redact("GET /p HTTP/1.1") == "GET /p HTTP/1.1"
    assert redact("GET /api/v1/links HTTP/1.1") == "GET /api/v1/links HTTP/1.1"
    assert redact("GET /admin/contacts/abc HTTP/1.1") == "GET /admin/contacts/abc HTTP/1.1"


def test_link_maker_gives_the_links_manage_url_and_unsubscribe_url_give(app, make):
    pat = make.contact("pat@example.com")
    app.config["PUBLIC_BASE_URL"] = "https://mail.example.org/preferences"
    manage = tokens.link_maker(tokens.MANAGE, "preferences.page")
    one_click = tokens.link_maker(tokens.UNSUBSCRIBE, "unsubscribe.one_click", l="insights")

    made = manage(pat), one_click(pat)
    expected = tokens.manage_url(pat), tokens.unsubscribe_url(pat, "insights")

    purposes = (tokens.MANAGE, tokens.UNSUBSCRIBE)
    for link, usual, purpose in zip(made, expected, purposes, strict=True):
        assert link.rsplit("/", 1)[0] == usual.rsplit("/", 1)[0]
        claims = tokens.verify(purpose, link.rsplit("/", 1)[1])
        assert claims.contact.id == pat.id
        assert claims.scope == tokens.verify(purpose, usual.rsplit("/", 1)[1]).scope
    assert made[0].startswith("https://mail.example.org/preferences/p/")
    assert tokens.verify(tokens.UNSUBSCRIBE, made[1].rsplit("/", 1)[1]).scope == {"l": "insights"}
