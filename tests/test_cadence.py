"""Cadence: the admin offers them on the list form, the contact picks one on the page,
the consent answer carries it, and the choice is logged."""

from __future__ import annotations

import json

import pytest
from admin_helpers import create, sign_in
from helpers import csrf_token, events_of

from preference_center import may_send
from preference_center.extensions import db
from preference_center.models import MailingList


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def pat(make, insights):
    contact = make.contact("pat@example.com")
    make.subscription(contact, insights)
    return contact


def offer(insights, *cadences: str) -> None:
    insights.cadences = "\n".join(cadences)
    db.session.commit()


def test_the_admin_sets_cadences_on_the_list_form_without_a_new_notice(app, client, insights):
    create()
    sign_in(client, "ada@example.com")
    form = client.get("/admin/lists/market-insights")
    assert 'name="cadences"' in form.text
    # The copy-paste signup snippet (issue 14): an iframe and a link.
    assert '&lt;iframe src="https://prefs.example.test/s/market-insights?origin=' in form.text
    assert "Sign up for Market Insights&lt;/a&gt;" in form.text
    response = client.post(
        "/admin/lists/market-insights",
        data={
            "csrf_token": csrf_token(form.text),
            "name": insights.name,
            "description": insights.description,
            "frequency": insights.frequency,
            "cadences": "every issue\r\n  monthly digest \r\n\r\nevery issue",
        },
    )
    assert response.status_code == 303
    db.session.commit()
    saved = db.session.execute(
        db.select(MailingList).filter_by(slug="market-insights")
    ).scalar_one()
    assert saved.cadence_choices == ["every issue", "monthly digest"]
    assert saved.notice_version == 1


def test_a_list_without_cadences_offers_no_choice_and_answers_none(client, manage_path, pat):
    assert "How often" not in client.get(manage_path(pat)).text
    assert may_send.check("pat@example.com", "market-insights").cadence is None


def test_the_contact_picks_a_cadence_and_the_answer_carries_it(
    client, manage_path, pat, insights, runner, api_auth
):
    offer(insights, "every issue", "monthly digest")
    path = manage_path(pat)
    page = client.get(path)
    assert "How often: Market Insights" in page.text
    # The first is the default before anyone chooses.
    assert may_send.check("pat@example.com", "market-insights").cadence == "every issue"
    response = client.post(
        f"{path}/lists/market-insights/cadence",
        data={"csrf_token": csrf_token(page.text), "cadence": "monthly digest"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "Saved: Market Insights — monthly digest." in response.text
    assert '<option value="monthly digest" selected>' in response.text
    cli = json.loads(runner.invoke(args=["may-send", "pat@example.com", "market-insights"]).output)
    assert (cli["allowed"], cli["cadence"]) == (True, "monthly digest")
    api = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights", headers=api_auth()
    ).get_json()
    assert api["cadence"] == "monthly digest"
    event = events_of(pat)[-1]
    assert (event.action, event.detail) == ("cadence", "every issue → monthly digest")


def test_a_cadence_the_list_does_not_offer_is_refused(client, manage_path, pat, insights):
    offer(insights, "every issue", "monthly digest")
    path = manage_path(pat)
    page = client.get(path)
    response = client.post(
        f"{path}/lists/market-insights/cadence",
        data={"csrf_token": csrf_token(page.text), "cadence": "hourly"},
    )
    assert response.status_code == 409
    assert "Choose one of the cadences" in response.text
    assert [e.action for e in events_of(pat)].count("cadence") == 0
    no_js = client.post(
        f"{path}/lists/market-insights/cadence",
        data={"csrf_token": csrf_token(page.text), "cadence": "every issue"},
    )
    assert no_js.status_code == 303
