"""The admin area: sessions, roles, CSRF, lists, contacts, disputes, log, dashboard."""

from __future__ import annotations

import io
import json
import re

import pytest
from admin_helpers import (
    PASSWORD,
    create,
    data_counts,
    finished_import,
    row_counts,
    sign_in,
    token_of,
)
from helpers import all_events, csrf_token, events_of, state_of

from preference_center import config, consent
from preference_center.admin import READ_ONLY_POSTS, import_jobs
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.importers import ImportOptions
from preference_center.models import AdminAction, AdminUser, ListNotice, MailingList


def actions(name: str) -> list[AdminAction]:
    return list(db.session.execute(db.select(AdminAction).filter_by(action=name)).scalars())


@pytest.fixture
def admin(app):
    return create("ada@example.com", "admin")


@pytest.fixture
def signed_in(client, admin):
    assert sign_in(client, admin.email).status_code == 303
    return client


@pytest.fixture
def world(make):
    """A list with history, a contact on it, and one event: enough for every URL."""
    insights = make.list("insights")
    pat = make.contact("pat.lee@example.com", name="Pat Lee")
    make.subscription(pat, insights)
    # An upload never started (no runner): its pages are admin pages like the others.
    job = import_jobs.create(
        create("importer@example.com"),
        ImportOptions("insights", "sheet", "none", "Dana Reyes", filename="c.csv"),
        b"email\nkim@example.com\n",
    )
    db.session.commit()
    return {"list": insights, "contact": pat, "job": job}


def admin_rules(app):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin.")]


def url_for_rule(rule, world) -> str:
    event = events_of(world["contact"])[0]
    values = {
        "slug": world["list"].slug,
        "public_id": world["contact"].public_id,
        "event_id": event.id,
        "job_id": world["job"].id,
    }
    return rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]


# --- create-admin -------------------------------------------------------------------


def test_create_admin_reads_the_password_twice_from_stdin_and_hashes_it(runner, client):
    result = runner.invoke(
        args=["create-admin", "Root@Example.com", "--role", "auditor"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )

    assert result.exit_code == 0, result.output
    admin = db.session.execute(db.select(AdminUser)).scalar_one()
    assert (admin.email, admin.role) == ("root@example.com", "auditor")
    assert admin.password_hash.startswith("scrypt:") and PASSWORD not in admin.password_hash
    assert PASSWORD not in result.output
    assert [a.actor for a in actions("create_admin")] == ["cli"]
    assert sign_in(client, "root@example.com").status_code == 303


def test_create_admin_refuses_a_short_password_and_a_second_account(runner, admin):
    short = runner.invoke(args=["create-admin", "bob@example.com"], input="short\nshort\n")
    again = runner.invoke(args=["create-admin", admin.email], input=f"{PASSWORD}\n{PASSWORD}\n")

    assert short.exit_code == 1 and "at least 12 characters" in short.output
    assert again.exit_code == 1 and "already exists" in again.output
    assert db.session.execute(db.select(db.func.count(AdminUser.id))).scalar_one() == 1


# --- signing in and out -------------------------------------------------------------


def test_login_starts_a_session_with_a_safe_cookie_and_records_it(client, admin):
    response = sign_in(client, admin.email)

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/admin/").status_code == 200
    [login] = actions("login")
    assert (login.admin_id, login.actor) == (admin.id, f"admin:{admin.id} ada@example.com")


def test_the_session_cookie_is_secure_when_served_over_https(monkeypatch, tmp_path):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://prefs.example.com")
    assert config.from_environment(str(tmp_path))["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    assert config.from_environment(str(tmp_path))["SESSION_COOKIE_SECURE"] is False


def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal(client, admin):
    wrong = sign_in(client, admin.email, "not the password")
    unknown = sign_in(client, "nobody@example.com")

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "do not match an active admin account" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_a_disabled_admin_cannot_sign_in(client, admin):
    admin.disabled_at = db.func.now()
    db.session.commit()
    assert sign_in(client, admin.email).status_code == 401


def test_login_is_rate_limited_after_five_failures(client, admin):
    statuses = [sign_in(client, admin.email, "guess").status_code for _ in range(5)]
    blocked = sign_in(client, admin.email)  # the right password, too late

    assert statuses == [401] * 5
    assert blocked.status_code == 429
    assert client.get("/admin/").status_code == 302


def test_login_only_follows_next_inside_the_admin_area(client, admin):
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    data = {"email": admin.email, "password": PASSWORD, "csrf_token": token}

    away = client.post("/admin/login", data={**data, "next": "https://evil.example/"})
    assert away.headers["Location"] == "/admin/"
    client.post("/admin/logout", data={"csrf_token": token_of(client)})
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    inside = client.post(
        "/admin/login", data={**data, "csrf_token": token, "next": "/admin/disputes"}
    )
    assert inside.headers["Location"] == "/admin/disputes"


def test_logout_is_a_post_and_ends_the_session(signed_in):
    assert signed_in.get("/admin/logout").status_code == 405
    response = signed_in.post("/admin/logout", data={"csrf_token": token_of(signed_in)})

    assert response.status_code == 303
    assert signed_in.get("/admin/").status_code == 302
    assert len(actions("logout")) == 1


def test_every_admin_page_without_a_session_redirects_to_login(app, client, world):
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    before = row_counts()
    checked = 0
    for rule in admin_rules(app):
        if rule.endpoint in ("admin.login", "admin.login_submit"):
            continue
        url = url_for_rule(rule, world)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = client.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 302, (method, url)
            assert response.headers["Location"].startswith("/admin/login?next="), url
            checked += 1
    assert checked >= 20
    assert row_counts() == before


# --- roles and CSRF -----------------------------------------------------------------


def test_an_auditor_can_read_every_page(app, client, world):
    create("audrey@example.com", "auditor")
    sign_in(client, "audrey@example.com")
    for rule in admin_rules(app):
        if "GET" in rule.methods and rule.endpoint not in ("admin.login", "admin.export_log"):
            url = url_for_rule(rule, world)
            assert client.get(url).status_code == 200, url


def test_an_auditor_cannot_change_anything(app, client, world):
    create("audrey@example.com", "auditor")
    sign_in(client, "audrey@example.com")
    token = token_of(client)
    before = row_counts()
    mutating = [
        r
        for r in admin_rules(app)
        if "POST" in r.methods and r.endpoint not in READ_ONLY_POSTS | {"admin.login_submit"}
    ]
    forms = {
        "admin.list_create": {
            "slug": "new",
            "name": "N",
            "description": "D",
            "audience": "business",
        },
        "admin.list_update": {"name": "Renamed", "description": "D", "frequency": "Weekly"},
        "admin.contact_withdraw": {"reason": "asked by phone"},
        "admin.contact_place": {
            "list": "insights",
            "state": "subscribed",
            "basis": "express",
            "evidence": "form",
            "reason": "r",
        },
    }
    assert len(mutating) >= 8
    for rule in mutating:
        data = {"csrf_token": token, **forms.get(rule.endpoint, {})}
        response = client.post(url_for_rule(rule, world), data=data)
        assert response.status_code == 403, rule.endpoint
        assert "auditor" in response.get_data(as_text=True)
    assert row_counts() == before
    assert state_of(world["contact"], world["list"]) == "subscribed"


def test_a_post_without_the_csrf_token_is_refused(signed_in):
    data = {"slug": "news", "name": "News", "description": "D", "audience": "business"}
    response = signed_in.post("/admin/lists", data=data)

    assert response.status_code == 400
    assert "form has expired" in response.get_data(as_text=True)
    assert db.session.execute(db.select(MailingList).filter_by(slug="news")).first() is None


def test_an_htmx_request_carries_the_token_in_a_header(signed_in):
    page = signed_in.get("/admin/").get_data(as_text=True)
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    data = {"slug": "news", "name": "News", "description": "D", "audience": "business"}

    response = signed_in.post(
        "/admin/lists", data=data, headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    assert response.status_code == 303


# --- lists --------------------------------------------------------------------------


def create_list(client, **fields):
    data = {
        "slug": "news",
        "name": "News",
        "description": "Product news.",
        "frequency": "Monthly",
        "audience": "business",
        **fields,
    }
    return client.post("/admin/lists", data={"csrf_token": token_of(client), **data})


def test_creating_a_list_writes_its_first_notice_version(signed_in):
    response = create_list(signed_in)

    assert response.status_code == 303
    news = db.session.execute(db.select(MailingList).filter_by(slug="news")).scalar_one()
    assert (news.name, news.audience, news.notice_version) == ("News", "business", 1)
    assert [(n.version, n.name) for n in news.notices] == [(1, "News")]
    assert json.loads(actions("list_create")[0].detail) == {"audience": "business", "list": "news"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slug": "Not A Slug"}, "lower-case letters"),
        ({"name": ""}, "needs a name"),
        ({"audience": "friends"}, "personal or business"),
        ({"description": " "}, "Say what the list sends"),
    ],
)
def test_a_list_with_bad_fields_is_refused_with_a_message(signed_in, fields, message):
    response = create_list(signed_in, **fields)

    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.execute(db.select(db.func.count(MailingList.id))).scalar_one() == 0


def test_a_duplicate_slug_is_refused(signed_in, make):
    make.list("news")
    response = create_list(signed_in)
    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)


def test_editing_the_promise_makes_a_new_notice_version_and_old_events_keep_theirs(
    signed_in, admin, world
):
    insights, pat = world["list"], world["contact"]
    data = {"name": "Market Insights", "description": "Weekly now.", "frequency": "Weekly"}

    response = signed_in.post(
        "/admin/lists/insights", data={"csrf_token": token_of(signed_in), **data}
    )

    assert response.status_code == 303
    db.session.expire_all()
    assert insights.notice_version == 2
    assert (insights.name, insights.frequency) == ("Market Insights", "Weekly")
    notices = db.session.execute(
        db.select(ListNotice).filter_by(list_id=insights.id).order_by(ListNotice.version)
    ).scalars()
    assert [(n.version, n.frequency) for n in notices] == [(1, "Monthly"), (2, "Weekly")]
    # The consent given before the edit still names the version it was given under.
    subscription = consent.find_subscription(pat, insights)
    consent.withdraw(subscription, Via("preference_page", "contact"))
    db.session.commit()
    assert [e.notice_version for e in events_of(pat)] == [1, 2]
    assert "Weekly now." in signed_in.get("/admin/lists/insights").get_data(as_text=True)


def test_saving_an_unchanged_promise_makes_no_new_version(signed_in, world):
    data = {"name": "Insights", "description": "What insights sends.", "frequency": "Monthly"}
    signed_in.post("/admin/lists/insights", data={"csrf_token": token_of(signed_in), **data})
    db.session.expire_all()
    assert world["list"].notice_version == 1
    assert actions("list_edit") == []


def test_an_archived_list_is_no_longer_offered_and_can_never_be_deleted(
    signed_in, world, manage_path, make
):
    offers = make.list("offers")
    token = token_of(signed_in)

    assert (
        signed_in.post("/admin/lists/offers/archive", data={"csrf_token": token}).status_code == 303
    )
    refused = signed_in.post("/admin/lists/insights/delete", data={"csrf_token": token})

    db.session.expire_all()
    assert offers.archived_at is not None
    page = signed_in.get(manage_path(make.contact("new@example.com"))).get_data(as_text=True)
    assert "Receive Offers" not in page and "Receive Insights" in page
    assert refused.status_code == 409 and "archive it instead" in refused.get_data(as_text=True)
    assert db.session.get(MailingList, world["list"].id) is not None


def test_a_list_nobody_was_ever_on_can_be_deleted(signed_in, make):
    make.list("typo")
    response = signed_in.post("/admin/lists/typo/delete", data={"csrf_token": token_of(signed_in)})
    assert response.status_code == 303
    assert db.session.execute(db.select(MailingList).filter_by(slug="typo")).first() is None


# --- contacts -----------------------------------------------------------------------


def test_search_finds_contacts_by_email_or_name(signed_in, world, make):
    make.contact("sam.rivera@example.com", name="Sam Rivera")

    by_email = signed_in.get("/admin/contacts?q=PAT.LEE").get_data(as_text=True)
    by_name = signed_in.get("/admin/contacts?q=rivera").get_data(as_text=True)
    wildcard = signed_in.get("/admin/contacts?q=%25").get_data(as_text=True)

    assert "Pat Lee" in by_email and "Sam Rivera" not in by_email
    assert "Sam Rivera" in by_name and "Pat Lee" not in by_name
    assert "No contact matches" in wildcard  # % is a character, not a wildcard


def test_htmx_search_answers_with_the_results_only(signed_in, world):
    response = signed_in.get("/admin/contacts?q=pat", headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)

    assert html.lstrip().startswith('<section id="contact-results"')
    assert "<html" not in html and "Pat Lee" in html
    assert "HX-Request" in response.headers["Vary"]


def test_a_contact_page_shows_provenance_and_the_history_in_order(signed_in, world):
    pat, insights = world["contact"], world["list"]
    consent.withdraw(consent.find_subscription(pat, insights), Via("one_click", "contact"))
    db.session.commit()

    html = signed_in.get(f"/admin/contacts/{pat.public_id}").get_data(as_text=True)

    assert "Dana Reyes added you on" in html  # wording.why, the contact's own sentence
    assert "source: signup form" in html and "ticked the box" in html
    timeline = html[html.index("<h2>History</h2>") :]
    assert timeline.index("<strong>subscribe</strong>") < timeline.index(
        "<strong>withdraw</strong>"
    )


def post_form(client, path: str, **data):
    return client.post(path, data={"csrf_token": token_of(client), **data})


def test_an_admin_withdrawal_needs_a_reason_and_goes_through_the_state_machine(
    signed_in, admin, world
):
    pat, insights = world["contact"], world["list"]
    path = f"/admin/contacts/{pat.public_id}/lists/insights/withdraw"
    before = len(events_of(pat))

    refused = post_form(signed_in, path, reason="  ")
    assert refused.status_code == 422
    assert "Give a reason" in refused.get_data(as_text=True)
    assert len(events_of(pat)) == before and state_of(pat, insights) == "subscribed"

    assert post_form(signed_in, path, reason="Asked us by phone").status_code == 303
    event = events_of(pat)[-1]
    assert (event.action, event.from_state, event.to_state) == (
        "withdraw",
        "subscribed",
        "unsubscribed",
    )
    assert (event.actor, event.channel, event.detail) == (
        f"admin:{admin.id}",
        "admin",
        "Asked us by phone",
    )
    assert state_of(pat, insights) == "unsubscribed"
    [entry] = actions("contact_withdraw")
    assert json.loads(entry.detail)["reason"] == "Asked us by phone"


@pytest.mark.parametrize(
    "fields",
    [
        {"basis": "express", "evidence": ""},
        {"basis": "", "evidence": "Signed the form at the seminar"},
        {"basis": "none", "evidence": "Signed the form at the seminar"},
    ],
)
def test_an_admin_can_never_subscribe_without_basis_and_evidence(signed_in, make, fields):
    offers = make.list("offers")
    sam = make.contact("sam@example.com")
    form = {"list": "offers", "state": "subscribed", "reason": "Seminar sign-up", **fields}

    response = post_form(signed_in, f"/admin/contacts/{sam.public_id}/consent", **form)

    assert response.status_code == 409
    assert "basis with evidence" in response.get_data(as_text=True)
    assert state_of(sam, offers) is None and events_of(sam) == []


def test_an_admin_subscription_with_basis_evidence_and_reason_is_logged(signed_in, admin, make):
    offers = make.list("offers")
    sam = make.contact("sam@example.com")
    form = {
        "list": "offers",
        "state": "subscribed",
        "basis": "express",
        "evidence": "Ticked 'send me offers' on the paper form, 12 May",
        "reason": "Seminar sign-up sheet",
    }

    response = post_form(signed_in, f"/admin/contacts/{sam.public_id}/consent", **form)

    assert response.status_code == 303
    [event] = events_of(sam)
    assert (event.action, event.to_state, event.basis) == ("subscribe", "subscribed", "express")
    assert (event.actor, event.channel) == (f"admin:{admin.id}", "admin")
    assert (event.evidence, event.detail) == (form["evidence"], "Seminar sign-up sheet")
    subscription = consent.find_subscription(sam, offers)
    assert (subscription.source, subscription.added_by) == ("admin", admin.email)


def test_an_admin_can_invite_but_not_bring_back_someone_who_withdrew(signed_in, world, make):
    pat, insights = world["contact"], world["list"]
    offers = make.list("offers")
    consent.withdraw(consent.find_subscription(pat, insights), Via("one_click", "contact"))
    db.session.commit()
    path = f"/admin/contacts/{pat.public_id}/consent"

    invited = post_form(signed_in, path, list="offers", state="invited", reason="Met at fair")
    back = post_form(
        signed_in,
        path,
        list="insights",
        state="subscribed",
        basis="express",
        evidence="said yes on the phone",
        reason="phone call",
    )

    assert invited.status_code == 303 and state_of(pat, offers) == "invited"
    assert events_of(pat)[-1].detail == "Met at fair"
    assert back.status_code == 409 and "only they can" in back.get_data(as_text=True)
    assert state_of(pat, insights) == "unsubscribed"


# --- disputes, the log, the dashboard -----------------------------------------------


def test_disputes_show_the_words_and_who_added_the_contact_from_where(signed_in, make):
    offers = make.list("offers")
    kim = make.contact("kim@example.com", name="Kim Doe")
    subscription = make.subscription(
        kim, offers, source="trade fair scan", added_by="Lou Sales", evidence="badge scan"
    )
    consent.dispute(subscription, Via("preference_page", "contact"), "I only asked for a brochure")
    db.session.commit()

    html = signed_in.get("/admin/disputes").get_data(as_text=True)

    for text in ("Kim Doe", "I only asked for a brochure", "Lou Sales", "trade fair scan"):
        assert text in html


def test_the_log_filters_by_channel_and_opens_an_event_with_all_its_fields(signed_in, world):
    pat, insights = world["contact"], world["list"]
    consent.withdraw(consent.find_subscription(pat, insights), Via("one_click", "contact"))
    db.session.commit()
    subscribe, withdraw = events_of(pat)

    html = signed_in.get("/admin/log?channel=one_click").get_data(as_text=True)
    assert f">{withdraw.id}</a>" in html and f">{subscribe.id}</a>" not in html
    assert "No events match" in signed_in.get("/admin/log?since=2999-01-01").get_data(as_text=True)
    bad = signed_in.get("/admin/log?since=yesterday")
    assert bad.status_code == 400 and "is not a date" in bad.get_data(as_text=True)

    event_page = signed_in.get(f"/admin/log/{withdraw.id}").get_data(as_text=True)
    assert "Its hash matches its fields." in event_page
    for value in (withdraw.hash, withdraw.prev_hash, withdraw.request_id, pat.public_id):
        assert value in event_page


def test_the_dashboard_draws_weekly_opt_ins_and_outs_as_svg(signed_in, world, make):
    pat, insights = world["contact"], world["list"]
    sam = make.contact("sam@example.com")
    make.subscription(sam, insights)
    consent.withdraw(consent.find_subscription(pat, insights), Via("one_click", "contact"))
    db.session.commit()

    html = signed_in.get("/admin/").get_data(as_text=True)

    assert '<svg class="weekly"' in html and 'role="img"' in html
    assert '<title id="weekly-title-insights">' in html
    assert "2 opt-ins and 1 opt-outs for Insights" in html  # the <desc>
    this_week_in = re.findall(r'class="bar-in"[^>]*height="([\d.]+)"', html)
    assert len(this_week_in) == 12 and float(this_week_in[-1]) > 0
    assert sum(float(h) for h in this_week_in[:-1]) == 0
    assert "subscribed: <strong>1</strong>" in html and "unsubscribed: <strong>1</strong>" in html
    assert "style=" not in html  # the CSP forbids inline styles


# --- verifying, exporting, importing (the ledger and importer modules) --------------


def test_verifying_an_intact_log_says_so_and_is_recorded(client, world):
    create("audrey@example.com", "auditor")  # verifying changes no data: auditors may
    sign_in(client, "audrey@example.com")
    response = post_form(client, "/admin/log/verify")

    assert response.status_code == 200
    assert "Every chain is intact" in response.get_data(as_text=True)
    [entry] = actions("verify_log")
    assert json.loads(entry.detail)["ok"] is True


def test_verifying_names_a_subscription_changed_behind_the_apps_back(signed_in, world):
    pat = world["contact"]
    db.session.execute(
        db.text("UPDATE subscriptions SET state = 'invited' WHERE contact_id = :id"),
        {"id": pat.id},
    )
    db.session.commit()

    response = post_form(signed_in, "/admin/log/verify")

    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "The log does not verify" in html and pat.public_id in html
    assert json.loads(actions("verify_log")[0].detail)["ok"] is False


def test_an_auditor_downloads_a_filtered_export_and_it_is_recorded(client, world, make):
    offers = make.list("offers")
    make.subscription(make.contact("=cmd@example.com"), offers)
    auditor = create("audrey@example.com", "auditor")
    sign_in(client, "audrey@example.com")

    response = client.get("/admin/log/export?format=csv&list=insights&bom=yes")
    body = response.get_data(as_text=True)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert re.match(
        r'attachment; filename="consent-log-\d{8}T\d{6}Z\.csv"',
        response.headers["Content-Disposition"],
    )
    lines = body.splitlines()
    assert lines[0].startswith("\ufeffevent_id,occurred_at")
    assert len(lines) == 2 and "pat.lee@example.com" in lines[1]
    [requested] = actions("export_log_requested")
    assert requested.admin_id == auditor.id
    assert json.loads(requested.detail)["list_slug"] == "insights"
    [manifest] = actions("export_log")
    assert json.loads(manifest.detail)["rows"] == 1


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_the_export_comes_in_json_and_ndjson(signed_in, world, fmt):
    response = signed_in.get(f"/admin/log/export?format={fmt}")
    body = response.get_data(as_text=True)
    rows = json.loads(body) if fmt == "json" else [json.loads(x) for x in body.splitlines()]

    assert [row["email"] for row in rows] == ["pat.lee@example.com"]
    assert rows[0]["hash"] == events_of(world["contact"])[0].hash


def test_an_export_with_a_bad_filter_gets_a_clear_message(signed_in, world):
    for query, message in [
        ("format=xlsx", "Unknown format"),
        ("list=nope", "nope"),
        ("since=last+week", "is not a date"),
    ]:
        response = signed_in.get(f"/admin/log/export?{query}")
        assert response.status_code == 400, query
        assert message in response.get_data(as_text=True)
    assert actions("export_log") == []


def upload(client, content: str, filename: str = "contacts.csv", **fields):
    data = {
        "csrf_token": token_of(client),
        "list": "insights",
        "source": "seminar sign-up sheet",
        "basis": "none",
        "added_by": "Dana Reyes",
        "file": (io.BytesIO(content.encode()), filename),
        **fields,
    }
    return client.post("/admin/imports", data=data, content_type="multipart/form-data")


def test_an_upload_invites_with_the_same_rules_and_summary_as_the_cli(signed_in, admin, world):
    csv_text = "email,name\nkim@example.com,Kim Doe\nlou@example.com,Lou Hart\n"

    response = finished_import(signed_in, upload(signed_in, csv_text))

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "created 0, updated 0, invited 2, unchanged 0, suppressed 0, rejected 0" in html
    invited = [e for e in all_events() if e.action == "invite"]
    assert len(invited) == 2
    assert {(e.channel, e.actor, e.to_state) for e in invited} == {
        ("import", f"admin:{admin.id}", "invited")
    }
    [entry] = actions("import_contacts")
    assert json.loads(entry.detail)["file"] == "contacts.csv"


def test_an_upload_with_bad_rows_writes_nothing_and_lists_the_problems(signed_in, world):
    before = data_counts()
    response = finished_import(
        signed_in, upload(signed_in, "email,name\nkim@example.com,Kim\nnot-an-address,Bo\n")
    )

    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Refused" in html
    assert "nothing was imported" in html and "not-an-address" in html
    assert data_counts() == before


def test_a_linkedin_export_can_only_invite(signed_in, world):
    linkedin = (
        'Notes:\n"When exporting your connection data..."\n\n'
        "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
        "Kim,Doe,https://www.linkedin.com/in/kim,kim@example.com,Acme,CEO,15 Feb 2011\n"
    )
    before = data_counts()
    refused = finished_import(
        signed_in, upload(signed_in, linkedin, "Connections.csv", basis="express")
    )

    assert "Refused" in refused.get_data(as_text=True)
    assert "invited" in refused.get_data(as_text=True)
    assert data_counts() == before
    accepted = finished_import(
        signed_in, upload(signed_in, linkedin, "Connections.csv", basis="none")
    )
    assert accepted.status_code == 200 and "invited 1" in accepted.get_data(as_text=True)


def test_a_larger_contact_file_is_accepted_than_a_public_form_would_take(signed_in, world):
    rows = "".join(f"person{n}@example.com,Person {n}\n" for n in range(3000))
    assert len(rows) > 64 * 1024

    response = finished_import(signed_in, upload(signed_in, "email,name\n" + rows))
    assert response.status_code == 200 and "invited 3000" in response.get_data(as_text=True)


def test_an_htmx_request_without_a_session_sends_the_window_to_login(client, world):
    response = client.get("/admin/contacts?q=pat", headers={"HX-Request": "true"})

    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/admin/login?next=")
    assert response.get_data() == b""


def test_an_unknown_email_is_checked_against_a_hash_as_costly_as_a_real_one():
    """The fixed hash for unknown emails (computing one at import cost every process
    32 MB) has the parameters real passwords are hashed with."""
    from werkzeug.security import check_password_hash, generate_password_hash

    from preference_center.admin import auth

    real = generate_password_hash("a real password", auth.PASSWORD_METHOD)

    assert auth._UNKNOWN_USER_HASH.split("$")[0] == real.split("$")[0]
    assert check_password_hash(auth._UNKNOWN_USER_HASH, "not a password")
