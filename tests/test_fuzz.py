"""Hostile input, generated: hypothesis throws tokens, form fields, CSV files and
sequences of consent verbs at the real app and database.

The promises checked: a bad token is a 404 page; no form input is a 5xx, and
a refused request writes nothing; the importer answers with a summary or its
own refusal; and whatever happens, every chain verifies and every
subscription's state is the replay of its events.

Hypothesis refuses function-scoped fixtures, so these tests share one app
(``module_app``) and each example makes the rows it needs. Example counts are
bounded so the whole module stays within a few seconds' budget in CI.
"""

from __future__ import annotations

import itertools
import os
from datetime import date, timedelta
from urllib.parse import quote, quote_from_bytes

import pytest
from admin_helpers import row_counts
from helpers import csrf_token
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from preference_center import addresses, consent, importers, ledger, tokens
from preference_center.consent import ConsentError, Provenance, Via
from preference_center.demo import ensure_list
from preference_center.extensions import db, limiter
from preference_center.models import (
    BASES,
    INVITED,
    SUBSCRIBED,
    Address,
    ConsentEvent,
    Contact,
    Subscription,
    utcnow,
)

FUZZ = settings(
    deadline=None,
    # Fixed examples in CI, so a run is reproducible; new ones on every local run.
    derandomize=bool(os.environ.get("CI")),
    database=None,  # nothing written to the work tree; failures print their example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_PUBLIC_ID = "fuzzcontact"
SLUGS = ("fuzz-notes", "fuzz-insights", "fuzz-digest")
VIA = Via(channel="admin", actor="fuzz")
_serial = itertools.count()


def unique_email(prefix: str = "person") -> str:
    return f"{prefix}.{next(_serial)}@example.com"


def verifies() -> ledger.VerifyReport:
    db.session.commit()
    report = ledger.verify_all()
    assert report.ok, [str(p) for p in report.problems]
    return report


@pytest.fixture(scope="module")
def world(module_app):
    """Three lists and one contact on them, in each interesting state."""
    # The limiter is one object shared by every app; the fuzzers post far more
    # often than any limit allows, and what they test is the answer, not the limit.
    limiter.enabled = False
    lists = {
        "fuzz-notes": ensure_list(
            slug="fuzz-notes",
            audience="personal",
            name="Notes",
            description="Notes.",
            frequency="Monthly",
        ),
        "fuzz-insights": ensure_list(
            slug="fuzz-insights",
            audience="business",
            name="Insights",
            description="Insights.",
            frequency="Weekly",
        ),
        "fuzz-digest": ensure_list(
            slug="fuzz-digest",
            audience="business",
            name="Digest",
            description="Digest.",
            frequency="Daily",
        ),
    }
    db.session.flush()
    contact = Contact(public_id=FUZZ_PUBLIC_ID, name="Fuzz Contact")
    contact.addresses.append(Address(email="fuzz@example.com", kind="personal"))
    db.session.add(contact)
    db.session.flush()
    express = Provenance(source="signup", added_by="Dana", basis="express", evidence="signup")
    consent.place(contact, lists["fuzz-notes"], SUBSCRIBED, express, VIA)
    consent.place(contact, lists["fuzz-insights"], SUBSCRIBED, express, VIA)
    consent.opt_in(contact, lists["fuzz-digest"], VIA, evidence="ticked")
    db.session.commit()
    yield {"contact": contact, "lists": lists}
    limiter.enabled = True


# --- tokens -------------------------------------------------------------------

TOKEN_ROUTES = ("/p/", "/u/", "/confirm/", "/verify-address/")


@settings(FUZZ, max_examples=150)
@given(
    route=st.sampled_from(TOKEN_ROUTES),
    token=st.one_of(st.binary(max_size=400), st.text(max_size=400)),
)
def test_any_token_is_the_404_page(module_app, world, route, token):
    raw = token if isinstance(token, bytes) else token.encode()
    response = module_app.test_client().get(route + quote_from_bytes(raw, safe=""))
    # An encoded slash becomes a path separator: it may name a POST-only URL (405),
    # or make a double slash, which routing redirects to the single-slash URL (308).
    assert response.status_code in ({404} if b"/" not in raw else {404, 405, 308}), raw
    assert response.mimetype == "text/html"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
PURPOSE_ROUTES = {
    tokens.MANAGE: "/p/",
    tokens.UNSUBSCRIBE: "/u/",
    tokens.CONFIRM: "/confirm/",
    tokens.VERIFY_ADDRESS: "/verify-address/",
}
# Correctly signed payloads of any shape: what a leaked or old signing key could mint.
PAYLOADS = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"c": st.one_of(st.just(FUZZ_PUBLIC_ID), JSON)},
        optional={
            "v": st.one_of(st.integers(0, 2), JSON),
            "l": st.one_of(st.sampled_from(SLUGS), JSON),
            "a": JSON,
            "s": st.one_of(st.sampled_from(["owner", "new"]), JSON),
        },
    ),
)


@settings(FUZZ, max_examples=120)
@given(purpose=st.sampled_from(list(PURPOSE_ROUTES)), payload=PAYLOADS)
# Found by this test: a list where a slug belongs reached the query (a 500).
@example(purpose=tokens.UNSUBSCRIBE, payload={"c": FUZZ_PUBLIC_ID, "l": []})
@example(purpose=tokens.CONFIRM, payload={"c": FUZZ_PUBLIC_ID, "l": "a\x00b"})
@example(purpose=tokens.MANAGE, payload={"c": "a\x00b"})
def test_a_signed_payload_of_any_shape_is_a_page_or_the_404(module_app, world, purpose, payload):
    token = URLSafeTimedSerializer(module_app.config["LINK_SIGNING_KEYS"], salt=purpose).dumps(
        payload
    )
    before = row_counts()
    response = module_app.test_client().get(PURPOSE_ROUTES[purpose] + token)
    assert response.status_code in (200, 404), payload
    assert row_counts() == before  # opening a link never changes anything


# --- forms --------------------------------------------------------------------


def values(*meaningful: str):
    return (
        st.one_of(st.sampled_from(meaningful), st.text(max_size=300))
        if meaningful
        else (st.text(max_size=300))
    )


# Every public form, with the fields its page sends and what they usually hold.
FORMS = {
    "/p/{manage}/lists/{slug}": {"subscribed": values("yes", "no")},
    "/p/{manage}/everything": {},
    "/p/{manage}/business": {"business": values("declined", "allowed")},
    "/p/{manage}/lists/{slug}/dispute": {"words": values("I never signed up")},
    "/p/{manage}/reset": {},
    "/p/{manage}/receipts": {"receipts": values("on", "off")},
    "/p/{manage}/business-address": {"email": values("work@example.org", "fuzz@example.com")},
    "/p/{manage}/business-address/route": {"to": values("business", "personal")},
    "/p/{manage}/business-address/remove": {},
    "/p/{manage}/lists/{slug}/route": {"to": values("business", "personal")},
    "/verify-address/{verify}": {},
    "/confirm/{confirm}": {},
    "/u/{unsubscribe}": {"List-Unsubscribe": values("One-Click")},
    "/p": {"email": values("fuzz@example.com", "nobody@example.com")},
    "/admin/login": {
        "email": values("admin@example.com"),
        "password": values("secret"),
        "next": values("/admin/", "//evil.example"),
    },
}


@st.composite
def form_posts(draw):
    path = draw(st.sampled_from(list(FORMS)))
    fields = {name: draw(strategy) for name, strategy in FORMS[path].items() if draw(st.booleans())}
    fields.update(draw(st.dictionaries(st.text(min_size=1, max_size=10), values(), max_size=2)))
    slug = draw(st.one_of(st.sampled_from(SLUGS), st.text(min_size=1, max_size=30)))
    step = draw(st.sampled_from(["owner", "new"]))
    return path, fields, slug, step


def signed_links(contact: Contact, slug: str, step: str) -> dict[str, str]:
    """Genuine tokens for the contact, signed now (a reset may have revoked older ones)."""
    address = contact.business_address
    fingerprint = addresses.address_fingerprint(address.email) if address else "none"
    return {
        "manage": tokens.sign(tokens.MANAGE, contact),
        "unsubscribe": tokens.sign(tokens.UNSUBSCRIBE, contact, l=slug),
        "confirm": tokens.sign(tokens.CONFIRM, contact, l=slug),
        "verify": tokens.sign(tokens.VERIFY_ADDRESS, contact, a=fingerprint, s=step),
    }


@pytest.fixture(scope="module")
def visitor(module_app, world):
    """A browser-like client holding a session and its CSRF token."""
    client = module_app.test_client()
    token = csrf_token(client.get("/p").get_data(as_text=True))
    return client, token


@settings(FUZZ, max_examples=150)
@given(post=form_posts(), htmx=st.booleans())
def test_any_form_input_is_answered_and_never_half_written(world, visitor, post, htmx):
    client, csrf = visitor
    path, fields, slug, step = post
    contact = db.session.get(Contact, world["contact"].id)
    links = {k: quote(v, safe="") for k, v in signed_links(contact, slug, step).items()}
    url = path.format(slug=quote(slug, safe=""), **links)
    before = row_counts()
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post(url, data={**fields, "csrf_token": csrf}, headers=headers)
    event(f"{path} → {response.status_code}")
    assert response.status_code < 500, (url, fields, response.get_data(as_text=True)[:500])
    if response.status_code >= 400:
        after = row_counts()
        if path == "/admin/login":
            # A failed sign-in is counted on purpose (login backoff, issue 17).
            after.pop("login_throttles"), before.pop("login_throttles")
        assert after == before, (url, fields, response.status_code)
    verifies()


# --- the importer -------------------------------------------------------------

KNOWN = ["fuzz@example.com", "known.one@example.com", "known.two@example.com"]
CELLS = st.one_of(
    st.sampled_from(KNOWN),
    st.emails(),
    st.text(max_size=40),
    st.dates(date(2015, 1, 1), date(2030, 1, 1)).map(date.isoformat),
    st.sampled_from(['=HYPERLINK("http://x")', "+1", "@SUM(A1)", '"', "\r\n", ";", "\t"]),
)
HEADERS = st.lists(
    st.sampled_from(
        list(importers.PLAIN_COLUMNS)
        + ["First Name", "Last Name", "Email Address", "Connected On", "Company", "other"]
    ),
    min_size=1,
    max_size=6,
)


@st.composite
def csv_files(draw) -> bytes:
    """A CSV document of plausible shape, in some encoding, or just bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=600))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = draw(HEADERS)
    if draw(st.integers(0, 4)) and "email" not in header:
        header.insert(draw(st.integers(0, len(header))), "email")
    rows = draw(st.lists(st.lists(CELLS, max_size=len(header) + 1), max_size=6))
    # LinkedIn puts notes above its header; now and then, so does this.
    preamble = draw(st.lists(st.text(max_size=30), max_size=2)) if draw(st.booleans()) else []

    def line(cells):
        quoted = [
            '"' + c.replace('"', '""') + '"' if draw(st.booleans()) or delimiter in c else c
            for c in cells
        ]
        return delimiter.join(quoted)

    text = "\n".join(preamble + [line(header)] + [line(row) for row in rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]))
    return text.encode(encoding, errors="replace")


@settings(FUZZ, max_examples=120)
@given(
    data=csv_files(),
    basis=st.one_of(st.sampled_from(["express", "none", "personal"]), st.sampled_from(BASES)),
    slug=st.sampled_from([*SLUGS, *SLUGS, "no-such-list"]),
    skip_invalid=st.booleans(),
    dry_run=st.booleans(),
)
def test_any_file_is_imported_or_refused_cleanly(world, data, basis, slug, skip_invalid, dry_run):
    options = importers.ImportOptions(
        list_slug=slug,
        source="fuzzed file",
        basis=basis,
        added_by="Fuzz",
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        filename="fuzz.csv",
    )
    before = row_counts()
    try:
        summary = importers.import_contacts(data, options)
    except importers.ImportRefused as error:
        event(f"refused: {str(error)[:25]}")
        db.session.rollback()
        assert row_counts() == before
    else:
        event(f"imported: {bool(summary.created + summary.updated + summary.invited)}")
        db.session.commit()
        if dry_run:
            assert row_counts() == before
        assert summary.list_slug == slug
    verifies()


# --- the state machine --------------------------------------------------------

VERBS = (
    "place",
    "opt_in",
    "confirm",
    "withdraw",
    "withdraw_everything",
    "dispute",
    "decline_business",
    "allow_business",
    "expire_due",
)
STEPS = st.tuples(
    st.sampled_from(VERBS),
    st.integers(0, 2),  # which contact
    st.sampled_from(SLUGS),
    st.sampled_from(BASES),
    st.sampled_from([INVITED, SUBSCRIBED]),
    st.integers(-800, 400),  # days: a basis date back, or how far expire_due looks ahead
)


def apply(step, contacts: list[Contact], lists: dict) -> None:
    verb, who, slug, basis, state, days = step
    contact = db.session.get(Contact, contacts[who].id)
    mailing_list = lists[slug]
    subscription = consent.find_subscription(contact, mailing_list)
    if verb == "place":
        provenance = Provenance(
            source="fuzz",
            added_by="Fuzz",
            basis=basis,
            evidence="generated",
            basis_date=date.today() + timedelta(days=min(days, 0)),
        )
        consent.place(contact, mailing_list, state, provenance, VIA)
    elif verb == "opt_in":
        consent.opt_in(contact, mailing_list, VIA, evidence="generated")
    elif verb == "withdraw_everything":
        consent.withdraw_everything(contact, VIA)
    elif verb == "decline_business":
        consent.decline_business_contact(contact, VIA)
    elif verb == "allow_business":
        consent.allow_business_contact(contact, VIA)
    elif verb == "expire_due":
        consent.expire_due(utcnow() + timedelta(days=abs(days)))
    elif subscription is not None:
        if verb == "confirm":
            consent.confirm(subscription, VIA)
        elif verb == "withdraw":
            consent.withdraw(subscription, VIA)
        elif verb == "dispute":
            consent.dispute(subscription, VIA, "never")


@settings(FUZZ, max_examples=60)
@given(steps=st.lists(STEPS, min_size=1, max_size=15))
def test_any_sequence_of_verbs_keeps_replay_equal_to_state(world, steps):
    contacts = []
    for _ in range(3):
        contact = Contact(name="Generated")
        contact.addresses.append(Address(email=unique_email(), kind="personal"))
        db.session.add(contact)
        contacts.append(contact)
    db.session.commit()
    lists = {slug: db.session.merge(m) for slug, m in world["lists"].items()}
    for step in steps:
        try:
            apply(step, contacts, lists)
        except ConsentError:
            db.session.rollback()
        else:
            db.session.commit()
    verifies()
    for contact in contacts:
        for subscription in db.session.execute(
            db.select(Subscription).filter_by(contact_id=contact.id)
        ).scalars():
            events = [e for e in ledger_events(contact) if e.list_id == subscription.list_id]
            assert events and events[-1].to_state == subscription.state


def ledger_events(contact: Contact):
    return db.session.execute(
        db.select(ConsentEvent).filter_by(contact_id=contact.id).order_by(ConsentEvent.id)
    ).scalars()
