"""Signing in to the admin area from tests, and counting what the database holds."""

from __future__ import annotations

import time

from helpers import csrf_token

from preference_center.admin import auth, import_jobs
from preference_center.extensions import db
from preference_center.models import ImportJob

PASSWORD = "correct horse battery staple"


def create(email: str = "ada@example.com", role: str = "admin"):
    admin = auth.create_admin(email, PASSWORD, role)
    db.session.commit()
    return admin


def sign_in(client, email: str, password: str = PASSWORD):
    """Post the login form with the token of the login page; returns the response."""
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token}
    )


def token_of(client, path: str = "/admin/") -> str:
    return csrf_token(client.get(path).get_data(as_text=True))


def row_counts(but: tuple[str, ...] = ()) -> dict[str, int]:
    """Rows per table (but those named): a change anywhere shows up as a difference."""
    db.session.expire_all()
    return {
        table.name: db.session.execute(db.select(db.func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
        if table.name not in but
    }


def data_counts() -> dict[str, int]:
    """Rows per table but the import jobs themselves: what an import may write."""
    return row_counts(but=("import_jobs",))


def job_of(response) -> int:
    """The import job an upload answered with (303 to its page)."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def ended_job(job_id: int, timeout: float = 60) -> ImportJob:
    """The job once its background import has ended (it runs in a thread of the app)."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.commit()  # a fresh snapshot of what the runner committed
        job = db.session.get(ImportJob, job_id)
        if job.status in import_jobs.ENDED:
            return job
        assert time.monotonic() < deadline, f"import job {job_id} still {job.status}"
        time.sleep(0.05)


def finished_import(client, response):
    """The upload's job page once its import has ended, as the browser would end up."""
    ended_job(job_of(response))
    return client.get(response.headers["Location"])
