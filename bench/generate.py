"""Benchmark data sets: N contacts, 5 subscriptions each with provenance, one
consent event per subscription, every chain valid.

Rows go in through bulk Core inserts (the ORM would take hours at a million
contacts), but every event's hash is computed with ``ledger.event_hash`` over
``ledger.hashed_fields``, exactly as the app chains them, so ``verify-log``
passes on the result. Data sets are cached: a SQLite file under
``bench/.data/`` or a PostgreSQL database ``pc_bench_v<VERSION>_<N>`` beside
the one ``DATABASE_URL`` names; each appears whole (renamed when complete).
Data sets of an older ``VERSION`` are left alone: delete them by hand
(``rm bench/.data/pc_bench_v1_*``, ``DROP DATABASE pc_bench_v1_…``).

    python -m bench.generate 10000 [--database-url URL] [--fresh]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa

from preference_center import create_app, ledger
from preference_center.consent import implied_expiry
from preference_center.demo import ensure_list
from preference_center.extensions import db
from preference_center.models import Address, ConsentEvent, Contact, MailingList, Subscription

VERSION = 4  # bump when the shape of the data changes: cached sets are rebuilt
DATA_DIR = Path(__file__).resolve().parent / ".data"
CHUNK = 5000  # contacts per transaction
BENCH_SECRET = "bench-secret-key-" + "b" * 32

LISTS = [
    ("personal-notes", "Dana's personal notes", "personal", "A few lines from Dana."),
    ("family-news", "Family news", "personal", "Births, weddings and holidays."),
    ("market-insights", "Market Insights", "business", "The markets, with charts."),
    ("offers-events", "Offers & Events", "business", "Seminars and client events."),
    ("product-news", "Product News", "business", "What is new at Harbor Financial."),
    ("webinars", "Webinars", "business", "Live sessions with our advisers."),
]
EPOCH = datetime(2024, 1, 1, 9, 0)


def app_settings(url: str, **extra) -> dict:
    """The configuration every benchmark process uses (server, CLI, generator)."""
    return {
        "SECRET_KEY": BENCH_SECRET,
        "LINK_SIGNING_KEYS": [BENCH_SECRET],
        "SQLALCHEMY_DATABASE_URI": url,
        "RATELIMIT_STORAGE_URI": "memory://",
        **extra,
    }


def app_environment(url: str, **extra: str) -> dict[str, str]:
    """The same settings as environment variables, for gunicorn and `flask` children."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "DATABASE_URL": url,
        "SECRET_KEY": BENCH_SECRET,
        "LINK_SIGNING_KEYS": BENCH_SECRET,
        "RATELIMIT_STORAGE_URI": "memory://",
        # The load generators reuse a few thousand links (and one API key) far
        # faster than real use would; the limits are still checked on every
        # request, they just never trip.
        "MAIL_SENDING_RATE_LIMIT": "1000000 per hour",
        "API_RATE_LIMIT": "1000000 per second",
        "INSTANCE_PATH": str(DATA_DIR / "instance"),
        **extra,
    }


# --- where a data set lives ---------------------------------------------------


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith("postgresql")


def dataset_name(contacts: int) -> str:
    return f"pc_bench_v{VERSION}_{contacts}"


def admin_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT")


def database_exists(admin: sa.Engine, name: str) -> bool:
    with admin.connect() as connection:
        return bool(
            connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        )


def url_for_database(base_url: str, name: str) -> str:
    return sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)


def ensure_dataset(base_url: str | None, contacts: int, fresh: bool = False) -> str:
    """The URL of a complete data set of ``contacts`` contacts, generated if missing."""
    if is_postgres(base_url):
        name = dataset_name(contacts)
        admin = admin_engine(base_url)
        try:
            if fresh and database_exists(admin, name):
                drop_database(admin, name)
            if not database_exists(admin, name):
                partial = name + "_part"
                drop_database(admin, partial)
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'CREATE DATABASE "{partial}"')
                fill(url_for_database(base_url, partial), contacts)
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'ALTER DATABASE "{partial}" RENAME TO "{name}"')
        finally:
            admin.dispose()
        return url_for_database(base_url, name)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"{dataset_name(contacts)}.sqlite3"
    if fresh:
        path.unlink(missing_ok=True)
    if not path.exists():
        partial = path.with_suffix(".part")
        for leftover in DATA_DIR.glob(partial.name + "*"):
            leftover.unlink()
        fill(f"sqlite:///{partial}", contacts)
        partial.rename(path)
    return f"sqlite:///{path}"


def scratch_copy(base_url: str | None, dataset_url: str, label: str) -> str:
    """A throw-away copy of a data set, for figures that write (toggles, soak)."""
    if is_postgres(base_url):
        source = sa.make_url(dataset_url).database
        name = f"pc_bench_scratch_{label}"
        admin = admin_engine(base_url)
        try:
            drop_database(admin, name)
            with admin.connect() as connection:
                connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        finally:
            admin.dispose()
        return url_for_database(base_url, name)
    source = Path(sa.make_url(dataset_url).database)
    target = DATA_DIR / f"scratch-{label}.sqlite3"
    for leftover in DATA_DIR.glob(target.name + "*"):
        leftover.unlink()
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def drop_scratch(base_url: str | None, scratch_url: str) -> None:
    if is_postgres(base_url):
        admin = admin_engine(base_url)
        try:
            drop_database(admin, sa.make_url(scratch_url).database)
        finally:
            admin.dispose()
    else:
        path = Path(sa.make_url(scratch_url).database)
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink()


def drop_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- filling one -------------------------------------------------------------


def migrate_and_make_lists(url: str) -> dict[str, MailingList]:
    from flask_migrate import upgrade

    app = create_app(app_settings(url))
    with app.app_context():
        upgrade()
        lists = {}
        for slug, name, audience, description in LISTS:
            lists[slug] = ensure_list(
                slug=slug,
                name=name,
                audience=audience,
                description=description,
                frequency="Monthly",
            )
        db.session.commit()
        result = {
            m.slug: SimpleNamespace(id=m.id, slug=m.slug, audience=m.audience)
            for m in lists.values()
        }
        db.session.remove()
        db.engine.dispose()
    return result


def bulk_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _fast(dbapi_connection, _record):
            # Durability does not matter while building a data set: it is renamed when whole.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-1000000")
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

    return engine


def subscription_profile(rng: random.Random, mailing_list, added_at: datetime) -> dict:
    """State and provenance of one subscription, in the mix a real sender has."""
    if mailing_list.audience == "personal":
        return dict(
            state="subscribed",
            source="Dana's address book",
            added_by="Dana Reyes",
            basis="personal",
            evidence="Friends since university; asked to hear Dana's news",
        )
    pick = rng.random()
    if pick < 0.35:
        return dict(
            state="subscribed",
            source="harbor.example/signup",
            added_by="signup form",
            basis="double_opt_in",
            evidence=f"Signup form on {added_at:%d %b %Y}, confirmed by email link",
            confirmed_at=added_at + timedelta(minutes=7),
        )
    if pick < 0.6:
        return dict(
            state="subscribed",
            source="seminar sign-in sheet",
            added_by="Dana Reyes",
            basis="express",
            evidence="Ticked 'send me event invitations' at the seminar",
        )
    if pick < 0.8:
        basis_date = date.today() - timedelta(days=rng.randrange(20, 300))
        return dict(
            state="subscribed",
            source="client records",
            added_by="Dana Reyes",
            basis="implied_purchase",
            evidence="Bought a portfolio review (invoice HF-2025-0311)",
            basis_date=basis_date,
            expires_at=implied_expiry("implied_purchase", basis_date),
        )
    return dict(
        state="invited",
        source="networking import",
        added_by="Dana Reyes",
        basis="none",
        evidence="Connected on LinkedIn — a connection is not consent",
        invited_at=added_at,
    )


def fill(url: str, contacts: int, seed: int = 8) -> None:
    """Migrate ``url`` and add ``contacts`` contacts with their subscriptions and events."""
    started = time.monotonic()
    lists = migrate_and_make_lists(url)
    ordered = list(lists.values())
    rng = random.Random(seed)
    engine = bulk_engine(url)
    tables = {
        "contacts": Contact.__table__,
        "addresses": Address.__table__,
        "subscriptions": Subscription.__table__,
        "events": ConsentEvent.__table__,
    }
    ids = {"address": 0, "subscription": 0, "event": 0}
    with engine.connect() as connection:
        for key, table in (("address", "addresses"), ("subscription", "subscriptions")):
            ids[key] = connection.scalar(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}"))
        ids["event"] = connection.scalar(sa.text("SELECT coalesce(max(id), 0) FROM consent_events"))
        first = connection.scalar(sa.text("SELECT coalesce(max(id), 0) FROM contacts")) + 1
    for start in range(first, first + contacts, CHUNK):
        stop = min(start + CHUNK, first + contacts)
        rows = _chunk(rng, ordered, range(start, stop), ids)
        with engine.begin() as connection:
            for key, table in tables.items():
                if rows[key]:
                    connection.execute(table.insert(), rows[key])
        done = stop - first
        if done % 100_000 == 0 or stop == first + contacts:
            rate = done / (time.monotonic() - started)
            print(f"  {done:,} contacts written ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Explicit ids were inserted: move the sequences past them.
            for table in ("contacts", "addresses", "subscriptions", "consent_events"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
            connection.exec_driver_sql("ANALYZE")
        else:
            connection.exec_driver_sql("ANALYZE")
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def _chunk(rng: random.Random, lists: list, contact_ids: range, ids: dict) -> dict[str, list]:
    rows: dict[str, list] = {"contacts": [], "addresses": [], "subscriptions": [], "events": []}
    now = datetime.now().replace(microsecond=0)
    for contact_id in contact_ids:
        public_id = uuid.UUID(int=rng.getrandbits(128)).hex
        created = EPOCH + timedelta(seconds=contact_id * 7)
        ids["address"] += 1
        rows["addresses"].append(
            dict(
                id=ids["address"],
                contact_id=contact_id,
                email=f"contact{contact_id}@bench.example",
                kind="personal",
                verified_at=created,
                created_at=created,
            )
        )
        if rng.random() < 0.1:
            ids["address"] += 1
            rows["addresses"].append(
                dict(
                    id=ids["address"],
                    contact_id=contact_id,
                    email=f"contact{contact_id}@work.bench.example",
                    kind="business",
                    verified_at=created,
                    created_at=created,
                )
            )
        prev_hash = None
        skipped = rng.randrange(len(lists))
        for index, mailing_list in enumerate(lists):
            if index == skipped:
                continue
            added_at = created + timedelta(minutes=index, microseconds=rng.randrange(1_000_000))
            profile = subscription_profile(rng, mailing_list, added_at)
            ids["subscription"] += 1
            rows["subscriptions"].append(
                dict(
                    id=ids["subscription"],
                    contact_id=contact_id,
                    list_id=mailing_list.id,
                    state=profile["state"],
                    source=profile["source"],
                    added_by=profile["added_by"],
                    added_at=added_at,
                    basis=profile["basis"],
                    evidence=profile["evidence"],
                    basis_date=profile.get("basis_date"),
                    expires_at=profile.get("expires_at"),
                    confirmed_at=profile.get("confirmed_at"),
                    invited_at=profile.get("invited_at"),
                    disputed_at=None,
                    dispute_text=None,
                    deliver_to_business=False,
                    updated_at=now,
                )
            )
            ids["event"] += 1
            event = dict(
                id=ids["event"],
                contact_id=contact_id,
                list_id=mailing_list.id,
                request_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                action="invite" if profile["state"] == "invited" else "subscribe",
                from_state="none",
                to_state=profile["state"],
                basis=profile["basis"],
                source=profile["source"],
                channel="import",
                actor="bench generator",
                occurred_at=added_at,
                ip=None,
                user_agent=None,
                notice_version=1,
                jurisdiction=None,
                language=None,
                evidence=profile["evidence"],
                detail=None,
                personal_salt=f"{rng.getrandbits(128):032x}",
                prev_hash=prev_hash,
            )
            # The app's own digest, canonical form and hash: verify-log recomputes these.
            event["personal_digest"] = ledger.personal_digest(event["personal_salt"], event)
            fields = ledger.hashed_fields(SimpleNamespace(**event), public_id, mailing_list.slug)
            event["hash"] = prev_hash = ledger.event_hash(fields)
            rows["events"].append(event)
        rows["contacts"].append(
            dict(
                id=contact_id,
                public_id=public_id,
                name=f"Contact {contact_id}",
                token_version=1,
                business_contact="allowed",
                business_mail_to_business_address=False,
                receipts_enabled=True,
                receipt_due_at=None,
                chain_head=prev_hash,
                created_at=created,
                erased_at=None,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("contacts", type=int)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--fresh", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    started = time.monotonic()
    url = ensure_dataset(args.database_url, args.contacts, fresh=args.fresh)
    shown = sa.make_url(url).render_as_string(hide_password=True)
    print(f"{args.contacts:,} contacts ready at {shown} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
