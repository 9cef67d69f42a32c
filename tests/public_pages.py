"""Every public page in every state worth seeing, for the axe and HTML-checker tests.

``build`` makes the people and lists through the real domain code; ``get_pages``
names the pages a GET shows. The answers to POSTs are made by the tests
themselves (a browser presses the buttons; the HTML test posts the forms).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from preference_center import addresses, consent, tokens
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import utcnow

VIA = Via(channel="admin", actor="test")


@dataclass
class World:
    alex: object  # lists in every state, a pending business address
    blair: object  # declined business messages; a verified business address in use
    lists: dict


def build(make) -> World:
    """Two contacts whose pages show every kind of row and section."""
    lists = {
        "notes": make.list("notes", "personal"),
        "letters": make.list("letters", "personal"),
        "insights": make.list("insights", "business"),
        "trends": make.list("trends", "business"),
        "events": make.list("events", "business"),
        "digest": make.list("digest", "business"),
        "offers": make.list("offers", "business"),
        "archive": make.list("archive", "business"),
        "extras": make.list("extras", "business"),  # offered, alex is not on it
    }
    alex = make.contact("alex@example.com", name="Alex Chen")
    make.subscription(alex, lists["notes"], basis="personal")
    today = date.today()
    make.subscription(alex, lists["insights"], basis="implied_purchase", basis_date=today)
    make.subscription(
        alex, lists["trends"], basis="implied_inquiry", basis_date=today - timedelta(days=150)
    )
    make.subscription(alex, lists["events"], state="invited", basis="none")
    make.subscription(alex, lists["digest"])
    make.subscription(alex, lists["offers"])
    make.subscription(alex, lists["archive"])
    consent.opt_in(alex, lists["letters"], VIA, evidence="ticked on the page")
    consent.withdraw(consent.find_subscription(alex, lists["digest"]), VIA)
    consent.dispute(consent.find_subscription(alex, lists["offers"]), VIA, "Never asked")
    # Only trends' implied consent (an inquiry five months ago) ends within 40 days.
    consent.expire_due(utcnow() + timedelta(days=40))
    lists["archive"].archived_at = utcnow()
    addresses.add_business_address(alex, "alex@work.example", VIA)
    # A paused row and a row offering cadences (issue 14).
    lists["insights"].cadences = "every issue\nmonthly digest"
    consent.pause(consent.find_subscription(alex, lists["notes"]), 30, VIA)
    db.session.commit()

    blair = make.contact("blair@example.com", name="Blair Okafor")
    make.subscription(blair, lists["notes"], basis="personal")
    make.subscription(blair, lists["insights"])
    addresses.add_business_address(blair, "blair@work.example", VIA)
    fingerprint = addresses.address_fingerprint("blair@work.example")
    addresses.approve_business_address(blair, fingerprint, VIA)
    addresses.verify_business_address(blair, fingerprint, VIA)
    consent.decline_business_contact(blair, VIA)
    db.session.commit()
    return World(alex=alex, blair=blair, lists=lists)


def manage(contact) -> str:
    return f"/p/{tokens.sign(tokens.MANAGE, contact)}"


def confirm(world: World) -> str:
    return f"/confirm/{tokens.sign(tokens.CONFIRM, world.alex, l='letters')}"


def verify(world: World, step: str) -> str:
    fingerprint = addresses.address_fingerprint("alex@work.example")
    return (
        f"/verify-address/{tokens.sign(tokens.VERIFY_ADDRESS, world.alex, a=fingerprint, s=step)}"
    )


def one_click(contact, slug: str) -> str:
    return f"/u/{tokens.sign(tokens.UNSUBSCRIBE, contact, l=slug)}"


def get_pages(world: World) -> dict[str, str]:
    """Name → path of every public page a GET shows (the expired page is apart)."""
    return {
        "preferences, every state": manage(world.alex),
        "preferences, business declined": manage(world.blair),
        "fresh link form": "/p",
        "confirm": confirm(world),
        "verify address, owner": verify(world, "owner"),
        "verify address, new": verify(world, "new"),
        "one-click, subscribed": one_click(world.alex, "notes"),
        "one-click, already off": one_click(world.alex, "digest"),
        "one-click, not on it": one_click(world.alex, "extras"),
        "download my data": f"/download/{tokens.sign(tokens.DATA_EXPORT, world.alex)}",
        "delete my data": f"/erase/{tokens.sign(tokens.ERASE, world.alex)}",
        "invalid link": "/p/not-a-real-link",
        "not found": "/no-such-page",
        "signup, one list": "/s/insights",
        "signup, several lists": "/s?lists=insights,trends,extras",
        "invitation yes": f"/yes/{tokens.sign(tokens.INVITATION_YES, world.alex, l='events')}",
        "keep receiving": f"/keep/{tokens.sign(tokens.RECONFIRM, world.alex, l='insights')}",
    }
