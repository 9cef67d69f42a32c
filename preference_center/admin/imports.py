"""Imports from the browser: the same importer, rules and summary as the CLI."""

from __future__ import annotations

from flask import current_app, render_template, request
from flask_login import current_user

from .. import importers
from ..extensions import db
from ..models import BASES, MailingList
from . import bp, record_action

IMPORT_ENDPOINT = "admin.import_submit"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
PROBLEMS_SHOWN = 500


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
    return {"lists": list(lists), "bases": BASES, "form": {}, **extra}


@bp.get("/imports")
def imports():
    """Upload a CSV or a LinkedIn connections export, with its provenance."""
    return render_template("admin/imports/form.html", **form_context())


@bp.post("/imports")
def import_submit():
    """Import the uploaded file: all or nothing unless invalid rows may be skipped."""
    form = request.form
    upload = request.files.get("file")

    def refuse(message: str, summary=None):
        db.session.rollback()
        context = form_context(error=message, form=form, summary=summary, shown=PROBLEMS_SHOWN)
        return render_template("admin/imports/form.html", **context), 422

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
    try:
        summary = importers.import_contacts(upload.read(), options)
    except importers.InvalidRows as error:
        return refuse(str(error).replace("--skip-invalid", "“skip invalid rows”"), error.summary)
    except importers.ImportRefused as error:
        return refuse(str(error))
    if not options.dry_run:
        record_action(
            "import_contacts",
            file=upload.filename,
            list=options.list_slug,
            source=options.source,
            basis=options.basis,
            added_by=options.added_by,
            format=summary.format,
            counts=summary.counts(),
        )
        db.session.commit()
    return render_template(
        "admin/imports/summary.html", summary=summary, options=options, shown=PROBLEMS_SHOWN
    )


FIELDS = (("list", "list"), ("source", "source"), ("basis", "basis"), ("added_by", "added by"))
