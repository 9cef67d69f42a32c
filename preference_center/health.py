"""Blueprint: the health check load balancers and `make run` poll."""

from flask import Blueprint
from sqlalchemy import text

from .extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 when the app and its database answer."""
    db.session.execute(text("SELECT 1"))
    return {"status": "ok"}
