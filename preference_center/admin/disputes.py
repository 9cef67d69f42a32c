"""Disputes: the "I never agreed to this" reports, with where the contact came from."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func

from ..extensions import db
from ..models import Subscription
from . import bp


@bp.get("/disputes")
def disputes():
    """Every disputed subscription, newest first, and which practices cause them."""
    disputed = Subscription.disputed_at.is_not(None)
    reports = db.session.execute(
        db.select(Subscription).where(disputed).order_by(Subscription.disputed_at.desc())
    ).scalars()
    # Grouped by who added people and from where: the practice the sender should fix.
    by_practice = db.session.execute(
        db.select(Subscription.added_by, Subscription.source, Subscription.basis, func.count())
        .where(disputed)
        .group_by(Subscription.added_by, Subscription.source, Subscription.basis)
        .order_by(func.count().desc())
    ).all()
    return render_template("admin/disputes.html", reports=list(reports), by_practice=by_practice)
