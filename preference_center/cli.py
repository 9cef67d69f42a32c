"""Blueprint: the `flask --app app …` commands."""

from __future__ import annotations

import json
import time

import click
from flask import Blueprint

from . import auth, consent, demo, mailer, may_send, tokens
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
