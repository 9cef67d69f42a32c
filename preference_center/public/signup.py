"""Blueprint: the hosted signup form at /s/<slug> and /s?lists=a,b (double opt-in).

Only these pages may be framed, and only by this site and ``EMBED_ORIGINS``.
A framed form on another site gets no first-party cookie, so its CSRF token is
not bound to a session: it is a short-lived signed token naming the lists and
the origin of the page the form sat on, checked on POST (with the Origin check
of ``security.py``). The answer is the same whether the address was known, and
a filled-in honeypot gets that answer too, with nothing written.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer

from .. import languages, rate_limits, signup
from ..extensions import csrf, db, limiter
from ..models import Channel, MailingList, normalise_email, utcnow
from ..security import embeddable_csp
from . import contact_via, fragment, wants_fragment

bp = Blueprint("signup", __name__)
# The form carries its own signed token (see the module docstring).
csrf.exempt(bp)

FORM_SALT = "signup-form"
FORM_MAX_AGE = 24 * 3600
HONEYPOT = "website"


@bp.after_request
def allow_embedding(response):
    """These pages (and their errors) may be framed by the origins in EMBED_ORIGINS."""
    response.headers["Content-Security-Policy"] = embeddable_csp()
    return response


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["LINK_SIGNING_KEYS"], salt=FORM_SALT)


def offered_lists(slugs: list[str]) -> list[MailingList]:
    """The lists named, in that order; any unknown or archived one is a 404."""
    slugs = list(dict.fromkeys(s.strip() for s in slugs if s.strip()))
    if not slugs or len(slugs) > 20:
        abort(404, description=_("There is no such list."))
    found = {
        m.slug: m
        for m in db.session.execute(
            db.select(MailingList).where(
                MailingList.slug.in_(slugs), MailingList.archived_at.is_(None)
            )
        ).scalars()
    }
    if len(found) != len(slugs):
        abort(404, description=_("There is no such list."))
    return [found[s] for s in slugs]


def _origin_of(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def embedding_origin() -> str:
    """The origin of the page the form sits on: ``?origin=`` or the Referer, if allowed.

    Only an origin in EMBED_ORIGINS is believed; otherwise the form is taken to
    be this site's own hosted page.
    """
    allowed = current_app.config["EMBED_ORIGINS"]
    for candidate in (request.args.get("origin"), request.headers.get("Referer")):
        origin = _origin_of(candidate)
        if origin in allowed:
            return origin
    return current_app.config["PUBLIC_BASE_URL"]


def render_form(mailing_lists: list[MailingList], origin: str, *, status: int = 200, **extra):
    token = _serializer().dumps(
        {"l": [m.slug for m in mailing_lists], "o": origin, "n": secrets.token_hex(8)}
    )
    html = render_template(
        "public/signup/form.html",
        mailing_lists=mailing_lists,
        single=len(mailing_lists) == 1,
        wording=signup.wording(mailing_lists),
        form_token=token,
        **extra,
    )
    return html, status


@bp.get("/s/<slug>")
def one_list(slug: str):
    """The signup form for one list."""
    return render_form(offered_lists([slug]), embedding_origin())


@bp.get("/s")
def several_lists():
    """The signup form for several lists (``?lists=a,b``), each unticked."""
    return render_form(offered_lists(request.args.get("lists", "").split(",")), embedding_origin())


def form_claims() -> dict:
    """What the form token says (lists, origin), or a 400: a form we did not show."""
    try:
        claims = _serializer().loads(request.form.get("csrf_token", ""), max_age=FORM_MAX_AGE)
    except BadData:
        abort(400, description=_("This form has expired. Please reload the page and try again."))
    if not isinstance(claims, dict) or not isinstance(claims.get("l"), list):
        abort(400, description=_("This form has expired. Please reload the page and try again."))
    return claims


def ip_rate() -> str:
    return current_app.config["SIGNUP_RATE_LIMIT"]


def address_rate() -> str:
    return current_app.config["SIGNUP_ADDRESS_RATE_LIMIT"]


def address_key() -> str:
    """Rate-limit bucket of the typed address (hashed: no address in the limiter store)."""
    typed = normalise_email(request.form.get("email", ""))
    return "signup:" + hashlib.sha256(typed.encode()).hexdigest()


@bp.post("/s")
@limiter.limit(ip_rate)
@limiter.limit(address_rate, key_func=address_key)
@rate_limits.shared_counters_required
def submit():
    """Queue a confirmation for each chosen list; answer the same either way."""
    claims = form_claims()
    shown = offered_lists(claims["l"])
    origin = claims.get("o") or current_app.config["PUBLIC_BASE_URL"]
    if len(shown) == 1:
        chosen = shown
    else:
        ticked = set(request.form.getlist("lists"))
        chosen = [m for m in shown if m.slug in ticked]
    email = signup.usable_email(request.form.get("email", ""))
    problem = None
    if email is None:
        problem = _("Please enter a valid email address.")
    elif not chosen:
        problem = _("Choose at least one list.")
    if problem:
        response = render_form(
            shown,
            origin,
            status=400,
            error=problem,
            typed_email=request.form.get("email", "")[:320],
            typed_name=request.form.get("name", "")[:200],
        )
        return response
    # A bot fills every field; people never see this one. Same answer, nothing sent.
    if not request.form.get(HONEYPOT):
        now = utcnow()
        evidence = (
            f"Signed up on the form {'/s/' + shown[0].slug if len(shown) == 1 else '/s'} "
            f"on a page at {origin}, on {now:%Y-%m-%d %H:%M:%S} UTC. "
            f'The form read, in {languages.current()}: "{signup.wording(chosen)}"'
        )
        signup.sign_up(
            email,
            request.form.get("name"),
            chosen,
            contact_via(Channel.SIGNUP_FORM),
            evidence=evidence,
        )
    db.session.commit()
    if wants_fragment():
        return fragment("public/signup/_thanks.html")
    return render_template("public/signup/thanks.html")
