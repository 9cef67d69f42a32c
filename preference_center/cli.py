"""Blueprint: the `flask --app app …` commands."""

from __future__ import annotations

import json
import time

import click
from flask import Blueprint

from . import consent, demo, mailer, may_send, tokens
from .extensions import db
from .models import Address, normalise_email

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
    from . import api_keys

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
    from . import api_keys

    try:
        row = api_keys.revoke(prefix)
    except api_keys.ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Revoked {row.prefix} ({row.name}).")


@bp.cli.command("list-api-keys")
def list_api_keys_command():
    """List API keys: prefix, name, scopes, last use, revoked (never the key)."""
    from . import api_keys

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
