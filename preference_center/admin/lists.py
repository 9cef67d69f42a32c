"""Lists: create, edit (a new notice version when the promise changes), archive."""

from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func

from .. import languages, list_translations, tokens
from ..extensions import db
from ..list_notices import FLAGS, revise
from ..models import (
    AUDIENCES,
    ConsentEvent,
    ListNotice,
    MailingList,
    OutboxMessage,
    Subscription,
    utcnow,
)
from ..validation import UnsafeText, header_safe_text
from . import bp, invalid, record_action

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# What a list promises: changing any of these makes a new notice version.
PROMISE = ("name", "description", "frequency")


def find_list(slug: str) -> MailingList:
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=slug)
    ).scalar_one_or_none()
    if mailing_list is None:
        abort(404, description="There is no such list.")
    return mailing_list


def has_history(mailing_list: MailingList) -> bool:
    """True once anything happened on the list: then it can be archived, never deleted."""
    for model in (ConsentEvent, Subscription, OutboxMessage):
        found = db.session.execute(
            db.select(model.id).where(model.list_id == mailing_list.id).limit(1)
        ).first()
        if found:
            return True
    return False


def promise_from_form() -> dict[str, str]:
    return {name: (request.form.get(name) or "").strip() for name in PROMISE}


def translations_from_form(
    mailing_list: MailingList | None = None,
) -> dict[str, dict[str, str]]:
    """Fields ``name_fr``, ``description_fr``, … for every language but the default.

    A language whose fields the form does not carry keeps the list's wording in it.
    """
    kept = list_translations.wording_of(mailing_list) if mailing_list is not None else {}
    found = {}
    for tag in languages.SUPPORTED:
        if tag == languages.default():
            continue
        names = [f"{name}_{tag}" for name in list_translations.FIELDS]
        if not any(name in request.form for name in names) and tag in kept:
            found[tag] = kept[tag]
            continue
        found[tag] = {
            name: (request.form.get(f"{name}_{tag}") or "").strip()
            for name in list_translations.FIELDS
        }
    return found


def translation_problem(translations: dict[str, dict[str, str]]) -> str | None:
    for tag, fields in translations.items():
        if len(fields["name"]) > 200 or len(fields["frequency"]) > 200:
            return f"The {tag} name and frequency can have at most 200 characters."
    return None


def flags_from_form() -> dict[str, bool]:
    return {name: request.form.get(name) == "yes" for name in FLAGS}


def cadences_from_form() -> str:
    """The offered cadences, one per line, trimmed, without duplicates."""
    lines = (request.form.get("cadences") or "").splitlines()
    return "\n".join(dict.fromkeys(line.strip()[:64] for line in lines if line.strip()))


def promise_problem(promise: dict[str, str]) -> str | None:
    if not promise["name"]:
        return "A list needs a name."
    try:
        # The name goes into the Subject and List-Id of every message of the list.
        header_safe_text(promise["name"], "The name")
        header_safe_text(promise["frequency"], "The frequency")
    except UnsafeText as error:
        return str(error)
    if len(promise["name"]) > 200 or len(promise["frequency"]) > 200:
        return "The name and the frequency can have at most 200 characters."
    if not promise["description"]:
        return "Say what the list sends: subscribers see this description."
    return None


@bp.get("/lists")
def lists():
    """Every list with its subscription count; archived ones apart."""
    counts = dict(
        db.session.execute(
            db.select(Subscription.list_id, func.count()).group_by(Subscription.list_id)
        ).all()
    )
    all_lists = db.session.execute(db.select(MailingList).order_by(MailingList.name)).scalars()
    active, archived = [], []
    for mailing_list in all_lists:
        (archived if mailing_list.archived_at else active).append(mailing_list)
    return render_template(
        "admin/lists/index.html", active=active, archived=archived, counts=counts
    )


@bp.get("/lists/new")
def list_new():
    """The form for a new list."""
    return render_template("admin/lists/form.html", mailing_list=None, form={})


@bp.post("/lists")
def list_create():
    """Create a list with its first notice version."""
    form = {**promise_from_form(), "slug": request.form.get("slug", "").strip().lower()}
    form["audience"] = request.form.get("audience", "")
    form.update(flags_from_form())
    problem = promise_problem(form)
    if not SLUG.match(form["slug"]):
        problem = "The slug takes lower-case letters, digits and dashes (it appears in links)."
    elif form["audience"] not in AUDIENCES:
        problem = "Choose whether the list is personal or business."
    elif db.session.execute(db.select(MailingList.id).filter_by(slug=form["slug"])).first():
        problem = f"A list with the slug {form['slug']!r} already exists."
    if problem:
        return invalid("admin/lists/form.html", problem, mailing_list=None, form=form)
    translations = translations_from_form()
    problem = translation_problem(translations)
    if problem:
        return invalid("admin/lists/form.html", problem, mailing_list=None, form=form)
    mailing_list = MailingList(**form, notice_version=1, cadences=cadences_from_form())
    db.session.add(mailing_list)
    list_translations.set_translations(mailing_list, translations)
    db.session.flush()
    db.session.add(
        ListNotice(
            list_id=mailing_list.id,
            version=1,
            translations=list_translations.notice_json(mailing_list),
            **promise_from_form(),
            **flags_from_form(),
        )
    )
    record_action("list_create", list=mailing_list.slug, audience=mailing_list.audience)
    db.session.commit()
    flash(f"Created the list {mailing_list.name}.")
    return redirect(url_for("admin.lists"), code=303)


@bp.get("/lists/<slug>")
def list_edit(slug: str):
    """A list's promise, the form to change it, and every notice version so far."""
    mailing_list = find_list(slug)
    return render_template(
        "admin/lists/form.html",
        mailing_list=mailing_list,
        form={name: getattr(mailing_list, name) for name in (*PROMISE, *FLAGS, "cadences")}
        | {
            f"{name}_{tag}": value
            for tag, fields in list_translations.wording_of(mailing_list).items()
            for name, value in fields.items()
        },
        deletable=not has_history(mailing_list),
        signup_url=tokens.public_url("signup.one_list", slug=mailing_list.slug),
    )


@bp.post("/lists/<slug>")
def list_update(slug: str):
    """Change what a list promises (wording or legal flags): a new notice version."""
    mailing_list = find_list(slug)
    promise = promise_from_form()
    translations = translations_from_form(mailing_list)
    problem = promise_problem(promise) or translation_problem(translations)
    if problem:
        return invalid(
            "admin/lists/form.html",
            problem,
            mailing_list=mailing_list,
            form={**promise, **flags_from_form()},
            deletable=not has_history(mailing_list),
        )
    cadences = cadences_from_form()
    cadences_changed = cadences != mailing_list.cadences
    if cadences_changed:
        # Offering another cadence changes no promise: no new notice version.
        mailing_list.cadences = cadences
        record_action("list_cadences", list=slug, cadences=mailing_list.cadence_choices)
    changed = revise(mailing_list, translations, **promise, **flags_from_form())
    if not changed and cadences_changed:
        db.session.commit()
        flash(f"Saved the cadences of {mailing_list.name}.")
        return redirect(url_for("admin.list_edit", slug=slug), code=303)
    if not changed:
        flash("Nothing changed.")
        return redirect(url_for("admin.list_edit", slug=slug), code=303)
    record_action(
        "list_edit", list=slug, changed=changed, notice_version=mailing_list.notice_version
    )
    db.session.commit()
    flash(f"Saved {mailing_list.name} as notice version {mailing_list.notice_version}.")
    return redirect(url_for("admin.list_edit", slug=slug), code=303)


@bp.post("/lists/<slug>/archive")
def list_archive(slug: str):
    """Stop offering a list; its subscriptions and history stay."""
    mailing_list = find_list(slug)
    if mailing_list.archived_at is None:
        mailing_list.archived_at = utcnow()
        record_action("list_archive", list=slug)
        db.session.commit()
    flash(f"Archived {mailing_list.name}: it is no longer offered on the preference page.")
    return redirect(url_for("admin.lists"), code=303)


@bp.post("/lists/<slug>/restore")
def list_restore(slug: str):
    """Offer an archived list again."""
    mailing_list = find_list(slug)
    if mailing_list.archived_at is not None:
        mailing_list.archived_at = None
        record_action("list_restore", list=slug)
        db.session.commit()
    flash(f"Restored {mailing_list.name}.")
    return redirect(url_for("admin.lists"), code=303)


@bp.post("/lists/<slug>/delete")
def list_delete(slug: str):
    """Delete a list nobody was ever on; a list with history can only be archived."""
    mailing_list = find_list(slug)
    if has_history(mailing_list):
        abort(409, description="This list has consent history: archive it instead.")
    db.session.execute(db.delete(ListNotice).where(ListNotice.list_id == mailing_list.id))
    db.session.delete(mailing_list)
    record_action("list_delete", list=slug)
    db.session.commit()
    flash(f"Deleted {mailing_list.name}.")
    return redirect(url_for("admin.lists"), code=303)
