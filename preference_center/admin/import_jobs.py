"""Admin imports run in the background: the job, its runner and its progress.

``POST /admin/imports`` stores the upload as an ``ImportJob`` (queued) and
``start``s it: a real OS thread of the web process claims it and runs the one
importer (``importers.import_contacts``, one transaction, as the CLI does).
Under gunicorn's gevent workers the thread comes from gevent's thread pool (a
monkey-patched "thread" would be a greenlet, and a CPU-bound import in it would
stall every other request of the worker); under the Flask dev server and sync
workers it is a plain ``threading.Thread``.

Progress goes beside the import's transaction, never in it, so the page that
polls sees it: on PostgreSQL a short transaction of its own updates the job's
``rows_read`` and ``heartbeat_at``; on SQLite the import holds the one write
lock until it commits, so progress is a small file next to the database that
every process on the machine reads. A ticker writes it every
``HEARTBEAT_SECONDS`` while the runner lives. A job whose heartbeat is older
than ``STALE_SECONDS`` lost its runner (the worker was killed or restarted):
its transaction was rolled back with it, so nothing was written, and it is
shown as interrupted, to be run again (``requeue``).

A claim is one ``UPDATE … WHERE status = 'queued'`` that bumps ``attempt``:
two processes never run one job, and a runner that was given up on (its
attempt is no longer the job's) commits nothing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from .. import importers
from ..database import WRITES, write_connection
from ..extensions import db
from ..models import AdminUser, ImportJob, utcnow
from . import record_action

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
REFUSED = "refused"
FAILED = "failed"
INTERRUPTED = "interrupted"
ENDED = frozenset({DONE, REFUSED, FAILED})
# Shown, never stored: a queued or running job whose runner stopped beating.
LIVE = frozenset({QUEUED, RUNNING})

HEARTBEAT_SECONDS = 1.0
# Claims tried while SQLite's write lock is taken (each waits its busy_timeout, 30 s).
CLAIM_TRIES = 120
STALE_SECONDS = 30
# Rejected rows kept for the summary page (the summary counts them all).
PROBLEMS_KEPT = 500

FAILED_MESSAGE = (
    "The import stopped on an unexpected error, so nothing was imported. "
    "Run it again; if it fails again, tell whoever runs this service (the error is in its log)."
)


def estimate_rows(data: bytes) -> int:
    """About how many data rows the file has: its lines but the header."""
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    return max(lines - 1, 0)


def create(admin: AdminUser, options: importers.ImportOptions, data: bytes) -> ImportJob:
    """A queued job for ``data``, in the caller's transaction (the caller commits, then starts)."""
    job = ImportJob(
        admin_id=admin.id,
        list_slug=options.list_slug,
        source=options.source,
        basis=options.basis,
        added_by=options.added_by,
        dry_run=options.dry_run,
        skip_invalid=options.skip_invalid,
        filename=options.filename,
        data=data,
        size=len(data),
        status=QUEUED,
        attempt=0,
        rows_read=0,
        rows_estimate=estimate_rows(data),
        heartbeat_at=utcnow(),
    )
    db.session.add(job)
    db.session.flush()
    return job


def options_of(job: ImportJob) -> importers.ImportOptions:
    return importers.ImportOptions(
        list_slug=job.list_slug,
        source=job.source,
        basis=job.basis,
        added_by=job.added_by,
        dry_run=job.dry_run,
        skip_invalid=job.skip_invalid,
        filename=job.filename,
        actor=f"admin:{job.admin_id}",
    )


# --- progress, beside the import's transaction ---------------------------------------


def _progress_file(job_id: int) -> Path | None:
    """Where a SQLite job's progress is written; None on other databases."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if database and database != ":memory:" and not database.startswith("file::memory:"):
        folder = Path(f"{database}-import-progress")
    else:
        folder = Path(current_app.instance_path) / "import-progress"
    return folder / f"{job_id}.json"


def write_progress(job_id: int, attempt: int, rows: int) -> None:
    """Rows read so far by this attempt, and a fresh heartbeat. Attempt 0: a runner
    still waiting to claim the job (on SQLite, for another import's write lock)."""
    now = utcnow()
    path = _progress_file(job_id)
    if path is None:
        if not attempt:
            return  # a PostgreSQL claim waits for no other import
        with write_connection(db.engine) as connection:
            connection.execute(
                update(ImportJob)
                .where(
                    ImportJob.id == job_id,
                    ImportJob.attempt == attempt,
                    ImportJob.status == RUNNING,
                )
                .values(rows_read=rows, heartbeat_at=now)
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    partial.write_text(
        json.dumps({"attempt": attempt, "rows_read": rows, "heartbeat_at": now.isoformat()})
    )
    partial.replace(path)


def _forget_progress(job_id: int) -> None:
    path = _progress_file(job_id)
    if path is not None:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Progress:
    """What a page shows of a job: its status as seen now, rows read, about how many."""

    status: str
    rows_read: int
    rows_estimate: int
    heartbeat_at: datetime | None

    @property
    def ended(self) -> bool:
        return self.status in ENDED or self.status == INTERRUPTED

    @property
    def total(self) -> int:
        return max(self.rows_estimate, self.rows_read)

    @property
    def percent(self) -> int:
        if self.status == DONE:
            return 100
        if not self.total:
            return 0
        return min(99, self.rows_read * 100 // self.total)


def progress_of(job: ImportJob, now: datetime | None = None) -> Progress:
    """The job as a page shows it; reads only (a stale runner shows as interrupted)."""
    rows, heartbeat = job.rows_read, job.heartbeat_at
    path = _progress_file(job.id) if job.status in LIVE else None
    if path is not None:
        try:
            written = json.loads(path.read_text())
        except (OSError, ValueError):
            written = None
        # A running attempt's own beats, or (queued) a runner's waiting to claim it.
        wanted = job.attempt if job.status == RUNNING else 0
        if written and written.get("attempt") == wanted:
            rows = written["rows_read"]
            heartbeat = max(heartbeat, datetime.fromisoformat(written["heartbeat_at"]))
    status = job.status
    if status in LIVE and _stale(heartbeat, now):
        status = INTERRUPTED
    return Progress(status, rows, job.rows_estimate, heartbeat)


def _stale(heartbeat: datetime | None, now: datetime | None) -> bool:
    return heartbeat is None or heartbeat < (now or utcnow()) - timedelta(seconds=STALE_SECONDS)


# --- the summary a page shows -------------------------------------------------------------


def summary_record(summary: importers.ImportSummary) -> str:
    """The summary as stored: its counts and the first ``PROBLEMS_KEPT`` rejected rows."""
    return json.dumps(
        {
            "format": summary.format,
            "dry_run": summary.dry_run,
            "created": summary.created,
            "updated": summary.updated,
            "invited": summary.invited,
            "unchanged": summary.unchanged,
            "suppressed": summary.suppressed,
            "skipped_without_email": summary.skipped_without_email,
            "duplicates": summary.duplicates,
            "counts": summary.counts(),
            "rejected_total": len(summary.rejected),
            "rejected": [
                {"line": row.line, "reason": row.reason, "values": row.values}
                for row in summary.rejected[:PROBLEMS_KEPT]
            ],
        }
    )


@dataclass
class StoredSummary:
    """A finished job's summary, read back for the page (as ``ImportSummary`` reads)."""

    format: str
    dry_run: bool
    created: int
    updated: int
    invited: int
    unchanged: int
    suppressed: int
    skipped_without_email: int
    duplicates: int
    text: str
    rejected_total: int
    rejected: list[dict] = field(default_factory=list)

    def counts(self) -> str:
        return self.text


def summary_of(job: ImportJob) -> StoredSummary | None:
    if not job.summary:
        return None
    stored = json.loads(job.summary)
    stored["text"] = stored.pop("counts")
    return StoredSummary(**stored)


# --- the runner --------------------------------------------------------------------------


@dataclass
class _Run:
    """What the runner and its ticker share (plain attributes: no lock is needed)."""

    job_id: int
    attempt: int = 0
    rows: int = 0
    over: bool = False


# The runners and tickers this process started (plain threads), for ``wait_for_runners``.
_started: list[threading.Thread] = []


def start(app: Flask, job_id: int) -> None:
    """Run the job in a real OS thread of this process, with its heartbeat ticker."""
    run = _Run(job_id)
    pool = _gevent_threadpool()
    threads = []
    if pool is not None:
        pool.spawn(_run_in_thread, app, run)
    else:
        threads.append(
            threading.Thread(
                target=_run_in_thread, args=(app, run), name=f"import-job-{job_id}", daemon=True
            )
        )
    # Under gevent this "thread" is a greenlet of the calling hub, which keeps running
    # while the import holds a native thread; elsewhere it is a thread of its own.
    threads.append(
        threading.Thread(
            target=_tick, args=(app, run), name=f"import-heartbeat-{job_id}", daemon=True
        )
    )
    _started[:] = [thread for thread in _started if thread.is_alive()]
    for thread in threads:
        _started.append(thread)
        thread.start()


def wait_for_runners(timeout: float = 60) -> None:
    """Wait for the imports this process started to end (before closing its engine)."""
    for thread in list(_started):
        thread.join(timeout)


def _gevent_threadpool():
    """gevent's pool of native threads, when this process is monkey-patched."""
    try:
        from gevent import get_hub, monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return None
    if not monkey.is_module_patched("threading"):
        return None
    return get_hub().threadpool


def _tick(app: Flask, run: _Run) -> None:
    with app.app_context():
        while not run.over:
            try:
                write_progress(run.job_id, run.attempt, run.rows)
            except Exception:  # a missed beat is not the import's failure
                log.warning("import job %s: heartbeat not written", run.job_id, exc_info=True)
            time.sleep(HEARTBEAT_SECONDS)


def _run_in_thread(app: Flask, run: _Run) -> None:
    try:
        with app.app_context():
            execute(run)
    finally:
        run.over = True


def claim(job_id: int) -> int | None:
    """Mark a queued job running, atomically; its new attempt number, or None if taken."""
    now = utcnow()
    with write_connection(db.engine) as connection:
        claimed = connection.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.status == QUEUED)
            .values(
                status=RUNNING,
                attempt=ImportJob.attempt + 1,
                started_at=now,
                heartbeat_at=now,
                rows_read=0,
            )
            .returning(ImportJob.attempt)
        ).scalar_one_or_none()
    return claimed


def run_now(job_id: int) -> None:
    """Claim and run the job in this thread (in an app context, and session, of its own)."""
    with current_app._get_current_object().app_context():
        execute(_Run(job_id))


def run_claimed(job_id: int, attempt: int) -> None:
    """Run a job this caller has claimed (``claim``) in this thread, as ``run_now`` does."""
    with current_app._get_current_object().app_context():
        _import(_Run(job_id, attempt))


def execute(run: _Run) -> None:
    """Claim the job and import it; nothing to do when another runner took it."""
    for _wait in range(CLAIM_TRIES):
        try:
            attempt = claim(run.job_id)
            break
        except OperationalError:
            # SQLite: another import holds the write lock (busy_timeout waited already).
            if db.engine.dialect.name != "sqlite":
                raise
            db.session.remove()
    else:
        log.error("import job %s: the database stayed locked; left queued", run.job_id)
        return
    if attempt is not None:
        run.attempt = attempt
        _import(run)


def _import(run: _Run) -> None:
    def progress(rows: int, _last: bool) -> None:
        run.rows = rows

    try:
        # On SQLite this transaction begins IMMEDIATE, as the CLI's and a POST's do.
        db.session.connection(execution_options=WRITES)
        job = db.session.get(ImportJob, run.job_id)
        options = options_of(job)
        summary = importers.import_contacts(job.data or b"", options, progress)
    except importers.InvalidRows as error:
        message = str(error).replace("--skip-invalid", "“skip invalid rows”")
        _end(run, REFUSED, message=message, summary=error.summary)
    except importers.ImportRefused as error:
        _end(run, REFUSED, message=str(error))
    except Exception:
        log.exception("import job %s failed", run.job_id)
        db.session.rollback()
        _end(run, FAILED, message=FAILED_MESSAGE, keep_data=True)
    else:
        if not options.dry_run:
            # In the import's transaction: logged once, when the import commits.
            record_action(
                "import_contacts",
                admin=job.admin,
                file=options.filename,
                list=options.list_slug,
                source=options.source,
                basis=options.basis,
                added_by=options.added_by,
                format=summary.format,
                counts=summary.counts(),
                job=run.job_id,
            )
        _end(run, DONE, summary=summary)
    finally:
        db.session.remove()


def _end(
    run: _Run,
    status: str,
    *,
    message: str | None = None,
    summary: importers.ImportSummary | None = None,
    keep_data: bool = False,
) -> None:
    """Write the outcome in the session's transaction (the import's, for a real one)."""
    if not db.session().in_transaction():  # refused, failed or a dry run: rolled back
        db.session.connection(execution_options=WRITES)
    values = {
        "status": status,
        "message": message,
        "summary": summary_record(summary) if summary is not None else None,
        "rows_read": run.rows,
        "finished_at": utcnow(),
        "heartbeat_at": utcnow(),
    }
    if not keep_data:
        values["data"] = None
    ended = db.session.execute(
        update(ImportJob)
        .where(
            ImportJob.id == run.job_id,
            ImportJob.attempt == run.attempt,
            ImportJob.status == RUNNING,
        )
        .values(**values)
    ).rowcount
    if ended != 1:
        # Given up on as interrupted and run again meanwhile: this run commits nothing.
        log.warning("import job %s attempt %s was superseded", run.job_id, run.attempt)
        db.session.rollback()
        return
    db.session.commit()
    run.over = True
    _forget_progress(run.job_id)


def can_run_again(job: ImportJob, progress: Progress) -> bool:
    """Interrupted or failed, with its upload still kept (read without loading it)."""
    if progress.status not in (INTERRUPTED, FAILED):
        return False
    kept = select(ImportJob.id).where(ImportJob.id == job.id, ImportJob.data.is_not(None))
    return db.session.execute(kept).first() is not None


def requeue(job_id: int) -> bool:
    """Queue an interrupted (or failed) job again, in the caller's transaction;
    False when it is not one (still running, or ended for good)."""
    now = utcnow()
    job = db.session.get(ImportJob, job_id)
    if job is None or not can_run_again(job, progress_of(job, now)):
        return False
    # Only if nothing moved since it was read: a runner that claimed or ended it keeps it.
    unchanged = [
        ImportJob.id == job_id,
        ImportJob.status == job.status,
        ImportJob.attempt == job.attempt,
        ImportJob.data.is_not(None),
    ]
    if job.status in LIVE and _progress_file(job_id) is None:
        unchanged.append(ImportJob.heartbeat_at == job.heartbeat_at)
    requeued = db.session.execute(
        update(ImportJob)
        .where(*unchanged)
        .values(
            status=QUEUED,
            rows_read=0,
            message=None,
            summary=None,
            started_at=None,
            finished_at=None,
            heartbeat_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return requeued == 1
