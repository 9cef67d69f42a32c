"""Blueprint: the `flask --app app …` commands."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

import click
from flask import Blueprint, current_app

from . import (
    audience,
    config,
    consent,
    demo,
    dkim_signing,
    importers,
    invitations,
    ledger,
    list_notices,
    log_export,
    mailer,
    may_send,
    receipts,
    reconfirmations,
    tokens,
    wording,
)
from .addresses import contact_by_email
from .admin import auth
from .extensions import db
from .models import BASES, AdminAction, MailingList

bp = Blueprint("cli", __name__, cli_group=None)


def contact_for(email: str):
    contact = contact_by_email(email)
    if contact is None:
        raise click.ClickException(f"No contact has the address {email}.")
    return contact


@bp.cli.command("demo")
def demo_command():
    """Load the demo data set (idempotent), print its manage links and a demo admin login.

    The demo admin gets a new random password on every run (it is never
    stored in the clear, so an old one cannot be shown); a database with
    other admins gets no demo admin.
    """
    contacts = demo.load()
    admin, password = demo.ensure_admin()
    db.session.commit()
    click.echo("Demo contacts and their manage-preferences links:")
    for contact in contacts:
        click.echo(f"  {contact.name:<14} {contact.primary_email}")
        click.echo(f"    {tokens.manage_url(contact)}")
    if admin is None:
        click.echo("Admin area: other admins exist, so no demo admin was made; sign in with yours.")
    else:
        click.echo("Demo admin (a new password each run; the consent-log export is in the admin):")
        click.echo(f"  {tokens.public_url('admin.login')}")
        click.echo(f"  email {admin.email}  password {password}")


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


@bp.cli.command("audience")
@click.argument("list_slug", metavar="SLUG")
@click.option(
    "--format",
    "format_",
    type=click.Choice(audience.FORMATS),
    default="ndjson",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.option("--after", help="Go on after this contact (the last row received).")
def audience_command(list_slug: str, format_: str, output: str | None, after: str | None):
    """Everyone who may be sent list SLUG now, one row each (NDJSON or CSV)."""
    mailing_list = audience.find_list(list_slug)
    if mailing_list is None:
        raise click.ClickException(f"There is no list {list_slug!r}.")
    chunks = audience.render(format_, audience.recipients(mailing_list, after=after))
    try:
        if output is None:
            for chunk in chunks:
                click.echo(chunk, nl=False)
            return
        with open(output, "w", encoding="utf-8", newline="") as file:
            for chunk in chunks:
                file.write(chunk)
    except audience.BadCursor:
        raise click.ClickException(f"No contact {after!r}: use the last row's contact.") from None


@bp.cli.command("feedback-arf")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def feedback_arf_command(files: tuple[str, ...]):
    """Act on ARF (RFC 5965) feedback-loop reports, one file each (idempotent)."""
    from .esp_feedback import Malformed, apply
    from .feedback import arf

    failed = 0
    for name in files:
        try:
            found = arf.signal(Path(name).read_bytes(), current_app.config["PUBLIC_BASE_URL"])
        except Malformed as error:
            click.echo(f"{name}: not used: {error}", err=True)
            failed += 1
            continue
        outcome = "not a complaint, ignored" if found is None else apply(found)
        db.session.commit()
        click.echo(f"{name}: {outcome}")
    if failed:
        raise click.exceptions.Exit(1)


@bp.cli.command("expire-consent")
def expire_consent_command():
    """Record the expiry of implied consents that have run out, and the end of pauses
    that have reached their date (idempotent)."""
    count = consent.expire_due()
    resumed = consent.resume_due()
    db.session.commit()
    click.echo(f"{count} implied consent(s) expired.")
    click.echo(f"{resumed} pause(s) ended.")


@bp.cli.command("send-reconfirmations")
@click.option(
    "--days-before",
    default=30,
    show_default=True,
    type=click.IntRange(1, 365),
    help="Ask contacts whose implied consent ends within this many days.",
)
def send_reconfirmations_command(days_before: int):
    """Ask once, before implied consent ends, whether to keep receiving each list."""
    count = reconfirmations.send_reconfirmations(days_before)
    db.session.commit()
    click.echo(f"{count} reconfirmation(s) queued; `flask --app app send-mail` delivers them.")


@bp.cli.command("send-mail")
@click.option("--loop", is_flag=True, help="Keep running, polling the outbox.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
def send_mail_command(loop: bool, interval: float):
    """Deliver queued mail from the outbox, retrying failures with backoff."""
    while True:
        receipts.queue_due()
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
    _record_account_action(admin, "create_admin", role=role)
    db.session.commit()
    click.echo(f"Created {role} {admin.email}. Sign in at /admin/login.")


def _record_account_action(admin, action: str, **detail: str) -> None:
    """An admin account changed from the command line: on the record, as the admin area does."""
    db.session.add(
        AdminAction(
            admin_id=admin.id,
            actor="cli",
            action=action,
            detail=json.dumps({"email": admin.email, **detail}),
        )
    )


@bp.cli.command("set-admin-password")
@click.argument("email")
@click.password_option(
    help="Asked for twice (hidden); when piped, read from stdin (the same line twice)."
)
def set_admin_password_command(email: str, password: str):
    """Give the admin EMAIL a new password; every session of theirs ends."""
    admin = auth.find_admin(email)
    if admin is None:
        raise click.ClickException(f"No admin has the address {email}.")
    try:
        auth.change_password(admin, password)
    except auth.AdminError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    _record_account_action(admin, "change_password")
    db.session.commit()
    click.echo(f"New password set for {admin.email}; every session of theirs has ended.")


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
            return log_export.parse_time(value)
        except log_export.ExportError as error:
            self.fail(str(error), param, ctx)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


@bp.cli.command("export-log")
@click.option("--format", "format_", type=click.Choice(log_export.FORMATS), required=True)
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
            run, _recorded = log_export.write_export(output, format_, filters, bom, actor=_actor())
        else:
            run = log_export.Export(format_, filters, bom)
            with click.open_file("-", "wb") as stdout:
                for chunk in run.chunks():
                    stdout.write(chunk)
                stdout.flush()
            log_export.record_export(run.manifest_text(), actor=_actor())
    except log_export.ExportError as error:
        raise click.ClickException(str(error)) from None
    where = f" to {output} (manifest {output}.manifest.json)" if output else ""
    click.echo(
        f"Exported {run.row_count} event(s) as {format_}{where}, sha256 {run.sha256}.",
        err=True,
    )


# How many row problems a refused import prints before summing up the rest.
MAX_PROBLEMS_SHOWN = 100


def _import_progress():
    """Rows read so far and their rate, on stderr (at most once a second, and at the end)."""
    started = last = time.monotonic()

    def report(rows: int, finished: bool) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 1 and not finished:
            return
        last = now
        rate = rows / (now - started) if now > started else 0
        click.echo(f"… {rows:,} rows, {rate:,.0f} rows/s", err=True)

    return report


@bp.cli.command("import-contacts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--list", "list_slug", required=True, metavar="SLUG", help="The list to add to.")
@click.option("--source", required=True, help='Where the contacts come from ("seminar sheet").')
@click.option(
    "--basis",
    required=True,
    type=click.Choice(BASES),
    help="The legal basis; 'none' only invites.",
)
@click.option("--added-by", required=True, metavar="NAME", help="Who is adding these people.")
@click.option("--dry-run", is_flag=True, help="Check the file and count; write nothing.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows; write the rejected ones, with reasons, to a file.",
)
@click.option(
    "--rejected",
    "rejected_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --skip-invalid writes rejected rows [default: FILE.rejected.csv].",
)
def import_contacts_command(
    file: Path,
    list_slug: str,
    source: str,
    basis: str,
    added_by: str,
    dry_run: bool,
    skip_invalid: bool,
    rejected_path: Path | None,
):
    """Import contacts from a CSV FILE with provenance.

    Columns: email (required), name, evidence, basis_date (YYYY-MM-DD: the
    purchase, inquiry, donation, capture or sale date of a dated basis),
    jurisdiction (ISO 3166-1 alpha-2), subscriber_type (individual or
    corporate), relationship_ended_on (YYYY-MM-DD, CASL s.10(14)). A LinkedIn
    Connections.csv is recognised by its header row and only ever invites
    (--basis none). All or nothing unless --skip-invalid.
    """
    if rejected_path is not None and not skip_invalid:
        raise click.UsageError("--rejected only applies with --skip-invalid.")
    options = importers.ImportOptions(
        list_slug=list_slug,
        source=source,
        basis=basis,
        added_by=added_by,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        filename=file.name,
        actor=f"cli import by {added_by}",
    )
    try:
        summary = importers.import_contacts(file.read_bytes(), options, _import_progress())
    except importers.InvalidRows as error:
        db.session.rollback()
        rejected = error.summary.rejected
        for row in rejected[:MAX_PROBLEMS_SHOWN]:
            click.echo(f"line {row.line}: {row.reason}", err=True)
        if len(rejected) > MAX_PROBLEMS_SHOWN:
            click.echo(f"… and {len(rejected) - MAX_PROBLEMS_SHOWN} more.", err=True)
        raise click.ClickException(str(error)) from None
    except importers.ImportRefused as error:
        db.session.rollback()
        message = str(error)
        if isinstance(error.refusal, consent.NetworkingSource):
            message += " Use --basis none, then flask --app app send-invitations."
        raise click.ClickException(message) from None

    if summary.format == importers.LINKEDIN:
        click.echo(
            "LinkedIn connections export: everyone is invited, never subscribed "
            f"(source {wording.NETWORKING_SOURCE!r})."
        )
    if dry_run:
        for row in summary.rejected[:MAX_PROBLEMS_SHOWN]:
            click.echo(f"line {row.line}: {row.reason}", err=True)
        click.echo(f"Dry run, nothing written. Would import into {list_slug}: {summary.counts()}")
        return
    db.session.add(
        AdminAction(
            actor=options.actor,
            action="import_contacts",
            detail=json.dumps(
                {
                    "file": file.name,
                    "list": list_slug,
                    "source": source,
                    "basis": basis,
                    "format": summary.format,
                    "counts": summary.counts(),
                }
            ),
        )
    )
    if summary.rejected:
        # Written before the commit: rejected rows are never imported unreported.
        rejected_path = rejected_path or file.with_name(f"{file.stem}.rejected.csv")
        try:
            with rejected_path.open("w", encoding="utf-8", newline="") as stream:
                importers.write_rejected(summary, stream)
        except OSError as error:
            db.session.rollback()
            raise click.ClickException(
                f"Cannot write the rejected rows to {rejected_path} ({error.strerror}); "
                "nothing was imported."
            ) from None
        click.echo(f"{len(summary.rejected)} rejected row(s) written to {rejected_path}")
    db.session.commit()
    click.echo(f"Imported into {list_slug}: {summary.counts()}")


@bp.cli.command("send-invitations")
@click.option("--list", "list_slug", required=True, metavar="SLUG", help="The list to invite to.")
def send_invitations_command(list_slug: str):
    """Queue one invitation to each invited contact of a list who has not had one."""
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=list_slug)
    ).scalar_one_or_none()
    if mailing_list is None:
        raise click.ClickException(f"There is no list {list_slug!r}.")
    if mailing_list.archived_at is not None:
        raise click.ClickException(f"The list {list_slug!r} is archived: no invitations.")
    run = invitations.send_invitations(mailing_list)
    db.session.commit()
    click.echo(
        f"{run.queued} invitation(s) queued for {mailing_list.name}; "
        "`flask --app app send-mail` delivers them."
    )
    if run.skipped:
        click.echo(
            f"{sum(run.skipped.values())} skipped, to ask in person (an emailed invitation "
            "would itself be unlawful for them):"
        )
        for rule, count in run.skipped.most_common():
            click.echo(f"  {count}: {rule}")


@bp.cli.command("edit-list")
@click.argument("slug")
@click.option(
    "--role-relevant/--no-role-relevant",
    default=None,
    help="It concerns the recipients' business role (CASL s.10(9)(b): conspicuous publication).",
)
@click.option(
    "--similar-products/--no-similar-products",
    default=None,
    help="Our own products like those bought or negotiated (PECR reg. 22(3): soft opt-in).",
)
def edit_list_command(slug: str, role_relevant: bool | None, similar_products: bool | None):
    """Set a list's legal flags; a change is a new notice version."""
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=slug)
    ).scalar_one_or_none()
    if mailing_list is None:
        raise click.ClickException(f"There is no list {slug!r}.")
    changed = list_notices.revise(
        mailing_list, role_relevant=role_relevant, similar_products=similar_products
    )
    if not changed:
        version = mailing_list.notice_version
        click.echo(f"Nothing changed: {slug} stays at notice version {version}.")
        return
    db.session.add(
        AdminAction(
            actor=_actor(),
            action="list_edit",
            detail=json.dumps(
                {"list": slug, "changed": changed, "notice_version": mailing_list.notice_version}
            ),
        )
    )
    db.session.commit()
    flags = [name.replace("_", "-") for name in list_notices.FLAGS if getattr(mailing_list, name)]
    click.echo(
        f"Saved {slug} as notice version {mailing_list.notice_version} "
        f"(flags: {', '.join(flags) or 'none'})."
    )


@bp.cli.command("dkim-record")
def dkim_record_command():
    """Print the DNS TXT record that publishes the DKIM public key."""
    try:
        if not dkim_signing.enabled():
            raise click.ClickException(
                "DKIM is off: set DKIM_PRIVATE_KEY_FILE, DKIM_SELECTOR and DKIM_DOMAIN."
            )
        name, value = dkim_signing.dns_record()
    except dkim_signing.DkimError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f'{name}. IN TXT "{value}"')


@bp.cli.command("check-identification")
def check_identification_command():
    """Warn when the sender's mailing address or contact is not set (every email needs them)."""
    missing = config.missing_identification(current_app.config)
    if not missing:
        click.echo(
            f"Every email names {current_app.config['ORGANISATION_NAME']}, "
            f"{current_app.config['ORGANISATION_ADDRESS']} and "
            f"{current_app.config['ORGANISATION_CONTACT']}."
        )
        return
    click.echo(
        f"WARNING: {' and '.join(missing)} not set. CASL (Regulations s.2) and CAN-SPAM "
        "(§7704(a)(5)) require every commercial email to give the sender's mailing address "
        "and a phone number, email or web address; set them in the environment or .env.",
        err=True,
    )


# --- API keys and webhooks (issue 5) ------------------------------------------


@bp.cli.command("create-api-key")
@click.argument("name")
@click.option(
    "--scopes",
    default="links,consent:read",
    show_default=True,
    help="Comma-separated: links, consent:read, contacts:write, events:read.",
)
def create_api_key_command(name: str, scopes: str):
    """Create an API key; it is printed once and only its hash is kept."""
    from .api import keys as api_keys

    try:
        row, key = api_keys.create(name, api_keys.parse_scopes(scopes))
    except api_keys.ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(key)
    note = f"Key {row.prefix} ({row.scopes}) for {row.name!r}. It is not shown again."
    click.echo(note, err=True)


@bp.cli.command("revoke-api-key")
@click.argument("prefix")
def revoke_api_key_command(prefix: str):
    """Revoke the API key with PREFIX (e.g. pc_1a2b3c4d)."""
    from .api import keys as api_keys

    try:
        row = api_keys.revoke(prefix)
    except api_keys.ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Revoked {row.prefix} ({row.name}).")


@bp.cli.command("list-api-keys")
def list_api_keys_command():
    """List API keys: prefix, name, scopes, last use, revoked (never the key)."""
    from .api import keys as api_keys

    for row in api_keys.all_keys():
        used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else "never"
        state = "revoked" if row.revoked_at else "active"
        click.echo(f"{row.prefix}  {state:<7}  last used {used:<19}  {row.scopes}  {row.name}")


@bp.cli.command("add-webhook")
@click.argument("url")
@click.option("--secret", help="Signing secret (at least 16 characters); made up if omitted.")
@click.option("--description", default="", help="What receives these events.")
@click.option("--from-now", is_flag=True, help="Skip the events already in the log.")
def add_webhook_command(url: str, secret: str | None, description: str, from_now: bool):
    """Register URL to receive every consent event, signed with the secret."""
    from . import webhooks

    try:
        webhook, secret_used = webhooks.add(url, secret, description=description, from_now=from_now)
    except webhooks.WebhookError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Webhook {webhook.id} → {webhook.url}")
    if secret is None:
        click.echo(f"Signing secret (shown once): {secret_used}")


@bp.cli.command("list-webhooks")
def list_webhooks_command():
    """List webhooks with their progress through the log (never the secret)."""
    from . import webhooks

    for webhook in webhooks.all_webhooks():
        state = "disabled" if webhook.disabled_at else "active"
        error = f"  last error: {webhook.last_error}" if webhook.last_error else ""
        click.echo(
            f"{webhook.id}  {state}  {webhook.url}  after event {webhook.last_event_id}"
            f"  attempts {webhook.attempts}{error}"
        )


@bp.cli.command("remove-webhook")
@click.argument("webhook_id", type=int, metavar="ID")
def remove_webhook_command(webhook_id: int):
    """Remove the webhook with ID."""
    from . import webhooks

    try:
        webhook = webhooks.remove(webhook_id)
    except webhooks.WebhookError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Removed webhook {webhook_id} ({webhook.url}).")


@bp.cli.command("deliver-webhooks")
@click.option("--loop", is_flag=True, help="Keep running, polling the log.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
def deliver_webhooks_command(loop: bool, interval: float):
    """POST new consent events to every webhook, in order, retrying with backoff."""
    from . import webhooks

    while True:
        outcome = webhooks.deliver_due()
        if outcome.delivered or outcome.failed or not loop:
            click.echo(f"{outcome.delivered} delivered, {outcome.failed} webhook(s) postponed.")
        if not loop:
            return
        if not outcome.delivered:
            time.sleep(interval)
