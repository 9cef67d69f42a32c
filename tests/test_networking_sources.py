"""A connection is not consent, at every door.

A source that names a network or its connections (or a LinkedIn export,
whatever its source says) may only invite, on basis ``none``: the CLI with a
plain CSV, the admin import form, the admin's contact page, the API and the
Python helpers all ask ``consent.Provenance.checked`` and say no in their own
way, writing nothing. With ``none`` every door invites.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from admin_helpers import create, data_counts, finished_import, row_counts, sign_in, token_of
from helpers import all_events, state_of

from preference_center import consent, may_send
from preference_center.consent import Provenance, Via
from preference_center.extensions import db

NETWORK_SOURCES = [
    "networking import",
    "LinkedIn connections",
    "my Xing contacts",
    "Facebook friends",
    "connections export",
]
OTHER_BASES = ["express", "double_opt_in", "implied_inquiry"]
# A recent inquiry, so implied_inquiry is refused for the source alone.
RECENTLY = (date.today() - timedelta(days=10)).isoformat()
CSV = f"email,name,basis_date\nkim@example.com,Kim,{RECENTLY}\nlou@example.com,Lou,{RECENTLY}\n"


@pytest.fixture
def insights(make):
    return make.list("insights")


@pytest.fixture
def signed_in(client, app):
    create("ada@example.com", "admin")
    assert sign_in(client, "ada@example.com").status_code == 303
    return client


def invited(*emails: str) -> set[str]:
    """Which of ``emails`` are invited to insights, and nothing more (may-send says no)."""
    answers = {email: may_send.check(email, "insights") for email in emails}
    return {email for email, answer in answers.items() if answer.status == "invited"}


@pytest.mark.parametrize("source", NETWORK_SOURCES)
def test_the_rule_names_networks_and_their_connections(source):
    assert consent.is_networking_source(source)


@pytest.mark.parametrize("source", ["signup form", "seminar sheet", "boxing club", "address book"])
def test_other_sources_are_not_networks(source):
    assert not consent.is_networking_source(source)


# --- Python: consent.place -------------------------------------------------------


@pytest.mark.parametrize("basis", OTHER_BASES)
@pytest.mark.parametrize("source", NETWORK_SOURCES[:3])
def test_python_place_refuses_a_network_on_any_other_basis(make, insights, source, basis):
    kim = make.contact("kim@example.com")
    before = row_counts()
    provenance = Provenance(source, "Dana Reyes", basis, "connected", date.fromisoformat(RECENTLY))

    with pytest.raises(consent.NetworkingSource, match="A connection is not consent"):
        consent.place(kim, insights, "subscribed", provenance, Via("api", "test"))
    with pytest.raises(consent.NetworkingSource, match="only be invited"):
        consent.place(kim, insights, "invited", provenance, Via("api", "test"))
    db.session.rollback()

    assert row_counts() == before and state_of(kim, insights) is None


def test_python_place_invites_a_network_on_basis_none(make, insights):
    kim = make.contact("kim@example.com")
    provenance = Provenance("LinkedIn connections", "Dana Reyes", "none")

    _, outcome = consent.place(kim, insights, "invited", provenance, Via("api", "test"))
    db.session.commit()

    assert outcome == "created" and invited("kim@example.com") == {"kim@example.com"}


# --- CLI: import-contacts with a plain CSV ----------------------------------------


def import_csv(runner, tmp_path, source: str, basis: str):
    path = tmp_path / "contacts.csv"
    path.write_text(CSV, encoding="utf-8")
    args = ["import-contacts", str(path), "--list", "insights", "--source", source]
    return runner.invoke(args=[*args, "--basis", basis, "--added-by", "Dana Reyes"])


@pytest.mark.parametrize("basis", OTHER_BASES)
@pytest.mark.parametrize("source", NETWORK_SOURCES)
def test_cli_refuses_a_plain_csv_from_a_network_on_any_other_basis(
    runner, tmp_path, insights, source, basis
):
    before = row_counts()

    result = import_csv(runner, tmp_path, source, basis)

    assert result.exit_code == 1, result.output
    assert "A connection is not consent" in result.output and "--basis none" in result.output
    assert "Traceback" not in result.output
    assert row_counts() == before


def test_cli_invites_a_plain_csv_from_a_network_on_basis_none(runner, tmp_path, insights):
    result = import_csv(runner, tmp_path, "networking import", "none")

    assert result.exit_code == 0, result.output
    assert "invited 2" in result.output
    assert invited("kim@example.com", "lou@example.com") == {"kim@example.com", "lou@example.com"}


# --- admin: the import form -------------------------------------------------------


def upload(client, source: str, basis: str):
    data = {
        "csrf_token": token_of(client),
        "list": "insights",
        "source": source,
        "basis": basis,
        "added_by": "Dana Reyes",
        "file": (io.BytesIO(CSV.encode()), "contacts.csv"),
    }
    return client.post("/admin/imports", data=data, content_type="multipart/form-data")


@pytest.mark.parametrize("basis", OTHER_BASES)
@pytest.mark.parametrize("source", NETWORK_SOURCES[:3])
def test_admin_import_form_refuses_a_network_on_any_other_basis(signed_in, insights, source, basis):
    before = data_counts()

    response = finished_import(signed_in, upload(signed_in, source, basis))

    html = response.get_data(as_text=True)
    assert "Refused" in html and "A connection is not consent" in html
    assert data_counts() == before


def test_admin_import_form_invites_a_network_on_basis_none(signed_in, insights):
    response = finished_import(signed_in, upload(signed_in, "Facebook friends", "none"))

    assert response.status_code == 200 and "invited 2" in response.get_data(as_text=True)
    assert invited("kim@example.com", "lou@example.com") == {"kim@example.com", "lou@example.com"}


# --- API: POST /api/v1/contacts ------------------------------------------------------


def post_contact(client, headers, source: str, basis: str, state: str = "subscribed"):
    spec = {
        "list": "insights",
        "state": state,
        "source": source,
        "added_by": "Dana Reyes",
        "basis": basis,
        "evidence": "connected in 2011",
        "basis_date": RECENTLY,
    }
    return client.post(
        "/api/v1/contacts",
        headers=headers,
        json={"email": "kim@example.com", "subscriptions": [spec]},
    )


@pytest.mark.parametrize("state", ["subscribed", "invited"])
@pytest.mark.parametrize("basis", OTHER_BASES)
@pytest.mark.parametrize("source", NETWORK_SOURCES[:3])
def test_api_refuses_a_network_on_any_other_basis(client, api_auth, insights, source, basis, state):
    headers = api_auth("contacts:write")
    before = row_counts()

    response = post_contact(client, headers, source, basis, state)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "networking_source"
    assert "A connection is not consent" in error["message"]
    assert row_counts() == before
    assert all_events() == []


def test_api_invites_a_network_on_basis_none(client, api_auth, insights):
    headers = api_auth("contacts:write")
    response = post_contact(client, headers, "LinkedIn connections", "none", "invited")

    assert response.status_code == 201, response.get_json()
    assert invited("kim@example.com") == {"kim@example.com"}
