"""Blueprint: the health check load balancers and `make run` poll."""

from flask import Blueprint
from sqlalchemy import text

from .extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the app and its database answer (one pooled connection, no ORM session)."""
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "ok"}
