"""The scale-out (README, "Scale-out"): two app instances, three outbox workers and
two webhook workers on one PostgreSQL and one Redis, with workers SIGKILLed and
Redis cut mid-run.

    TEST_DATABASE_URL=postgresql+psycopg://… pytest bench/soak -m soak -k scaleout

Skipped on SQLite (one file cannot be shared by several hosts). The Redis is the
machine's (127.0.0.1:6379), reached through a loopback proxy that is cut for a
few seconds; every key this test makes carries its own prefix and is deleted.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from bench.server import GUNICORN, PROJECT_ROOT, Server, free_port

from . import harness
from .harness import MailSink, TcpProxy, Toggler, soak_database, summary, unlogged_changes
from .test_soak import verify_log

pytestmark = pytest.mark.soak

SECONDS = float(os.environ.get("SOAK_SECONDS", "10"))
CLIENTS = 32
REDIS = ("127.0.0.1", 6379)
KNOWN = "contact1@bench.example"  # a contact of the generated data set
OUTBOX_WORKERS, WEBHOOK_WORKERS = 3, 2
WEBHOOK_BATCH = 50  # webhooks.BATCH_SIZE: what one killed worker can leave unrecorded


def redis_is_up() -> bool:
    try:
        return bool(redis.Redis(*REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class Instance(Server):
    """gunicorn with the project's own gunicorn.conf.py (gevent, WEB_CONCURRENCY), as
    `make serve` and the Procfile's web line start it; its own process group."""

    def command(self) -> list[str]:
        return [GUNICORN, "--config", str(PROJECT_ROOT / "gunicorn.conf.py"), self.target]


def instance(url: str, env: dict[str, str], log_dir: Path, number: int) -> Instance:
    port = free_port()
    settings = harness.generate.app_environment(
        url,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        PORT=str(port),
        WEB_CONCURRENCY="2",
        ACCESS_LOG=str(log_dir / f"access-{number}.log"),
        **env,
    )
    return Instance("app:app", settings, port=port, log_path=log_dir / f"gunicorn-{number}.log")


class Worker:
    """One `flask` worker loop in its own process group; kill() is a SIGKILL."""

    def __init__(self, arguments: list[str], env: dict[str, str], log_path: Path):
        self.arguments, self.env, self.log_path = arguments, env, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [harness.FLASK, "--app", "app", *self.arguments],
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Receiver:
    """A loopback webhook receiver: keeps (path, event) for every POST, answers 200."""

    def __init__(self):
        self.received: list[tuple[str, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def first_arrivals(self, path: str) -> list[dict]:
        """Events in the order they first arrived at ``path`` (repeats dropped by id)."""
        seen, events = set(), []
        for where, event in list(self.received):
            if where == path and event["id"] not in seen:
                seen.add(event["id"])
                events.append(event)
        return events

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TwoInstanceToggler(Toggler):
    """A Toggler whose every request goes to one of the instances at random."""

    def __init__(self, number, ports, *args, **kwargs):
        self.ports = ports
        super().__init__(number, ports[0], *args, **kwargs)

    @property
    def port(self) -> int:
        return self.rng.choice(self.ports)

    @port.setter
    def port(self, _value: int) -> None:
        pass


def fresh_link_statuses(ports: list[int], email: str, first_ip: int) -> list[int]:
    """POST the fresh-link form for ``email`` four times, alternating the instances, each
    time from another client IP (X-Forwarded-For, one trusted proxy): only the
    per-address limit ("3 per hour") can trip."""
    status, headers, body = harness.request(ports[0], "GET", "/p", "soak/fresh-link")
    assert status == 200
    cookie = next(v for k, v in headers if k.lower() == "set-cookie").split(";", 1)[0]
    form = urllib.parse.urlencode(
        {"csrf_token": harness.CSRF.search(body).group(1), "email": email}
    )
    statuses = []
    for attempt in range(4):
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie,  # made by instance 1, good on instance 2: one SECRET_KEY
            "X-Forwarded-For": f"198.51.100.{first_ip + attempt}",
        }
        port = ports[attempt % 2]
        statuses.append(harness.request(port, "POST", "/p", "soak/fresh-link", headers, form)[0])
    return statuses


def one_click_paths(url: str, count: int) -> list[str]:
    from preference_center import create_app, tokens
    from preference_center.extensions import db

    app = create_app(harness.generate.app_settings(url))
    with app.app_context():
        rows = db.session.execute(
            sa.text(
                "SELECT c.id, l.slug FROM subscriptions s JOIN contacts c ON c.id = s.contact_id "
                "JOIN lists l ON l.id = s.list_id WHERE s.state = 'subscribed' "
                "ORDER BY c.id, l.slug LIMIT :n"
            ),
            {"n": count},
        ).all()
        from preference_center.models import Contact

        paths = [
            urllib.parse.urlsplit(tokens.unsubscribe_url(db.session.get(Contact, cid), slug)).path
            for cid, slug in rows
        ]
        db.session.remove()
        db.engine.dispose()
    return paths


def pending(url: str) -> tuple[int, int, int]:
    """(outbox rows not yet sent, rows given up on, the newest event id)."""
    engine = harness.engine_for(url)
    try:
        with engine.connect() as connection:
            unsent = connection.scalar(sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
            failed = connection.scalar(
                sa.text("SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL")
            )
            newest = connection.scalar(sa.text("SELECT coalesce(max(id), 0) FROM consent_events"))
    finally:
        engine.dispose()
    return unsent, failed, newest


def events_since(url: str, after: int) -> list[tuple[int, str]]:
    engine = harness.engine_for(url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "SELECT e.id, c.public_id FROM consent_events e "
                    "JOIN contacts c ON c.id = e.contact_id WHERE e.id > :after ORDER BY e.id"
                ),
                {"after": after},
            ).all()
    finally:
        engine.dispose()


@pytest.fixture
def database(tmp_path):
    if not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("PostgreSQL only: several hosts cannot share one SQLite file")
    if not redis_is_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    with soak_database(tmp_path) as url:
        yield url


def test_two_instances_and_five_workers_keep_one_truth(database, tmp_path):
    """Two instances, 3 outbox + 2 webhook workers, one PostgreSQL and one Redis: shared
    limits, whole chains, each mail and each webhook event once (by id), Redis cut."""
    prefix = f"pc-soak-{uuid.uuid4().hex[:10]}"
    proxy = TcpProxy(REDIS).start()
    env = {
        # As the README's scale-out section sets it (RATELIMIT_STORAGE_URI unset).
        "RATELIMIT_STORAGE_URI": "",
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "RATELIMIT_KEY_PREFIX": prefix,
        "TRUSTED_PROXIES": "1",
        "WEBHOOK_TIMEOUT": "2",
        # A killed webhook worker's claim lapses after this; a batch takes milliseconds here.
        "WEBHOOK_LEASE_SECONDS": "5",
    }
    sink, receiver = MailSink().start(), Receiver()
    env.update(harness.mail_env(sink.port))
    for number in (1, 2):
        added = harness.flask_command(
            database,
            "add-webhook",
            f"{receiver.url}/sender-{number}",
            "--secret",
            f"soak-webhook-secret-{number}-" + "s" * 16,
            "--from-now",
        )
        assert added.returncode == 0, added.stderr
    start_event = pending(database)[2]
    paths = harness.manage_paths(database)
    one_clicks = one_click_paths(database, 150)
    instances = [instance(database, env, tmp_path, n) for n in (1, 2)]
    worker_env = harness.generate.app_environment(database, **env)
    workers = {
        "outbox": [
            Worker(
                ["send-mail", "--loop", "--interval", "0.5"],
                worker_env,
                tmp_path / f"outbox-{n}.log",
            )
            for n in range(OUTBOX_WORKERS)
        ],
        "webhooks": [
            Worker(
                ["deliver-webhooks", "--loop", "--interval", "0.5"],
                worker_env,
                tmp_path / f"webhooks-{n}.log",
            )
            for n in range(WEBHOOK_WORKERS)
        ],
    }
    kills = {"outbox": 0, "webhooks": 0}
    window: dict[str, float] = {}
    outcomes: list[harness.Outcome] = []
    clicks: list[tuple[float, int]] = []
    try:
        for server in instances:
            server.start(timeout=60)
        ports = [server.port for server in instances]
        for worker in [*workers["outbox"], *workers["webhooks"]]:
            worker.start()

        # 1. One limit for both instances: the 4th request for one address is refused.
        shared = fresh_link_statuses(ports, KNOWN, 10)
        other = fresh_link_statuses(ports, "contact2@bench.example", 20)[0]

        # 2. Load through both instances, with crashes and a Redis cut alongside.
        stop_at = time.monotonic() + SECONDS
        rng = random.Random(18)

        def crash(kind: str) -> None:
            victim = rng.choice(workers[kind])
            victim.kill()
            kills[kind] += 1
            time.sleep(0.3)
            victim.start()

        def one_clicker() -> None:
            for path in one_clicks:
                if time.monotonic() >= stop_at:
                    return
                started = time.monotonic()
                try:
                    status = harness.request(
                        rng.choice(ports),
                        "POST",
                        path,
                        "soak/one-click",
                        {"Content-Type": "application/x-www-form-urlencoded"},
                        "List-Unsubscribe=One-Click",
                    )[0]
                except OSError:
                    status = 0
                clicks.append((started, status))
                time.sleep(SECONDS / len(one_clicks))

        threads = [
            TwoInstanceToggler(n, ports, paths, harness.SLUGS, stop_at, outcomes, 0.2)
            for n in range(CLIENTS)
        ]
        threads.append(threading.Thread(target=one_clicker, daemon=True))
        for thread in threads:
            thread.start()
        time.sleep(SECONDS * 0.25)
        crash("outbox")
        crash("webhooks")
        time.sleep(SECONDS * 0.15)
        window["cut"] = time.monotonic()
        proxy.cut()
        time.sleep(3)
        window["restored"] = time.monotonic()
        proxy.restore()
        crash("outbox")
        crash("webhooks")
        for thread in threads:
            thread.join(timeout=SECONDS + 60)

        # 3. Recovery without a restart: the shared count works again.
        recovered, deadline, attempt = None, time.monotonic() + 45, 0
        while time.monotonic() < deadline:
            attempt += 1
            recovered = fresh_link_statuses(ports, f"contact{2 + attempt}@bench.example", 100)
            if recovered == [200, 200, 200, 429]:
                break
            time.sleep(2)

        # 4. Drain: every outbox row sent, every event at both receivers.
        deadline = time.monotonic() + 60 + SECONDS
        while time.monotonic() < deadline:
            unsent, failed, newest = pending(database)
            got = [receiver.first_arrivals(f"/sender-{n}") for n in (1, 2)]
            if not unsent and all(events and events[-1]["id"] == newest for events in got):
                break
            time.sleep(0.5)
        time.sleep(2)  # a duplicate would arrive now, if there were one
    finally:
        for worker in [*workers["outbox"], *workers["webhooks"]]:
            worker.stop()
        for server in instances:
            server.stop()
        proxy.cut()
        sink.stop()
        receiver.stop()
        store = redis.Redis(*REDIS)
        keys = list(store.scan_iter(f"*{prefix}*"))
        if keys:
            store.delete(*keys)
        store.close()

    print(summary(outcomes), f"| one-clicks: {len(clicks)}, kills: {kills}")
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("gunicorn-*.log"))

    # One limit for both instances (and only for that address).
    assert shared == [200, 200, 200, 429], shared
    assert other == 200
    assert keys, "nothing was counted in Redis"

    # No 5xx, no silence: pages, toggles and one-clicks, before, during and after the cut.
    errors = [f"{o.method} {o.path} -> {o.status}" for o in outcomes if o.status >= 500]
    assert not errors, errors[:10]
    assert not [o for o in outcomes if o.status == 0], "a request got no answer"
    assert clicks and all(status == 200 for _, status in clicks), sorted(set(clicks))[:10]
    during = [o for o in outcomes if window["cut"] <= o.started <= window["restored"]]
    assert [o for o in during if o.method == "POST" and o.status == 200], "no toggle in the cut"
    assert [o for o in during if o.method == "GET" and o.status == 200], "no page in the cut"
    assert [t for t, s in clicks if window["cut"] <= t <= window["restored"]], "no one-click"
    assert "falling back to in-memory storage" in logs, "the Redis cut left no log line"
    assert recovered == [200, 200, 200, 429], f"the shared limit did not come back: {recovered}"
    changed = [o for o in outcomes if o.method == "POST" and o.message.startswith("Saved")]
    assert len(changed) >= CLIENTS, f"too little load to mean anything: {summary(outcomes)}"

    # Every acknowledged change has its event; every chain verifies.
    assert not unlogged_changes(database, outcomes), unlogged_changes(database, outcomes)[:10]
    verify_log(database)

    # Each outbox row delivered, told apart by its Message-ID; a repeat only after a kill.
    unsent, failed, newest = pending(database)
    assert not unsent and not failed, f"{unsent} unsent, {failed} given up"
    rows = [row_id for row_id, _ in harness.outbox_rows(database)]
    delivered = sink.outbox_ids()
    assert sorted(set(delivered)) == rows, "a message missing, or one not from the outbox"
    repeats = len(delivered) - len(set(delivered))
    print(
        f"{len(rows)} mails, {repeats} delivered twice (outbox workers killed {kills['outbox']}×)"
    )
    assert repeats <= kills["outbox"], "a message delivered twice without a crash to explain it"

    # Each event at each webhook, in log order (so in each contact's order).
    logged = events_since(database, start_event)
    assert logged, "no event to deliver"
    for number in (1, 2):
        path = f"/sender-{number}"
        got = receiver.first_arrivals(path)
        assert [e["id"] for e in got] == [event_id for event_id, _ in logged], path
        by_contact: dict[str, list[int]] = {}
        for event in got:
            by_contact.setdefault(event["contact"], []).append(event["id"])
        assert all(ids == sorted(ids) for ids in by_contact.values())
        posts = [event for where, event in receiver.received if where == path]
        repeats = len(posts) - len(got)
        print(f"{path}: {len(got)} events, {repeats} repeated after a kill")
        assert repeats <= kills["webhooks"] * WEBHOOK_BATCH
