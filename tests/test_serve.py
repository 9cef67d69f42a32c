"""`make serve` as production runs it: slow clients cannot stall it, and its access log works.

Each test starts `make serve` on a free port with its own instance folder and
database (a SQLite file, or the test PostgreSQL database), and stops its whole
process group at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from plugins.mail import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "eyJ2IjoxfQ.secret-token-never-logged"


@dataclass
class Served:
    url: str
    access_log: Path
    stderr: Path
    stdout: Path


def get(url: str, timeout: float = 10) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def served(database_url, tmp_path, smtp):
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "ACCESS_LOG": str(tmp_path / "access.log"),
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp.port),
        "SECRET_KEY": "serve-test-secret-" + "x" * 32,
    }
    env.pop("RATELIMIT_STORAGE_URI", None)
    env.pop("REDIS_URL", None)
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(url + "/healthz", timeout=2) == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, stderr.read_text()[-3000:]
            assert time.monotonic() < deadline, "make serve did not answer in time"
            time.sleep(0.3)
        yield Served(url, tmp_path / "access.log", stderr, stdout)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_fifty_half_sent_requests_do_not_delay_a_normal_one(served):
    port = int(served.url.rsplit(":", 1)[1])
    idle = []
    try:
        for number in range(50):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            # A request line and headers, but never the blank line that ends them.
            sock.sendall(
                f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {number}\r\n".encode()
            )
            idle.append(sock)
        time.sleep(0.5)  # let the server take every one of them in
        started = time.monotonic()
        status = get(served.url + "/healthz", timeout=5)
        elapsed = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
    assert status == 200
    assert elapsed < 1.0, f"a normal request waited {elapsed:.2f} s behind idle clients"


def test_the_access_log_has_each_request_with_its_token_redacted(served):
    assert get(f"{served.url}/u/{TOKEN}") == 404
    assert get(f"{served.url}/p/{TOKEN}?lang=en") == 404

    deadline = time.monotonic() + 10
    while "/p/" not in (served.access_log.read_text() if served.access_log.exists() else ""):
        assert time.monotonic() < deadline, "nothing reached the access log"
        time.sleep(0.2)
    log = served.access_log.read_text()
    assert '"GET /u/[token] HTTP/1.1" 404' in log
    assert '"GET /p/[token]?lang=en HTTP/1.1" 404' in log
    assert TOKEN not in log and "secret-token" not in log
    errors = served.stderr.read_text() + served.stdout.read_text()
    assert "Logging error" not in errors and "Traceback" not in errors


def test_make_serve_warns_when_rate_limits_are_per_process(served):
    output = served.stderr.read_text() + served.stdout.read_text()
    assert "RATELIMIT_STORAGE_URI is memory:// with 2 workers" in output
