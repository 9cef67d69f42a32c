"""Admin imports in the background: the job, its progress page, its end, and a run again."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from html import unescape

import pytest
from admin_helpers import (
    create,
    data_counts,
    ended_job,
    finished_import,
    job_of,
    row_counts,
    sign_in,
    token_of,
)
from helpers import all_events

from preference_center.admin import import_jobs
from preference_center.extensions import db
from preference_center.importers import ImportOptions
from preference_center.models import AdminAction, ImportJob, utcnow

CSV = "email,name\nkim@example.com,Kim Doe\nlou@example.com,Lou Hart\n"
COUNTS = "created 0, updated 0, invited 2, unchanged 0, suppressed 0, rejected 0"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin(app):
    return create("ada@example.com", "admin")


@pytest.fixture
def signed_in(client, admin):
    assert sign_in(client, admin.email).status_code == 303
    return client


@pytest.fixture
def insights(make):
    return make.list("insights")


def upload(client, content: str = CSV, filename: str = "contacts.csv", **fields):
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


def queued(admin, content: str = CSV, **options) -> ImportJob:
    """A job as the upload stores it, not started (as if no runner had taken it yet)."""
    options = ImportOptions("insights", "seminar sign-up sheet", "none", "Dana Reyes", **options)
    db.session.commit()  # a fresh transaction: SQLite refuses a write from an older snapshot
    job = import_jobs.create(admin, options, content.encode())
    db.session.commit()
    return job


def imports_logged() -> list[AdminAction]:
    db.session.expire_all()
    return list(
        db.session.execute(db.select(AdminAction).filter_by(action="import_contacts")).scalars()
    )


def job(job_id: int) -> ImportJob:
    db.session.commit()
    return db.session.get(ImportJob, job_id)


def kept_upload(job_id: int) -> bool:
    found = db.session.execute(
        db.select(ImportJob.id).where(ImportJob.id == job_id, ImportJob.data.is_not(None))
    )
    return found.first() is not None


def test_a_job_goes_queued_running_done_and_its_page_follows(signed_in, admin, insights):
    waiting = queued(admin, filename="contacts.csv")
    page = f"/admin/imports/{waiting.id}"

    html = signed_in.get(page).get_data(as_text=True)
    assert "Queued" in html and "Waiting to start" in html
    assert 'hx-trigger="every 1s"' in html and f'hx-get="{page}"' in html
    assert '<meta http-equiv="refresh" content="2">' in html  # inside <noscript>

    attempt = import_jobs.claim(waiting.id)
    assert attempt == 1 and import_jobs.claim(waiting.id) is None  # one runner only
    html = signed_in.get(page).get_data(as_text=True)
    assert "Running" in html and "<progress" in html and "0 of about 2 rows" in html

    import_jobs.write_progress(waiting.id, attempt, 1)
    partial = signed_in.get(page, headers=HTMX)
    fragment = partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"] and "<html" not in fragment
    assert 'value="1"' in fragment and "1 of about 2 rows (50%)" in fragment
    assert 'hx-trigger="every 1s"' in fragment

    import_jobs.run_claimed(waiting.id, attempt)

    done = job(waiting.id)
    assert done.status == "done" and done.rows_read == 2 and done.attempt == 1
    assert done.created_at <= done.started_at <= done.finished_at
    assert not kept_upload(done.id)  # the upload is not kept once imported
    fragment = signed_in.get(page, headers=HTMX).get_data(as_text=True)
    assert "hx-trigger" not in fragment and "<progress" not in fragment  # polling stops
    assert "Imported into insights" in fragment and COUNTS in fragment
    html = signed_in.get(page).get_data(as_text=True)
    assert "http-equiv" not in html and COUNTS in html


def test_an_upload_is_imported_in_the_background_and_logged_once(signed_in, admin, insights):
    response = upload(signed_in)

    assert response.status_code == 303
    assert response.headers["Location"] == f"/admin/imports/{job_of(response)}"
    ended = ended_job(job_of(response))
    assert ended.status == "done" and ended.admin_id == admin.id
    for _ in range(2):
        assert COUNTS in signed_in.get(response.headers["Location"]).get_data(as_text=True)
    invited = [e for e in all_events() if e.action == "invite"]
    assert {(e.channel, e.actor) for e in invited} == {("import", f"admin:{admin.id}")}
    assert len(invited) == 2
    [logged] = imports_logged()
    detail = json.loads(logged.detail)
    assert detail["counts"] == COUNTS and detail["job"] == ended.id
    assert logged.admin_id == admin.id
    listing = signed_in.get("/admin/imports").get_data(as_text=True)
    assert "Recent imports" in listing and "ada@example.com" in listing and COUNTS in listing


def test_the_form_is_checked_before_any_job_is_stored(signed_in, insights):
    before = row_counts()

    missing = upload(signed_in, source="  ")
    no_file = signed_in.post(
        "/admin/imports",
        data={"csrf_token": token_of(signed_in), "list": "insights", "source": "s"},
        content_type="multipart/form-data",
    )

    assert missing.status_code == 422 and "Fill in: source." in missing.get_data(as_text=True)
    assert no_file.status_code == 422
    assert "Choose a CSV file to import." in no_file.get_data(as_text=True)
    assert row_counts() == before


def test_an_upload_over_the_admin_limit_is_refused_and_not_stored(app, signed_in, insights):
    app.config["ADMIN_IMPORT_MAX_BYTES"] = 1024
    before = row_counts()

    response = upload(signed_in, "email\n" + "someone@example.com\n" * 100)

    assert response.status_code == 413
    assert row_counts() == before


@pytest.mark.parametrize(
    ("content", "fields", "message"),
    [
        (CSV, {"list": "nope"}, "There is no list 'nope'."),
        ("", {}, "The file is empty."),
        ("name\nKim\n", {}, "No 'email' column"),
    ],
)
def test_a_refused_file_ends_refused_with_nothing_written(
    signed_in, insights, content, fields, message
):
    before = data_counts()

    page = finished_import(signed_in, upload(signed_in, content, **fields))

    html = unescape(page.get_data(as_text=True))
    assert "Refused" in html and message in html
    assert "Fix the file and import it again" in html and "Run it again" not in html
    assert data_counts() == before and imports_logged() == []


def test_invalid_rows_refuse_the_file_unless_they_may_be_skipped(signed_in, insights):
    bad = "email,name\nkim@example.com,Kim\nnot-an-address,Bo\n"
    before = data_counts()

    refused = upload(signed_in, bad)
    html = finished_import(signed_in, refused).get_data(as_text=True)

    assert job(job_of(refused)).status == "refused"
    assert "1 row has problems, so nothing was imported" in html
    assert "“skip invalid rows”" in html and "not-an-address" in html
    assert data_counts() == before and imports_logged() == []
    again = signed_in.get(f"/admin/imports?again={job_of(refused)}").get_data(as_text=True)
    assert 'value="seminar sign-up sheet"' in again  # the form as it was filled in

    skipped = upload(signed_in, bad, skip_invalid="yes")
    html = finished_import(signed_in, skipped).get_data(as_text=True)

    assert job(job_of(skipped)).status == "done"
    assert "invited 1" in html and "rejected 1" in html and "not-an-address" in html
    assert len([e for e in all_events() if e.action == "invite"]) == 1
    assert len(imports_logged()) == 1


def test_a_dry_run_writes_nothing_but_its_job(signed_in, insights):
    before = data_counts()

    html = finished_import(signed_in, upload(signed_in, dry_run="yes")).get_data(as_text=True)

    assert "Dry run: nothing written" in html and "invited 2" in html
    assert data_counts() == before and imports_logged() == []


def test_looking_at_an_import_changes_nothing(signed_in, admin, insights):
    running = queued(admin)
    attempt = import_jobs.claim(running.id)
    import_jobs.write_progress(running.id, attempt, 1)
    stale = queued(admin)
    db.session.commit()
    db.session.execute(
        db.update(ImportJob)
        .where(ImportJob.id == stale.id)
        .values(heartbeat_at=utcnow() - timedelta(minutes=5))
    )
    db.session.commit()
    before = row_counts()
    stored = [(j.status, j.rows_read, j.heartbeat_at) for j in (job(running.id), job(stale.id))]

    for path in (f"/admin/imports/{running.id}", f"/admin/imports/{stale.id}", "/admin/imports"):
        for headers in ({}, HTMX):
            assert signed_in.get(path, headers=headers).status_code == 200
            assert signed_in.head(path, headers=headers).status_code == 200

    assert row_counts() == before
    assert [(j.status, j.rows_read, j.heartbeat_at) for j in (job(running.id), job(stale.id))] == (
        stored
    )


def test_an_import_page_needs_a_session_and_an_auditor_cannot_run_it_again(client, admin, insights):
    stopped = queued(admin)
    page = f"/admin/imports/{stopped.id}"

    assert client.get(page).headers["Location"].startswith("/admin/login?next=")
    polled = client.get(page, headers=HTMX)
    assert polled.status_code == 401 and polled.headers["HX-Redirect"].startswith("/admin/login")

    create("audrey@example.com", "auditor")
    sign_in(client, "audrey@example.com")
    db.session.execute(db.update(ImportJob).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    html = client.get(page).get_data(as_text=True)
    assert "Interrupted" in html and "Run it again" not in html  # an auditor reads only
    refused = client.post(f"{page}/run-again", data={"csrf_token": token_of(client)})
    assert refused.status_code == 403
    assert job(stopped.id).status == "queued" and data_counts()["subscriptions"] == 0


def test_an_import_whose_runner_died_is_interrupted_and_runs_again(signed_in, admin, insights):
    stopped = queued(admin)
    first = import_jobs.claim(stopped.id)  # its runner claimed it, then its worker was killed
    db.session.commit()
    db.session.execute(
        db.update(ImportJob)
        .where(ImportJob.id == stopped.id)
        .values(heartbeat_at=utcnow() - timedelta(seconds=import_jobs.STALE_SECONDS + 1))
    )
    db.session.commit()
    page = f"/admin/imports/{stopped.id}"

    html = signed_in.get(page).get_data(as_text=True)
    assert "Interrupted" in html and "nothing was imported" in html
    assert "hx-trigger" not in html and "Run it again" in html
    assert job(stopped.id).status == "running"  # shown as interrupted, not written
    without_token = signed_in.post(f"{page}/run-again")
    assert without_token.status_code == 400 and job(stopped.id).status == "running"

    again = signed_in.post(f"{page}/run-again", data={"csrf_token": token_of(signed_in)})

    assert again.status_code == 303 and again.headers["Location"] == page
    ended = ended_job(stopped.id)
    assert ended.status == "done" and ended.attempt == first + 1
    assert COUNTS in signed_in.get(page).get_data(as_text=True)
    counts = data_counts()
    # The first runner, had it lived on, was given up on: it commits nothing.
    import_jobs.run_claimed(stopped.id, first)
    assert data_counts() == counts and len(imports_logged()) == 1
    ended_twice = signed_in.post(f"{page}/run-again", data={"csrf_token": token_of(signed_in)})
    assert ended_twice.status_code == 409 and "has ended" in ended_twice.get_data(as_text=True)
    assert job(stopped.id).attempt == first + 1
