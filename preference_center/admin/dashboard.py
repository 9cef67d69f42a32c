"""The dashboard: per list, opt-ins and opt-outs per week and the count by state,
drawn as server-rendered SVG with a table beside it for screen readers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import render_template
from sqlalchemy import and_, case, func

from .. import leaving, mailer
from ..extensions import db
from ..models import (
    EXPIRED,
    STATES,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ConsentEvent,
    MailingList,
    Subscription,
    utcnow,
)
from ..wording import day
from . import bp

WEEKS = 12
# Chart geometry, in SVG user units.
WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 40
BAR_WIDTH = 14
STATE_FILLS = {
    "subscribed": "#1e6b2a",
    "pending": "#b07800",
    "invited": "#0b5cad",
    "unsubscribed": "#a11d2b",
    "expired": "#6b7785",
}


@dataclass
class Week:
    start: date
    opt_ins: int = 0
    opt_outs: int = 0

    @property
    def label(self) -> str:
        return f"{self.start.day} {self.start:%b}"


@dataclass
class Bar:
    x: float
    y: float
    height: float
    value: int


@dataclass
class ListPicture:
    """Everything the dashboard draws for one list."""

    mailing_list: MailingList
    weeks: list[Week]
    states: dict[str, int] = field(default_factory=dict)

    @property
    def total_in(self) -> int:
        return sum(w.opt_ins for w in self.weeks)

    @property
    def total_out(self) -> int:
        return sum(w.opt_outs for w in self.weeks)

    @property
    def scale_max(self) -> int:
        return max([1] + [max(w.opt_ins, w.opt_outs) for w in self.weeks])

    def ticks(self) -> list[tuple[int, float]]:
        """Y-axis ticks (value, y): zero, half-way and the top."""
        top = self.scale_max
        values = sorted({0, top // 2, top})
        return [(v, self.y_of(v)) for v in values]

    def y_of(self, value: int) -> float:
        plot = HEIGHT - TOP - BOTTOM
        return round(HEIGHT - BOTTOM - plot * value / self.scale_max, 1)

    def columns(self) -> list[tuple[Week, float, Bar, Bar]]:
        """Per week: the week, the x of its label, its opt-in bar and opt-out bar."""
        slot = (WIDTH - LEFT - RIGHT) / len(self.weeks)
        result = []
        for index, week in enumerate(self.weeks):
            centre = LEFT + slot * index + slot / 2
            bars = []
            for x, value in ((centre - BAR_WIDTH, week.opt_ins), (centre, week.opt_outs)):
                y = self.y_of(value)
                bars.append(Bar(round(x, 1), y, round(HEIGHT - BOTTOM - y, 1), value))
            result.append((week, round(centre, 1), bars[0], bars[1]))
        return result

    def state_segments(self) -> list[tuple[str, int, float, float, str]]:
        """The stacked state bar: (state, count, x, width, fill) per non-empty state."""
        total = sum(self.states.values())
        x, result = 0.0, []
        for state in STATES:
            count = self.states.get(state, 0)
            if not count:
                continue
            width = round((WIDTH - 2) * count / total, 1)
            result.append((state, count, round(x + 1, 1), width, STATE_FILLS[state]))
            x += width
        return result

    @property
    def description(self) -> str:
        busiest = max(self.weeks, key=lambda w: w.opt_ins + w.opt_outs)
        text = (
            f"Over the last {len(self.weeks)} weeks, {self.total_in} opt-ins and "
            f"{self.total_out} opt-outs for {self.mailing_list.name}."
        )
        if busiest.opt_ins + busiest.opt_outs:
            text += (
                f" The busiest week began {day(busiest.start)}: "
                f"{busiest.opt_ins} in, {busiest.opt_outs} out."
            )
        return text


def week_starts(today: date) -> list[date]:
    """The Mondays of the last WEEKS weeks, this week last."""
    this_monday = today - timedelta(days=today.weekday())
    return [this_monday - timedelta(weeks=n) for n in range(WEEKS - 1, -1, -1)]


def became(state: str):
    """1 for an event that moved a subscription into ``state``, else 0."""
    event = ConsentEvent
    return case((and_(event.to_state == state, event.from_state != state), 1), else_=0)


def weekly_counts(starts: list[date]) -> dict[int, dict[date, Week]]:
    """Opt-ins (into subscribed) and opt-outs (into unsubscribed) per list and week.

    Counted per day in SQL (``date()`` works on both SQLite and PostgreSQL)
    and folded into weeks here: at most 84 rows per list come back.
    """
    event = ConsentEvent
    per_day = func.date(event.occurred_at)
    since = datetime.combine(starts[0], time.min)
    rows = db.session.execute(
        db.select(
            event.list_id, per_day, func.sum(became(SUBSCRIBED)), func.sum(became(UNSUBSCRIBED))
        )
        .where(event.list_id.is_not(None), event.occurred_at >= since)
        .group_by(event.list_id, per_day)
    )
    counts: dict[int, dict[date, Week]] = defaultdict(lambda: {s: Week(s) for s in starts})
    for list_id, when, ins, outs in rows:
        when = date.fromisoformat(str(when)[:10])
        week = counts[list_id][when - timedelta(days=when.weekday())]
        week.opt_ins += int(ins or 0)
        week.opt_outs += int(outs or 0)
    return counts


def state_counts(now: datetime) -> dict[int, dict[str, int]]:
    """Subscriptions per list and state; implied consent past its end counts as expired."""
    state = case(
        (
            and_(
                Subscription.state == SUBSCRIBED,
                Subscription.expires_at.is_not(None),
                Subscription.expires_at <= now,
            ),
            EXPIRED,
        ),
        else_=Subscription.state,
    )
    rows = db.session.execute(
        db.select(Subscription.list_id, state, func.count()).group_by(Subscription.list_id, state)
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for list_id, name, count in rows:
        counts[list_id][name] = count
    return counts


@bp.get("/")
def dashboard():
    """Per list: opt-ins and opt-outs per week, and who is in which state now."""
    now = utcnow()
    starts = week_starts(now.date())
    weekly = weekly_counts(starts)
    states = state_counts(now)
    lists = db.session.execute(
        db.select(MailingList).where(MailingList.archived_at.is_(None)).order_by(MailingList.name)
    ).scalars()
    pictures = [
        ListPicture(
            mailing_list=m,
            weeks=list(weekly[m.id].values()),
            states=states.get(m.id, {}),
        )
        for m in lists
    ]
    return render_template(
        "admin/dashboard.html",
        pictures=pictures,
        geometry={"width": WIDTH, "height": HEIGHT, "left": LEFT, "bottom": BOTTOM, "top": TOP},
        states=STATES,
        fills=STATE_FILLS,
        failed_mail=mailer.failed_messages(),
        leaving_reasons=leaving.counts(),
    )
