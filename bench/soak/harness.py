"""Parts of the load-and-fault harness: a database with data, the app under
gunicorn, a real SMTP sink, a TCP proxy that can cut the database, and
clients that toggle lists through the real page endpoints (with CSRF).

Everything listens on 127.0.0.1 only. Each client request carries a unique
User-Agent, which the app stores on the consent event it writes: that is how
every change a client got a 2xx for is matched with its event afterwards.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from bench import generate
from bench.server import PROJECT_ROOT, Server, free_port

FLASK = str(Path(sys.executable).with_name("flask"))
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROW_STATUS = re.compile(r'<p class="row-status" role="status">(.*?)</p>', re.S)
SLUGS = [slug for slug, *_ in generate.LISTS]
BUSINESS_SLUGS = [slug for slug, _, audience, _ in generate.LISTS if audience == "business"]
PAGE_IS_DOWN = "We are briefly unavailable"


# --- the database -------------------------------------------------------------


@contextlib.contextmanager
def soak_database(tmp_path: Path, contacts: int = 200):
    """A fresh database with ``contacts`` contacts (5 subscriptions each, valid chains)."""
    requested = os.environ.get("TEST_DATABASE_URL", "")
    if requested.startswith("postgresql"):
        admin = generate.admin_engine(requested)
        name = f"pc_soak_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = generate.url_for_database(requested, name)
        try:
            generate.fill(url, contacts)
            yield url
        finally:
            generate.drop_database(admin, name)
            admin.dispose()
    else:
        url = f"sqlite:///{tmp_path / 'soak.sqlite3'}"
        generate.fill(url, contacts)
        yield url


def manage_paths(url: str) -> list[str]:
    """The manage-link path of every contact, signed with the benchmark key."""
    from preference_center import create_app, tokens
    from preference_center.extensions import db
    from preference_center.models import Contact

    app = create_app(generate.app_settings(url))
    with app.app_context():
        contacts = db.session.execute(sa.select(Contact).order_by(Contact.id)).scalars()
        paths = ["/p/" + tokens.sign(tokens.MANAGE, c) for c in contacts]
        db.session.remove()
        db.engine.dispose()
    return paths


def flask_command(url: str, *arguments: str, mail_port: int | None = None, timeout=300):
    env = {**os.environ, **generate.app_environment(url, **mail_env(mail_port))}
    return subprocess.run(
        [FLASK, "--app", "app", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def has_command(url: str, name: str) -> bool:
    listing = flask_command(url, "--help")
    return re.search(rf"^\s+{re.escape(name)}\b", listing.stdout, re.M) is not None


def mail_env(port: int | None) -> dict[str, str]:
    # Port 9 (discard) when a scenario sends no mail: nothing listens there.
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(port or 9)}


def app_server(url: str, log_dir: Path, mail_port: int | None = None, port: int | None = None):
    port = port or free_port()
    env = generate.app_environment(
        url, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", **mail_env(mail_port)
    )
    return Server("app:app", env, port=port, log_path=log_dir / "gunicorn.log")


# --- mail ---------------------------------------------------------------------


@dataclass
class MailSink:
    """A real SMTP server on loopback that keeps every message it accepts."""

    port: int = field(default_factory=free_port)
    messages: list[bytes] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 OK"

    def start(self) -> MailSink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def parsed(self):
        return [message_from_bytes(raw, policy=policy.default) for raw in list(self.messages)]

    def outbox_ids(self) -> list[int]:
        """The outbox row of each delivered message, from its Message-ID."""
        ids = []
        for message in self.parsed():
            match = re.search(r"outbox-(\d+)@", message["Message-ID"] or "")
            ids.append(int(match.group(1)) if match else -1)
        return ids


# --- a TCP proxy in front of PostgreSQL -----------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every connection and
    refuses new ones until ``restore()``, as if the database went away."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self.listener: socket.socket | None = None
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                # A connection accepted as ``cut()`` ran belongs to the cut: dropped.
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
                with self.lock:
                    self.sockets.discard(s)

    def cut(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            live = list(self.sockets)
        if listener is not None:
            # close() alone does not wake the thread blocked in accept(): the socket
            # would go on listening until it took one more connection, which got through.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.start()

    stop = cut


# --- clients ------------------------------------------------------------------


@dataclass
class Outcome:
    """One request and what came back (status 0: no HTTP answer at all)."""

    client: int
    user_agent: str
    method: str
    path: str
    status: int
    started: float
    contact_path: str = ""
    slug: str = ""
    wanted: bool | None = None
    message: str = ""
    body: str = ""
    content_type: str = ""


def request(port, method, path, user_agent, headers=None, body=None, timeout=30):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(
            method, path, body=body, headers={"User-Agent": user_agent, **(headers or {})}
        )
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read().decode(errors="replace")
    finally:
        connection.close()


class Toggler(threading.Thread):
    """A browser-like client: one session (cookie + CSRF token from a real page GET),
    then list toggles through the page's htmx endpoint, with random contacts."""

    def __init__(self, number, port, paths, slugs, stop_at, outcomes, reads=0.0, pause=0.0):
        super().__init__(daemon=True)
        self.number, self.port, self.paths, self.slugs = number, port, paths, slugs
        self.stop_at, self.outcomes, self.reads, self.pause = stop_at, outcomes, reads, pause
        self.cookie = self.token = None
        self.sequence = 0
        self.rng = random.Random(number)

    def agent(self) -> str:
        self.sequence += 1
        return f"soak/{self.number}/{self.sequence}"

    def get_page(self, path: str) -> Outcome:
        agent = self.agent()
        started = time.monotonic()
        try:
            status, headers, body = request(self.port, "GET", path, agent)
        except (OSError, http.client.HTTPException):
            return self.keep(Outcome(self.number, agent, "GET", path, 0, started))
        if status == 200:
            cookie = next((v for k, v in headers if k.lower() == "set-cookie"), None)
            found = CSRF.search(body)
            if cookie and found:
                self.cookie, self.token = cookie.split(";", 1)[0], found.group(1)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        return self.keep(
            Outcome(
                self.number,
                agent,
                "GET",
                path,
                status,
                started,
                path,
                body=body[:2000],
                content_type=content_type,
            )
        )

    def toggle(self, path: str) -> Outcome:
        slug, wanted = self.rng.choice(self.slugs), self.rng.random() < 0.5
        body = f"csrf_token={self.token}" + ("&subscribed=yes" if wanted else "")
        agent = self.agent()
        target = f"{path}/lists/{slug}"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": self.cookie,
            "HX-Request": "true",
        }
        started = time.monotonic()
        try:
            status, response_headers, text = request(
                self.port, "POST", target, agent, headers, body
            )
        except (OSError, http.client.HTTPException):
            return self.keep(
                Outcome(self.number, agent, "POST", target, 0, started, path, slug, wanted)
            )
        found = ROW_STATUS.search(text)
        content_type = next((v for k, v in response_headers if k.lower() == "content-type"), "")
        return self.keep(
            Outcome(
                self.number,
                agent,
                "POST",
                target,
                status,
                started,
                path,
                slug,
                wanted,
                found.group(1).strip() if found else "",
                text[:2000],
                content_type,
            )
        )

    def keep(self, outcome: Outcome) -> Outcome:
        self.outcomes.append(outcome)
        if outcome.status == 0 or outcome.status >= 500:
            time.sleep(0.2)  # the server is down or busy: back off like a browser user would
        return outcome

    def run(self) -> None:
        while time.monotonic() < self.stop_at:
            path = self.rng.choice(self.paths)
            if self.token is None or self.rng.random() < self.reads:
                self.get_page(path)
            else:
                self.toggle(path)
            if self.pause:
                time.sleep(self.pause)


def run_clients(port, paths, seconds, clients=64, slugs=SLUGS, reads=0.0, during=None):
    """Run ``clients`` togglers for ``seconds``; ``during(elapsed)`` runs alongside."""
    outcomes: list[Outcome] = []
    stop_at = time.monotonic() + seconds
    threads = [
        Toggler(number, port, paths, slugs, stop_at, outcomes, reads) for number in range(clients)
    ]
    for thread in threads:
        thread.start()
    if during is not None:
        during()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return outcomes


# --- what the database holds ----------------------------------------------------


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def soak_events(url: str) -> dict[str, list[tuple]]:
    """Events written for soak clients, by the User-Agent of the request."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT user_agent, action, to_state, id FROM consent_events "
                    "WHERE user_agent LIKE 'soak/%'"
                )
            ).all()
    finally:
        engine.dispose()
    by_agent: dict[str, list[tuple]] = {}
    for agent, action, to_state, event_id in rows:
        by_agent.setdefault(agent, []).append((action, to_state, event_id))
    return by_agent


def unlogged_changes(url: str, outcomes: list[Outcome]) -> list[str]:
    """Every toggle answered 2xx that says it changed something must have its event,
    and one that says "No change." must have none."""
    events = soak_events(url)
    problems = []
    for outcome in outcomes:
        if outcome.method != "POST" or not 200 <= outcome.status < 300:
            continue
        logged = events.get(outcome.user_agent, [])
        changed = outcome.message.startswith(("Saved", "Almost done"))
        if changed and len(logged) != 1:
            problems.append(f"{outcome.user_agent} {outcome.path}: {outcome.message!r} -> {logged}")
        elif not changed and logged:
            problems.append(f"{outcome.user_agent}: answered {outcome.message!r} but {logged}")
        elif changed:
            action, to_state, _ = logged[0]
            expected = {"pending", "subscribed"} if outcome.wanted else {"unsubscribed"}
            if to_state not in expected:
                problems.append(f"{outcome.user_agent}: wanted {outcome.wanted}, event {logged}")
    return problems


def state_snapshot(url: str) -> str:
    """Everything a GET must not change, as one comparable text."""
    queries = {
        "events": "SELECT count(*), coalesce(max(id), 0) FROM consent_events",
        "subscriptions": "SELECT id, state, basis, updated_at, disputed_at, deliver_to_business "
        "FROM subscriptions ORDER BY id",
        "contacts": "SELECT id, business_contact, chain_head, token_version, "
        "business_mail_to_business_address FROM contacts ORDER BY id",
        "addresses": "SELECT id, email, kind, verified_at FROM addresses ORDER BY id",
        "outbox": "SELECT count(*) FROM outbox",
    }
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return json.dumps(
                {
                    k: [list(map(str, r)) for r in connection.execute(sa.text(q))]
                    for k, q in queries.items()
                }
            )
    finally:
        engine.dispose()


def outbox_rows(url: str) -> list[tuple[int, object]]:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT id, sent_at FROM outbox ORDER BY id")).all()
    finally:
        engine.dispose()


def summary(outcomes: list[Outcome]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        key = f"{outcome.method} {outcome.status or 'no answer'}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
