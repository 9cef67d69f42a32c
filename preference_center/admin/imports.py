"""Imports from the browser: the same importer, rules and summary as the CLI.

The upload becomes a job run in the background (import_jobs.py); its page shows
a progress bar that htmx refreshes every second, then the summary.
"""

from __future__ import annotations

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from .. import importers
from ..extensions import db
from ..models import BASES, ImportJob, MailingList
from . import bp, import_jobs, page_or_fragment

IMPORT_ENDPOINT = "admin.import_submit"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
PROBLEMS_SHOWN = import_jobs.PROBLEMS_KEPT
RECENT_JOBS = 20


@bp.url_value_preprocessor
def allow_large_uploads(endpoint, _values) -> None:
    # The app's limit (MAX_CONTENT_LENGTH) suits the public forms; a contact file is
    # bigger. This runs before the CSRF check, which is what first reads the body.
    if endpoint == IMPORT_ENDPOINT:
        request.max_content_length = current_app.config.get(
            "ADMIN_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES
        )


def form_context(**extra) -> dict:
    lists = db.session.execute(
        db.select(MailingList).where(MailingList.archived_at.is_(None)).order_by(MailingList.name)
    ).scalars()
    recent = db.session.execute(
        db.select(ImportJob).order_by(ImportJob.id.desc()).limit(RECENT_JOBS)
    ).scalars()
    jobs = [(job, import_jobs.progress_of(job), import_jobs.summary_of(job)) for job in recent]
    return {"lists": list(lists), "bases": BASES, "form": {}, "jobs": jobs, **extra}


@bp.get("/imports")
def imports():
    """Upload a CSV or a LinkedIn connections export, with its provenance; recent imports."""
    form = {}
    again = request.args.get("again", type=int)
    job = db.session.get(ImportJob, again) if again else None
    if job is not None:
        # "Fix the file and import again": the form as it was filled in.
        form = {
            "list": job.list_slug,
            "source": job.source,
            "basis": job.basis,
            "added_by": job.added_by,
            "skip_invalid": "yes" if job.skip_invalid else "",
            "dry_run": "yes" if job.dry_run else "",
        }
    return render_template("admin/imports/form.html", **form_context(form=form))


@bp.post("/imports")
def import_submit():
    """Import the uploaded file: all or nothing unless invalid rows may be skipped."""
    form = request.form
    upload = request.files.get("file")

    def refuse(message: str):
        db.session.rollback()
        return render_template(
            "admin/imports/form.html", **form_context(error=message, form=form)
        ), 422

    if upload is None or not upload.filename:
        return refuse("Choose a CSV file to import.")
    missing = [label for name, label in FIELDS if not form.get(name, "").strip()]
    if missing:
        return refuse(f"Fill in: {', '.join(missing)}.")
    options = importers.ImportOptions(
        list_slug=form["list"],
        source=form["source"].strip(),
        basis=form["basis"],
        added_by=form["added_by"].strip(),
        dry_run=form.get("dry_run") == "yes",
        skip_invalid=form.get("skip_invalid") == "yes",
        filename=upload.filename,
        actor=f"admin:{current_user.id}",
    )
    job = import_jobs.create(current_user, options, upload.read())
    db.session.commit()
    import_jobs.start(current_app._get_current_object(), job.id)
    return redirect(url_for("admin.import_job", job_id=job.id), 303)


@bp.get("/imports/<int:job_id>")
def import_job(job_id: int):
    """An import's progress while it runs (htmx asks for the partial every second), then
    its summary. Reads only: a job whose runner died is shown as interrupted."""
    job = db.session.get(ImportJob, job_id) or abort(404)
    return page_or_fragment("admin/imports/job.html", "admin/imports/_job.html", **job_context(job))


def job_context(job: ImportJob, **extra) -> dict:
    progress = import_jobs.progress_of(job)
    return {
        "job": job,
        "progress": progress,
        "summary": import_jobs.summary_of(job),
        "can_run_again": import_jobs.can_run_again(job, progress),
        "shown": PROBLEMS_SHOWN,
        **extra,
    }


@bp.post("/imports/<int:job_id>/run-again")
def import_job_again(job_id: int):
    """Run an interrupted (or failed) import again; nothing of its first run was written."""
    if not import_jobs.requeue(job_id):
        db.session.rollback()
        job = db.session.get(ImportJob, job_id) or abort(404)
        error = "This import is not interrupted: it is running or has ended."
        return render_template("admin/imports/job.html", **job_context(job, error=error)), 409
    db.session.commit()
    import_jobs.start(current_app._get_current_object(), job_id)
    return redirect(url_for("admin.import_job", job_id=job_id), 303)


FIELDS = (("list", "list"), ("source", "source"), ("basis", "basis"), ("added_by", "added by"))
