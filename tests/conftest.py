"""Fixtures: factories that build through the domain code, links and API keys.

The real parts live in plugins: ``plugins/database.py`` (a migrated SQLite
file or PostgreSQL database), ``plugins/mail.py`` (a real SMTP server),
``plugins/app.py`` (the app, client and runner) and ``plugins/browser.py``
(a live server and Debian's Chromium).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest

from preference_center import tokens
from preference_center.consent import Provenance, Via, place
from preference_center.demo import ensure_list
from preference_center.extensions import db
from preference_center.models import Address, Contact, normalise_email

pytest_plugins = ["plugins.database", "plugins.mail", "plugins.app", "plugins.browser"]


# --- factories --------------------------------------------------------------


class Factory:
    """Builds lists, contacts and subscriptions through the real domain code."""

    def list(self, slug: str, audience: str = "business", **fields):
        fields.setdefault("name", slug.replace("-", " ").title())
        fields.setdefault("description", f"What {slug} sends.")
        fields.setdefault("frequency", "Monthly")
        mailing_list = ensure_list(slug=slug, audience=audience, **fields)
        db.session.commit()
        return mailing_list

    def contact(
        self, email: str, name: str | None = None, jurisdiction: str | None = None
    ) -> Contact:
        contact = Contact(name=name, jurisdiction=jurisdiction)
        contact.addresses.append(Address(email=normalise_email(email), kind="personal"))
        db.session.add(contact)
        db.session.commit()
        return contact

    def subscription(
        self,
        contact,
        mailing_list,
        state: str = "subscribed",
        basis: str = "express",
        source: str = "signup form",
        added_by: str = "Dana Reyes",
        evidence: str = "ticked the box",
        basis_date: date | None = None,
        added_at: datetime | None = None,
        relationship_ended_on: date | None = None,
    ):
        provenance = Provenance(
            source=source,
            added_by=added_by,
            basis=basis,
            evidence=evidence,
            basis_date=basis_date,
            added_at=added_at,
            relationship_ended_on=relationship_ended_on,
        )
        subscription, _ = place(contact, mailing_list, state, provenance, Via("admin", "test"))
        db.session.commit()
        return subscription


@pytest.fixture
def make(app):
    return Factory()


@pytest.fixture
def manage_path(app):
    """The path of a contact's manage link (the host is PUBLIC_BASE_URL's)."""

    def path(contact) -> str:
        return "/p/" + tokens.sign(tokens.MANAGE, contact)

    return path


@pytest.fixture
def api_auth(app):
    """Creates an API key with the given scopes (all by default); returns its auth header."""
    from preference_center.api import keys as api_keys

    def make(*scopes: str, name: str = "sender") -> dict[str, str]:
        _row, key = api_keys.create(name, list(scopes or api_keys.SCOPES))
        db.session.commit()
        return {"Authorization": f"Bearer {key}"}

    return make
