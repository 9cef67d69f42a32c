"""Every public and admin page, as served, through the W3C HTML checker (vnu-jar).

The pages are fetched with the test client (signed in for the admin area),
written to files and checked in one run of the checker. htmx's ``hx-*``
attributes are not in the HTML standard; that one message is filtered out.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import public_pages
import pytest
from admin_helpers import create, finished_import, sign_in, token_of
from helpers import all_events

from preference_center.admin import import_jobs
from preference_center.extensions import db
from preference_center.importers import ImportOptions
from preference_center.models import AdminUser

VNU = (
    Path(__file__).resolve().parent.parent
    / "node_modules"
    / "vnu-jar"
    / "build"
    / "dist"
    / "vnu.jar"
)
HTMX_ATTRIBUTE = re.compile(r"Attribute “hx-[a-z-]+” not allowed")

pytestmark = pytest.mark.skipif(
    shutil.which("java") is None, reason="the W3C checker needs Java, and java is not installed"
)


def test_the_html_checker_is_installed():
    # Not a skip: without the checker the test below would prove nothing.
    assert VNU.exists(), "run `npm ci` (make test does) to install vnu-jar"


def collect(client, pages: dict[str, str], name: str, response) -> None:
    assert response.status_code < 500, (name, response.status_code)
    assert response.mimetype == "text/html", (name, response.mimetype)
    pages[name] = response.get_data(as_text=True)


def public(client, world, pages: dict[str, str], app) -> None:
    for name, path in public_pages.get_pages(world).items():
        collect(client, pages, name, client.get(path))
    csrf = token_of(client, "/p")
    alex = public_pages.manage(world.alex)
    collect(client, pages, "fresh link, refused", client.post("/p", data={"csrf_token": csrf}))
    sent = client.post("/p", data={"csrf_token": csrf, "email": "alex@example.com"})
    collect(client, pages, "fresh link, sent", sent)
    toggled = client.post(f"{alex}/lists/digest", data={"csrf_token": csrf, "subscribed": "yes"})
    collect(client, pages, "preferences, with a flash message", client.get(toggled.location))
    refused = client.post(f"{alex}/business-address", data={"csrf_token": csrf, "email": "x"})
    collect(client, pages, "refused change", refused)
    collect(
        client,
        pages,
        "confirmed",
        client.post(public_pages.confirm(world), data={"csrf_token": csrf}),
    )
    verified = client.post(public_pages.verify(world, "owner"), data={"csrf_token": csrf})
    collect(client, pages, "address approved", verified)
    one_click = client.post(
        public_pages.one_click(world.alex, "notes"), data={"List-Unsubscribe": "One-Click"}
    )
    collect(client, pages, "one-click answer", one_click)
    days = app.config["MANAGE_LINK_MAX_AGE_DAYS"]
    app.config["MANAGE_LINK_MAX_AGE_DAYS"] = -1  # every manage link is now past its age
    try:
        collect(client, pages, "withdraw-only", client.get(alex))
        refused = client.post(
            f"{alex}/lists/extras", data={"csrf_token": csrf, "subscribed": "yes"}
        )
        collect(client, pages, "link expired", refused)
    finally:
        app.config["MANAGE_LINK_MAX_AGE_DAYS"] = days
    collect(
        client,
        pages,
        "reset",
        client.post(f"{public_pages.manage(world.blair)}/reset", data={"csrf_token": csrf}),
    )


def admin(client, world, pages: dict[str, str], app) -> None:
    collect(client, pages, "admin login", client.get("/admin/login"))
    create("ada@example.com", "admin")
    collect(client, pages, "admin login refused", sign_in(client, "ada@example.com", "wrong"))
    assert sign_in(client, "ada@example.com").status_code == 303
    alex = world.alex
    values = {"slug": "insights", "public_id": alex.public_id, "event_id": all_events()[0].id}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin.") and "GET" in rule.methods:
            if rule.endpoint in ("admin.export_log", "admin.login", "admin.import_job"):
                continue  # an import's page is collected below, in each of its states
            path = rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]
            collect(client, pages, f"admin {rule.endpoint}", client.get(path))
    csrf = token_of(client)
    collect(client, pages, "admin contacts search", client.get("/admin/contacts?q=alex"))
    collect(
        client,
        pages,
        "admin log filtered",
        client.get("/admin/log?action=withdraw&since=2020-01-01"),
    )
    collect(
        client,
        pages,
        "admin log verified",
        client.post("/admin/log/verify", data={"csrf_token": csrf}),
    )
    bad_list = client.post("/admin/lists", data={"csrf_token": csrf, "slug": "Bad Slug"})
    collect(client, pages, "admin list refused", bad_list)
    refused = client.post(
        f"/admin/contacts/{alex.public_id}/consent", data={"csrf_token": csrf, "list": "notes"}
    )
    collect(client, pages, "admin contact refused", refused)
    upload = {
        "csrf_token": csrf,
        "list": "notes",
        "source": "address book",
        "basis": "personal",
        "added_by": "Ada",
        "dry_run": "yes",
    }
    good = io.BytesIO(b"email,name\nsam@example.com,Sam\nnot-an-address,Nobody\n")
    summary = client.post(
        "/admin/imports",
        data={**upload, "skip_invalid": "yes", "file": (good, "people.csv")},
        content_type="multipart/form-data",
    )
    collect(client, pages, "admin import summary", finished_import(client, summary))
    bad = io.BytesIO(b"email,name\nnot-an-address,Nobody\n")
    refused = client.post(
        "/admin/imports",
        data={**upload, "file": (bad, "people.csv")},
        content_type="multipart/form-data",
    )
    collect(client, pages, "admin import refused", finished_import(client, refused))
    collect(client, pages, "admin imports with recent ones", client.get("/admin/imports"))
    options = ImportOptions("notes", "address book", "personal", "Ada", filename="people.csv")
    job = import_jobs.create(AdminUser.query.first(), options, b"email\nsam@example.com\n")
    db.session.commit()
    collect(client, pages, "admin import queued", client.get(f"/admin/imports/{job.id}"))
    attempt = import_jobs.claim(job.id)
    import_jobs.write_progress(job.id, attempt, 1)
    collect(client, pages, "admin import running", client.get(f"/admin/imports/{job.id}"))
    collect(client, pages, "admin not found", client.get("/admin/contacts/nobody"))


def test_every_page_is_valid_html(app, client, make, tmp_path):
    world = public_pages.build(make)
    pages: dict[str, str] = {}
    public(client, world, pages, app)
    admin(client, world, pages, app)
    assert len(pages) >= 40
    files = {}
    for number, (name, html) in enumerate(pages.items()):
        path = tmp_path / f"page-{number:02d}.html"
        path.write_text(html, encoding="utf-8")
        files[path.name] = name
    checked = subprocess.run(
        ["java", "-jar", str(VNU), "--format", "json", "--stdout", *sorted(files)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    messages = json.loads(checked.stdout)["messages"]
    assert messages is not None
    errors = [
        f"{files.get(m.get('url', '').rpartition('/')[2])}: line {m.get('lastLine')}: "
        f"{m['message']}"
        for m in messages
        if m["type"] in ("error", "non-document-error")
        and not HTMX_ATTRIBUTE.search(m.get("message", ""))
    ]
    assert not errors, "\n".join(errors)
