"""`make bench`: every figure next to a baseline measured in the same run.

    python -m bench [--quick] [--database-url URL] [--only page,toggle,...]

The app and a bare Flask app (bench/baseline.py) run under the same gunicorn
settings (bench/server.py: 2 sync workers, loopback only); `wrk` drives both.
Each figure is printed with the baseline measured right before it, as a
ratio, because these machines are noisy. Data sets come from bench/generate.py
and are cached under bench/.data/ (SQLite) or as pc_bench_* databases next to
DATABASE_URL (PostgreSQL). Figures that write run on a throw-away copy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from . import floors, generate
from .server import PROJECT_ROOT, Server

LUA = Path(__file__).resolve().parent / "wrk" / "bench.lua"
FLASK = str(Path(sys.executable).with_name("flask"))
ROUNDS = 3
TARGETS = {
    "page": {"sqlite": 0.30, "postgresql": 0.20},
    "toggle": {"sqlite": 0.15, "postgresql": 0.12},
    "api": {"sqlite": 0.35, "postgresql": 0.25},
    "scale": 1.1,
    "export_ratio": 3.0,
    "export_rss_mb": 100,
    "import": 10.0,
    "audience_ratio": 3.0,
    "audience_rss_mb": 100,
}


def combined(loads: list[Load]) -> Load:
    """Several slices as one: summed counts, the median slice's percentiles."""
    ordered = sorted(loads, key=lambda load: load.p50_ms)
    middle = ordered[len(ordered) // 2]
    return Load(
        requests=sum(load.requests for load in loads),
        seconds=sum(load.seconds for load in loads),
        p50_ms=middle.p50_ms,
        p99_ms=sorted(load.p99_ms for load in loads)[len(loads) // 2],
        errors=sum(load.errors for load in loads),
        bad_status=sum(load.bad_status for load in loads),
    )


@dataclass
class Load:
    """What one wrk run saw."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    bad_status: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class NotAvailable(Exception):
    """A figure that cannot be measured here; the message says why."""


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.base_url = args.database_url or None
        self.kind = "postgresql" if generate.is_postgres(self.base_url) else "sqlite"
        self.duration = args.duration or (3 if self.quick else 10)
        self.sizes = {
            "page": 1_000 if self.quick else 10_000,
            "scale": 20_000 if self.quick else 1_000_000,
            # 5 events per contact: 10k / 100k and 1M events.
            "export": (
                [int(n) for n in args.export_contacts.split(",")]
                if args.export_contacts
                else [2_000]
                if self.quick
                else [20_000, 200_000]
            ),
            "import": args.import_rows or (5_000 if self.quick else 50_000),
            # About 30% of a data set's contacts receive market-insights.
            "audience": args.audience_contacts or (2_000 if self.quick else 200_000),
        }
        self.work = Path(tempfile.mkdtemp(prefix="bench-", dir=generate.DATA_DIR))
        self.results: list[str] = []
        self.misses: list[str] = []
        self.baseline: Server | None = None

    # --- helpers -------------------------------------------------------------

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def wrk(self, url: str, mode: str = "plain", seconds: float | None = None, **env) -> Load:
        seconds = seconds or self.duration
        command = [
            "wrk",
            "-t1",
            f"-c{self.args.connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(LUA),
            url,
        ]
        environment = {**os.environ, "BENCH_MODE": mode, **{k: str(v) for k, v in env.items()}}
        finished = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=seconds + 60
        )
        line = next((x for x in reversed(finished.stdout.splitlines()) if x.startswith("{")), None)
        if finished.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed: {finished.stderr.strip() or finished.stdout[-500:]}")
        data = json.loads(line)
        return Load(
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
            bad_status=data["status"],
        )

    def measure(self, server: Server, path: str, mode: str = "plain", **env) -> Load:
        """A short warm-up (templates, connections, caches), then the measured run."""
        self.wrk(server.url + path, mode, seconds=1, **env)
        return self.wrk(server.url + path, mode, **env)

    def paired(
        self, server: Server, path: str, mode: str, baseline_path: str = "/hello", **env
    ) -> tuple[Load, Load]:
        """The baseline and the figure in alternating slices of the run.

        Other work on the machine comes and goes within seconds; alternating
        three slices of each exposes both sides of the ratio to the same noise.
        """
        self.wrk(self.baseline.url + baseline_path, seconds=1)
        self.wrk(server.url + path, mode, seconds=1, **env)
        slice_seconds = max(1, self.duration / ROUNDS)
        baselines, figures = [], []
        for _ in range(ROUNDS):
            baselines.append(self.wrk(self.baseline.url + baseline_path, seconds=slice_seconds))
            figures.append(self.wrk(server.url + path, mode, seconds=slice_seconds, **env))
        return combined(baselines), combined(figures)

    def app_server(self, url: str, label: str) -> Server:
        port = generate_port()
        env = generate.app_environment(
            url,
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            # Nothing is delivered during the bench: mail only queues in the outbox.
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT="9",
        )
        return Server("app:app", env, port=port, log_path=self.work / f"gunicorn-{label}.log")

    def flask(
        self, url: str, *arguments: str, timeout: float = 3600
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, **generate.app_environment(url)}
        return subprocess.run(
            [FLASK, "--app", "app", *arguments],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def has_command(self, url: str, name: str) -> bool:
        listing = self.flask(url, "--help", timeout=120)
        return re.search(rf"^\s+{re.escape(name)}\b", listing.stdout, re.M) is not None

    def record(self, line: str, miss: str | None = None) -> None:
        self.say(line)
        self.results.append(line)
        if miss:
            self.misses.append(miss)

    def check(self, load: Load, what: str) -> None:
        if load.bad_status or load.errors:
            self.record(
                f"  !! {what}: {load.bad_status} non-2xx/3xx answers, {load.errors} socket errors",
                f"{what}: {load.bad_status} bad answers, {load.errors} socket errors",
            )

    def sample(self, url: str, count: int) -> list[tuple[int, str, str]]:
        """Random contacts of a data set: (id, public_id, manage path)."""
        from preference_center import create_app, tokens

        app = create_app(generate.app_settings(url))
        with app.app_context():
            from preference_center.extensions import db
            from preference_center.models import Contact

            total = db.session.execute(sa.select(sa.func.max(Contact.id))).scalar_one()
            ids = random.sample(range(1, total + 1), min(count, total))
            contacts = db.session.execute(sa.select(Contact).where(Contact.id.in_(ids))).scalars()
            rows = [(c.id, c.public_id, "/p/" + tokens.sign(tokens.MANAGE, c)) for c in contacts]
            db.session.remove()
            db.engine.dispose()
        return rows

    def write_lines(self, name: str, lines: list[str]) -> Path:
        path = self.work / name
        path.write_text("\n".join(lines) + "\n")
        return path

    # --- figures -------------------------------------------------------------

    def page_load(self, url: str, label: str, count: int = 2000) -> tuple[Load, Load]:
        paths = self.write_lines(f"paths-{label}.txt", [p for _, _, p in self.sample(url, count)])
        with self.app_server(url, label) as server:
            baseline, page = self.paired(server, "/", "page", BENCH_DATA=paths)
        self.check(page, f"page ({label})")
        return baseline, page

    def figure_page(self) -> None:
        contacts = self.sizes["page"]
        url = generate.ensure_dataset(self.base_url, contacts)
        baseline, page = self.page_load(url, f"page-{contacts}")
        target = TARGETS["page"][self.kind]
        ratio = page.rate / baseline.rate
        self.record(
            f"Page ({contacts:,} contacts): {page.rate:,.0f} req/s, p50 {page.p50_ms:.1f} ms, "
            f"p99 {page.p99_ms:.1f} ms | hello {baseline.rate:,.0f} req/s, p50 "
            f"{baseline.p50_ms:.1f} ms, p99 {baseline.p99_ms:.1f} ms | "
            f"ratio {ratio:.2f}× (target ≥ {target:.2f}×) {verdict(ratio >= target)}",
            None if ratio >= target else f"page {ratio:.2f}× < {target:.2f}×",
        )

    def figure_healthz(self) -> None:
        """The stack's fixed cost: the app's one-query route, no template, no session."""
        url = generate.ensure_dataset(self.base_url, self.sizes["page"])
        with self.app_server(url, "healthz") as server:
            hello, healthz = self.paired(server, "/healthz", "plain")
        self.check(healthz, "healthz")
        self.record(
            f"Health check /healthz (one query, no template): {healthz.rate:,.0f} req/s, "
            f"p50 {healthz.p50_ms:.1f} ms | hello {hello.rate:,.0f} req/s | "
            f"ratio {healthz.rate / hello.rate:.2f}× (no target: the floor under the page)"
        )

    def sessions(self, server: Server, paths: list[str], count: int = 16) -> list[str]:
        """Cookie and CSRF token pairs, each from a real GET of a preference page."""
        lines = []
        for path in random.sample(paths, min(count, len(paths))):
            with urllib.request.urlopen(server.url + path, timeout=10) as response:
                html = response.read().decode()
                cookie = response.headers.get("Set-Cookie", "").split(";", 1)[0]
            token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
            lines.append(f"{cookie}\t{token}")
        return lines

    def figure_toggle(self) -> None:
        contacts = self.sizes["page"]
        dataset = generate.ensure_dataset(self.base_url, contacts)
        url = generate.scratch_copy(self.base_url, dataset, "toggle")
        try:
            paths = [p for _, _, p in self.sample(url, 2000)]
            data = self.write_lines("toggle-paths.txt", paths)
            slugs = ",".join(slug for slug, *_ in generate.LISTS)
            with self.app_server(url, "toggle") as server:
                sessions = self.write_lines("sessions.txt", self.sessions(server, paths))
                baseline, toggle = self.paired(
                    server,
                    "/",
                    "toggle",
                    BENCH_DATA=data,
                    BENCH_SESSIONS=sessions,
                    BENCH_SLUGS=slugs,
                )
            self.check(toggle, "toggle")
            ratio = toggle.rate / baseline.rate
            target = TARGETS["toggle"][self.kind]
            self.record(
                f"Toggle (logged, {contacts:,} contacts): {toggle.rate:,.0f} req/s, "
                f"p99 {toggle.p99_ms:.1f} ms | hello {baseline.rate:,.0f} req/s, "
                f"p99 {baseline.p99_ms:.1f} ms | ratio {ratio:.2f}× (target ≥ {target:.2f}×) "
                f"{verdict(ratio >= target)}",
                None if ratio >= target else f"toggle {ratio:.2f}× < {target:.2f}×",
            )
            self.verify(url, "after the toggles")
        finally:
            generate.drop_scratch(self.base_url, url)

    def verify(self, url: str, when: str) -> None:
        if not self.has_command(url, "verify-log"):
            self.record(f"  verify-log {when}: not available: no `verify-log` command yet")
            return
        finished = self.flask(url, "verify-log")
        summary = (finished.stdout.strip().splitlines() or [finished.stderr.strip()])[0]
        self.record(
            f"  verify-log {when}: exit {finished.returncode}: {summary}",
            None if finished.returncode == 0 else f"verify-log failed {when}",
        )

    def figure_api(self) -> None:
        contacts = self.sizes["page"]
        dataset = generate.ensure_dataset(self.base_url, contacts)
        if not self.has_command(dataset, "create-api-key"):
            raise NotAvailable("no `create-api-key` command (the API has not landed on main)")
        url = generate.scratch_copy(self.base_url, dataset, "api")
        try:
            made = self.flask(url, "create-api-key", "bench", "--scopes", "consent:read")
            key = api_key_from(made.stdout)
            if made.returncode != 0 or key is None:
                raise NotAvailable(f"create-api-key printed no key: {made.stdout} {made.stderr}")
            slugs = [slug for slug, *_ in generate.LISTS]
            lines = [
                f"contact{contact_id}@bench.example\t{random.choice(slugs)}"
                for contact_id, _, _ in self.sample(url, 2000)
            ]
            data = self.write_lines("api.txt", lines)
            with self.app_server(url, "api") as server:
                probe = urllib.request.Request(
                    server.url + "/api/v1/consent?email=contact1@bench.example&list=webinars",
                    headers={"Authorization": f"Bearer {key}"},
                )
                with urllib.request.urlopen(probe, timeout=10) as response:
                    json.load(response)
                baseline, api = self.paired(
                    server, "/", "api", "/json", BENCH_DATA=data, BENCH_API_KEY=key
                )
            self.check(api, "consent API")
            ratio = api.rate / baseline.rate
            target = TARGETS["api"][self.kind]
            self.record(
                f"Consent API: {api.rate:,.0f} req/s, p50 {api.p50_ms:.1f} ms, "
                f"p99 {api.p99_ms:.1f} ms | bare JSON {baseline.rate:,.0f} req/s | "
                f"ratio {ratio:.2f}× (target ≥ {target:.2f}×) {verdict(ratio >= target)}",
                None if ratio >= target else f"consent API {ratio:.2f}× < {target:.2f}×",
            )
        finally:
            generate.drop_scratch(self.base_url, url)

    def figure_scale(self) -> None:
        small, large = self.sizes["page"], self.sizes["scale"]
        small_url = generate.ensure_dataset(self.base_url, small)
        self.say(f"  (preparing the {large:,}-contact data set; cached after the first run)")
        large_url = generate.ensure_dataset(self.base_url, large)
        small_paths = self.write_lines(
            "paths-small.txt", [p for _, _, p in self.sample(small_url, 2000)]
        )
        large_paths = self.write_lines(
            "paths-large.txt", [p for _, _, p in self.sample(large_url, 2000)]
        )
        with (
            self.app_server(small_url, "scale-small") as small_server,
            self.app_server(large_url, "scale-large") as large_server,
        ):
            runs = [
                (self.baseline, "/hello", "plain", {}),
                (small_server, "/", "page", {"BENCH_DATA": small_paths}),
                (large_server, "/", "page", {"BENCH_DATA": large_paths}),
            ]
            for server, path, mode, env in runs:  # warm-up: caches, connections
                self.wrk(server.url + path, mode, seconds=2, **env)
            # Alternating slices, so the noise of the machine falls on both sizes alike.
            slices: list[list[Load]] = [[], [], []]
            for _ in range(ROUNDS):
                for index, (server, path, mode, env) in enumerate(runs):
                    seconds = max(1, self.duration / ROUNDS)
                    slices[index].append(self.wrk(server.url + path, mode, seconds, **env))
        hello, small_page, large_page = (combined(loads) for loads in slices)
        self.check(small_page, f"page ({small:,})")
        self.check(large_page, f"page ({large:,})")
        ratio = large_page.p50_ms / small_page.p50_ms
        target = TARGETS["scale"]
        self.record(
            f"Scale: page p50 {large_page.p50_ms:.1f} ms at {large:,} contacts vs "
            f"{small_page.p50_ms:.1f} ms at {small:,} (hello p50 {hello.p50_ms:.1f} ms; "
            f"req/s {large_page.rate:,.0f} vs {small_page.rate:,.0f}) | ratio {ratio:.2f}× "
            f"(target ≤ {target:.1f}×) {verdict(ratio <= target)}",
            None if ratio <= target else f"scale {ratio:.2f}× > {target:.1f}×",
        )

    def figure_export(self) -> None:
        for contacts in self.sizes["export"]:
            url = generate.ensure_dataset(self.base_url, contacts)
            if not self.has_command(url, "export-log"):
                raise NotAvailable("no `export-log` command (the ledger export has not landed)")
            events = count_events(url)
            out = self.work / f"export-{contacts}.csv"
            seconds, rss = timed(
                [FLASK, "--app", "app", "export-log", "--format", "csv", "-o", str(out)],
                env={**os.environ, **generate.app_environment(url)},
            )
            start_seconds, start_rss = self.startup(url, "export-log")
            base_seconds, base_rss, tool = self.dump_table(url, contacts)
            work = max(seconds - start_seconds, 1e-6)
            ratio = work / base_seconds
            rss_mb = rss / 1024
            ok = ratio <= TARGETS["export_ratio"] and rss_mb <= TARGETS["export_rss_mb"]
            self.record(
                f"Export ({events:,} events, csv): {seconds:.1f} s (start-up "
                f"{start_seconds:.1f} s, work {work:.1f} s), peak RSS {rss_mb:.0f} MB "
                f"(--help {start_rss / 1024:.0f} MB) | "
                f"{tool}: {base_seconds:.1f} s, peak RSS {base_rss / 1024:.0f} MB | "
                f"ratio {ratio:.2f}× (target ≤ {TARGETS['export_ratio']:.0f}×, "
                f"RSS ≤ {TARGETS['export_rss_mb']} MB) {verdict(ok)}",
                None if ok else f"export of {events:,} events {ratio:.2f}×, {rss_mb:.0f} MB",
            )
            out.unlink(missing_ok=True)

    def dump_table(self, url: str, contacts: int) -> tuple[float, int, str]:
        """The same table dumped by the database's own CLI, as the export's baseline."""
        out = self.work / f"dump-{contacts}.csv"
        if self.kind == "sqlite":
            if not shutil.which("sqlite3"):
                raise NotAvailable("no sqlite3 CLI (make bench installs it with apt)")
            path = sa.make_url(url).database
            command = ["sqlite3", "-csv", "-header", path, "SELECT * FROM consent_events"]
            tool = "sqlite3 -csv"
        else:
            libpq = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
            command = [
                "psql",
                libpq,
                "-q",
                "-c",
                f"\\copy (SELECT * FROM consent_events) TO '{out}' WITH CSV HEADER",
            ]
            tool = "psql \\copy csv"
        with out.open("wb") as sink:
            seconds, rss = timed(command, stdout=sink)
        out.unlink(missing_ok=True)
        return seconds, rss, tool

    def startup(self, url: str, *command: str) -> tuple[float, int]:
        """Seconds and peak RSS of ``flask COMMAND --help``: the start-up a CLI figure
        has taken off (the fastest of three)."""
        env = {**os.environ, **generate.app_environment(url)}
        runs = [timed([FLASK, "--app", "app", *command, "--help"], env=env) for _ in range(3)]
        return min(runs)

    def figure_import(self) -> None:
        rows = self.sizes["import"]
        dataset = generate.ensure_dataset(self.base_url, self.sizes["page"])
        url = generate.scratch_copy(self.base_url, dataset, "import")
        try:
            path = self.work / "import.csv"
            with path.open("w", encoding="utf-8") as stream:
                stream.write("email,name,evidence\n")
                for n in range(rows):
                    stream.write(f"new{n}@import.example,New Person {n},Signed the sheet {n}\n")
            command = ["import-contacts", str(path), "--list", "market-insights"]
            command += ["--source", "bench sheet", "--basis", "express", "--added-by", "bench"]
            start_seconds, start_rss = self.startup(url, "import-contacts")
            env = {**os.environ, **generate.app_environment(url)}
            seconds, rss = timed([FLASK, "--app", "app", *command], env=env)
            floor = floors.import_floor(url, path, self.work)
            work = max(seconds - start_seconds, 1e-6)
            ratio = work / floor
            target = TARGETS["import"]
            self.record(
                f"Import ({rows:,} new contacts into one list, CLI): {seconds:.1f} s, "
                f"start-up {start_seconds:.1f} s, work {work:.1f} s = {rows / work:,.0f} "
                f"contacts/s, peak RSS {rss / 1024:.0f} MB (--help {start_rss / 1024:.0f} MB) | "
                "plain DB-API floor "
                f"{floor:.1f} s = {rows / floor:,.0f}/s | ratio {ratio:.1f}× "
                f"(target ≤ {target:.0f}×) {verdict(ratio <= target)}",
                None if ratio <= target else f"import {ratio:.1f}× > {target:.0f}×",
            )
            self.verify(url, "after the import")
        finally:
            generate.drop_scratch(self.base_url, url)

    def figure_audience(self) -> None:
        contacts = self.sizes["audience"]
        url = generate.ensure_dataset(self.base_url, contacts)
        slug = "market-insights"
        out = self.work / "audience.csv"
        start_seconds, start_rss = self.startup(url, "audience")
        env = {**os.environ, **generate.app_environment(url)}
        seconds, rss = timed(
            [FLASK, "--app", "app", "audience", slug, "--format", "csv", "-o", str(out)], env=env
        )
        with out.open(encoding="utf-8") as stream:
            rows = sum(1 for _ in stream) - 1
        floor_out = self.work / "audience-floor.csv"
        floor = floors.audience_floor(url, slug, generate.BENCH_SECRET, "http://x", floor_out)
        with floor_out.open(encoding="utf-8") as stream:
            floor_rows = sum(1 for _ in stream) - 1
        out.unlink(missing_ok=True)
        floor_out.unlink(missing_ok=True)
        work = max(seconds - start_seconds, 1e-6)
        ratio = work / floor
        rss_mb = rss / 1024
        ok = ratio <= TARGETS["audience_ratio"] and rss_mb <= TARGETS["audience_rss_mb"]
        self.record(
            f"Audience ({rows:,} recipients of {contacts:,} contacts, csv, CLI): {seconds:.1f} s, "
            f"start-up {start_seconds:.1f} s, work {work:.1f} s, peak RSS {rss_mb:.0f} MB "
            f"(--help {start_rss / 1024:.0f} MB) | "
            f"DB-API + bare itsdangerous, two links a row ({floor_rows:,} rows): {floor:.1f} s | "
            f"ratio {ratio:.2f}× (target ≤ {TARGETS['audience_ratio']:.0f}×, "
            f"RSS ≤ {TARGETS['audience_rss_mb']} MB) {verdict(ok)}",
            None if ok else f"audience {ratio:.2f}×, {rss_mb:.0f} MB",
        )

    def figure_links(self) -> None:
        from itsdangerous import URLSafeTimedSerializer

        from preference_center import create_app, tokens

        url = generate.ensure_dataset(self.base_url, self.sizes["page"])
        app = create_app(generate.app_settings(url))
        seconds = 1 if self.quick else 3
        with app.app_context():
            from preference_center.extensions import db
            from preference_center.models import Contact

            contacts = list(db.session.execute(sa.select(Contact).limit(1000)).scalars())
            bare = URLSafeTimedSerializer(app.config["LINK_SIGNING_KEYS"], salt=tokens.MANAGE)

            def bare_sign(contact):
                return bare.dumps({"c": contact.public_id, "v": contact.token_version})

            base_rate = rate_of(bare_sign, contacts, seconds)
            rate = rate_of(tokens.manage_url, contacts, seconds)
            db.session.remove()
            db.engine.dispose()
        self.record(
            f"Link minting (manage_url, one process): {rate:,.0f} links/s | bare itsdangerous "
            f"dumps {base_rate:,.0f}/s | ratio {rate / base_rate:.2f}×"
        )

    # --- the run -------------------------------------------------------------

    FIGURES = ("page", "healthz", "toggle", "api", "scale", "export", "import", "audience", "links")
    # The figures served by gunicorn and driven by wrk (the others time a CLI or a call).
    SERVED = ("page", "healthz", "toggle", "api", "scale")

    def run(self, only: list[str]) -> int:
        self.say(machine_line(self.kind, self.quick, self.duration, self.args.connections))
        if not shutil.which("wrk") and set(only) & set(self.SERVED):
            self.say("not available: wrk is not installed (make bench installs it with apt-get)")
            return 2
        baseline_env = {"PYTHONPATH": str(PROJECT_ROOT)}
        self.baseline = Server(
            "bench.baseline:app",
            baseline_env,
            ready_path="/hello",
            log_path=self.work / "gunicorn-baseline.log",
        )
        with self.baseline:
            for name in only:
                self.say(f"-- {name}")
                try:
                    getattr(self, f"figure_{name}")()
                except NotAvailable as why:
                    self.record(f"{name.title()}: not available: {why}")
        self.say("")
        self.say("Summary")
        for line in self.results:
            self.say("  " + line)
        if self.misses:
            self.say("Missed targets: " + "; ".join(self.misses))
        shutil.rmtree(self.work, ignore_errors=True)
        return 0


def generate_port() -> int:
    from .server import free_port

    return free_port()


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def api_key_from(output: str) -> str | None:
    """The key create-api-key prints once: the longest token-looking word of its output."""
    words = re.findall(r"[A-Za-z0-9_\-\.]{24,}", output)
    return max(words, key=len) if words else None


def count_events(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text("SELECT count(*) FROM consent_events"))
    finally:
        engine.dispose()


def timed(command: list[str], **popen) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command, as GNU time reports them.

    Not this process's own rusage of the child: a child forked from this
    (large) Python process counts the parent's pages in its high-water mark
    until it execs.
    """
    popen.setdefault("stdout", subprocess.DEVNULL)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.monotonic()
        finished = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
            cwd=PROJECT_ROOT,
            stderr=subprocess.PIPE,
            **popen,
        )
        seconds = time.monotonic() - started
        if finished.returncode != 0:
            stderr = finished.stderr.decode(errors="replace")
            raise RuntimeError(f"{command[0]} … exited {finished.returncode}: {stderr[-500:]}")
        peak = int(report.read().split()[-1])
    return seconds, peak


def rate_of(function, items: list, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for item in items:
            function(item)
        count += len(items)
    return count / (time.perf_counter() - started)


def machine_line(kind: str, quick: bool, duration: float, connections: int) -> str:
    memory = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.split("\n")[1]
    return (
        f"bench on {kind}{' (quick)' if quick else ''}: nproc {os.cpu_count()}, "
        f"memory {memory.split()[1]}, Python {sys.version.split()[0]}, "
        f"gunicorn 2 sync workers, wrk -t1 -c{connections} -d{duration}s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks against same-run baselines.")
    parser.add_argument("--quick", action="store_true", help="small data, short runs (smoke)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--only", default=",".join(Bench.FIGURES), help="comma-separated figures")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--import-rows", type=int, help="rows of the import figure")
    parser.add_argument("--export-contacts", help="data sets of the export figure (20000,200000)")
    parser.add_argument("--audience-contacts", type=int, help="data set of the audience figure")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(Bench.FIGURES)
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(sorted(unknown))}")
    generate.DATA_DIR.mkdir(parents=True, exist_ok=True)
    return Bench(args).run(only)


if __name__ == "__main__":
    sys.exit(main())
