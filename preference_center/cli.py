"""Blueprint: the `flask --app app …` commands."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

import click
from flask import Blueprint

from . import auth, consent, demo, export, ledger, mailer, may_send, tokens
from .extensions import db
from .models import Address, AdminAction, normalise_email

bp = Blueprint("cli", __name__, cli_group=None)


def contact_for(email: str):
    address = db.session.execute(
        db.select(Address).filter_by(email=normalise_email(email))
    ).scalar_one_or_none()
    if address is None or address.contact.erased_at is not None:
        raise click.ClickException(f"No contact has the address {email}.")
    return address.contact


@bp.cli.command("demo")
def demo_command():
    """Load the demo data set (idempotent) and print its manage links."""
    contacts = demo.load()
    db.session.commit()
    click.echo("Demo contacts and their manage-preferences links:")
    for contact in contacts:
        click.echo(f"  {contact.name:<14} {contact.primary_email}")
        click.echo(f"    {tokens.manage_url(contact)}")


@bp.cli.command("link")
@click.argument("email")
def link_command(email: str):
    """Print the manage-preferences URL for the contact with EMAIL."""
    click.echo(tokens.manage_url(contact_for(email)))


@bp.cli.command("may-send")
@click.argument("email")
@click.argument("list_slug", metavar="LIST")
def may_send_command(email: str, list_slug: str):
    """Print the "may I send LIST to EMAIL now?" answer as JSON."""
    click.echo(json.dumps(may_send.check(email, list_slug).as_dict(), indent=2))


@bp.cli.command("expire-consent")
def expire_consent_command():
    """Record the expiry of implied consents that have run out (idempotent)."""
    count = consent.expire_due()
    db.session.commit()
    click.echo(f"{count} implied consent(s) expired.")


@bp.cli.command("send-mail")
@click.option("--loop", is_flag=True, help="Keep running, polling the outbox.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
def send_mail_command(loop: bool, interval: float):
    """Deliver queued mail from the outbox, retrying failures with backoff."""
    while True:
        sent, postponed = mailer.deliver_due()
        if sent or postponed or not loop:
            click.echo(f"{sent} sent, {postponed} postponed.")
        if not loop:
            return
        if not sent:
            time.sleep(interval)


@bp.cli.command("create-admin")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(auth.ROLES),
    default="admin",
    show_default=True,
    help="admin: everything; auditor: read and export only.",
)
@click.password_option(
    help="Asked for twice (hidden); when piped, read from stdin (the same line twice)."
)
def create_admin_command(email: str, role: str, password: str):
    """Create an admin account for EMAIL; the password is prompted for, never an argument."""
    try:
        admin = auth.create_admin(email, password, role)
    except auth.AdminError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    db.session.add(
        AdminAction(
            admin_id=admin.id,
            actor="cli",
            action="create_admin",
            detail=json.dumps({"email": admin.email, "role": role}),
        )
    )
    db.session.commit()
    click.echo(f"Created {role} {admin.email}. Sign in at /admin/login.")


@bp.cli.command("verify-log")
def verify_log_command():
    """Verify every contact's hash chain and replay every subscription."""
    report = ledger.verify_all()
    counts = (
        f"{report.events_checked} event(s) in {report.contacts_checked} contact chain(s), "
        f"{report.subscriptions_checked} subscription(s)"
    )
    if report.ok:
        click.echo(f"Consent log intact: {counts} match their events.")
        return
    click.echo(f"Consent log NOT intact: {report.problem_count} problem(s) in {counts}.")
    click.echo(f"First problem: {report.first_problem}")
    for problem in report.problems[1:20]:
        click.echo(f"  also: {problem}")
    raise SystemExit(1)


class IsoTime(click.ParamType):
    name = "ISO"

    def convert(self, value, param, ctx):
        try:
            return export.parse_time(value)
        except export.ExportError as error:
            self.fail(str(error), param, ctx)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


@bp.cli.command("export-log")
@click.option("--format", "format_", type=click.Choice(export.FORMATS), required=True)
@click.option("--since", type=IsoTime(), help="Events at or after this time (UTC if no offset).")
@click.option("--until", type=IsoTime(), help="Events before this time (UTC if no offset).")
@click.option("--list", "list_slug", metavar="SLUG", help="Only events of this list.")
@click.option("--contact", metavar="PUBLIC_ID_OR_EMAIL", help="Only events of this contact.")
@click.option("--bom", is_flag=True, help="Start a CSV with a UTF-8 BOM (for spreadsheets).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE and a FILE.manifest.json beside it (default: stdout, no manifest).",
)
def export_log_command(format_, since, until, list_slug, contact, bom, output):
    """Export the consent log (streamed) and record the export as an admin action."""
    if bom and format_ != "csv":
        raise click.UsageError("--bom applies to --format csv only.")
    contact_public_id = contact
    if contact and "@" in contact:
        contact_public_id = contact_for(contact).public_id
    # End the look-up's transaction: an open one would hold SQLite's write lock for the export.
    db.session.rollback()
    filters = {
        "since": since,
        "until": until,
        "list_slug": list_slug,
        "contact_public_id": contact_public_id,
    }
    try:
        if output is not None:
            manifest = export.write_export(output, format_, filters, bom, actor=_actor())
        else:
            run = export.Export(format_, filters, bom)
            with click.open_file("-", "wb") as stdout:
                for chunk in run.chunks():
                    stdout.write(chunk)
                stdout.flush()
            manifest = run.manifest()
            export.record_export(manifest, actor=_actor())
    except export.ExportError as error:
        raise click.ClickException(str(error)) from None
    where = f" to {output} (manifest {output}.manifest.json)" if output else ""
    click.echo(
        f"Exported {manifest['rows']} event(s) as {format_}{where}, sha256 {manifest['sha256']}.",
        err=True,
    )
