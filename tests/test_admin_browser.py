"""The admin area in a real browser: search as you type, an export download, and
every page checked by axe-core and for CSP violations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from admin_helpers import PASSWORD, create
from helpers import events_of
from playwright.sync_api import expect

from preference_center.admin import import_jobs
from preference_center.extensions import db
from preference_center.importers import ImportOptions
from preference_center.models import AdminUser

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def people(app, live_server, make):
    insights = make.list("insights")
    pat = make.contact("pat.lee@example.com", name="Pat Lee")
    make.subscription(pat, insights)
    sam = make.contact("sam.rivera@example.com", name="Sam Rivera")
    make.subscription(sam, insights)
    return {"list": insights, "pat": pat, "sam": sam}


def sign_in(page, live_server, role: str = "admin"):
    create(f"{role}@example.com", role)
    page.goto(f"{live_server.url}/admin/contacts")
    expect(page).to_have_url(re.compile(r"/admin/login\?next="))
    page.get_by_label("Email").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/admin/contacts")


def test_search_updates_the_results_as_you_type(page, live_server, people):
    sign_in(page, live_server)
    page.evaluate("window.notReloaded = true")
    results = page.locator("#contact-results")
    expect(results).to_contain_text("Pat Lee")

    page.get_by_label("Search by email or name").press_sequentially("rive", delay=50)

    expect(results).to_contain_text("Contacts matching “rive”")
    expect(results).to_contain_text("Sam Rivera")
    expect(results).not_to_contain_text("Pat Lee")
    assert page.evaluate("window.notReloaded") is True  # swapped in place, no page load
    results.get_by_role("link", name="Sam Rivera").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sam Rivera")


def test_an_auditor_downloads_the_export_from_the_log_page(page, live_server, people):
    sign_in(page, live_server, role="auditor")
    page.goto(f"{live_server.url}/admin/log")
    page.get_by_label("Format").select_option("csv")

    with page.expect_download() as info:
        page.get_by_role("button", name="Download the export").click()

    download = info.value
    assert re.fullmatch(r"consent-log-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("event_id,occurred_at,contact_id")
    assert len(lines) == 3
    assert events_of(people["sam"])[0].hash in lines[2]


def test_every_admin_page_passes_axe_and_the_csp(page, live_server, people, app):
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    sign_in(page, live_server)
    event = events_of(people["pat"])[0]
    # An import never started: its page polls, and is checked as it looks while waiting.
    options = ImportOptions("insights", "sheet", "none", "Dana Reyes", filename="c.csv")
    job = import_jobs.create(AdminUser.query.first(), options, b"email\nkim@example.com\n")
    db.session.commit()
    values = {
        "slug": "insights",
        "public_id": people["pat"].public_id,
        "event_id": event.id,
        "job_id": job.id,
    }
    paths = [
        rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin.")
        and "GET" in rule.methods
        and rule.endpoint not in ("admin.login", "admin.export_log")
    ]
    assert len(paths) == 12
    axe = AXE.read_text()
    for path in paths:
        page.goto(live_server.url + path)
        page.evaluate(axe)  # injected: the CSP allows no inline or foreign script
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        found = [(v["id"], [n["target"] for n in v["nodes"]]) for v in result["violations"]]
        assert found == [], (path, found)
    page.goto(f"{live_server.url}/admin/log")
    page.get_by_role("button", name="Verify the chains").click()
    expect(page.get_by_role("status")).to_contain_text("Every chain is intact")
    page.goto(f"{live_server.url}/admin/login")  # signed in: sent on to the dashboard
    assert violations == []
    db.session.commit()


def test_an_upload_shows_its_progress_then_its_summary_without_a_reload(
    page, live_server, people, tmp_path
):
    rows = 6000
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "email,name\n" + "".join(f"person{n}@example.com,Person {n}\n" for n in range(rows))
    )
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/admin/imports")
    page.get_by_label("CSV file").set_input_files(contacts)
    page.get_by_label("List", exact=True).select_option("insights")
    page.get_by_label("Source (where these people come from)").fill("seminar sign-up sheet")
    page.get_by_label("Legal basis").select_option("none")
    page.get_by_role("button", name="Import").click()

    expect(page).to_have_url(re.compile(r"/admin/imports/\d+$"))
    page.evaluate("window.notReloaded = true")
    bar = page.locator("progress#import-bar")
    expect(bar).to_be_visible()
    expect(page.locator(".import-rows")).to_contain_text(
        re.compile(r"[1-9][\d,]* of about 6,000 rows")
    )
    expect(page.get_by_role("heading", name="Imported into insights")).to_be_visible(timeout=60_000)
    expect(page.locator("p.ok")).to_contain_text(f"invited {rows}, ")
    expect(bar).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True  # swapped in place by htmx
    db.session.commit()
