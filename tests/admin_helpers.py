"""Signing in to the admin area from tests, and counting what the database holds."""

from __future__ import annotations

from helpers import csrf_token

from preference_center.admin import auth
from preference_center.extensions import db

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


def row_counts() -> dict[str, int]:
    """Rows per table: a change anywhere shows up as a difference."""
    db.session.expire_all()
    return {
        table.name: db.session.execute(db.select(db.func.count()).select_from(table)).scalar_one()
        for table in db.metadata.sorted_tables
    }
