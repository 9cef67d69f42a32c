"""Start and stop gunicorn on loopback, the same way for the app and the baseline.

Worker class: ``sync``, 2 workers. Measured on this kind of machine
(dependency note 15), sync workers beat gthread on database-bound routes;
gthread with SQLite writes had a 3–7× worse p99 because its threads queue on
SQLite's single write lock, and it sometimes left one worker idle while the
other held every keep-alive connection. ``--no-control-socket`` keeps
gunicorn 27 from creating a control socket under ``~/.gunicorn/`` (note 14).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
WORKERS = 2
# BENCH_WORKER_CLASS=gevent measures the worker class `make serve` uses (gunicorn.conf.py).
WORKER_CLASS = os.environ.get("BENCH_WORKER_CLASS", "sync")
# Not the project's gunicorn.conf.py (which gunicorn would read from the project folder).
CONFIG = str(PROJECT_ROOT / "bench" / "gunicorn.conf.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """One gunicorn master (in its own process group) serving ``target`` on loopback."""

    target: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    ready_path: str = "/healthz"
    log_path: Path | None = None
    workers: int = WORKERS
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            GUNICORN,
            "--config",
            CONFIG,
            "--workers",
            str(self.workers),
            "--worker-class",
            WORKER_CLASS,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            self.target,
        ]

    def start(self, timeout: float = 30) -> Server:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=log,
            # Its own process group, so a SIGKILL can take the master and its workers at once.
            start_new_session=True,
        )
        if log is not subprocess.DEVNULL:
            log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.target} exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn {self.target} did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL the master and its workers: a crash, not a shutdown."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
