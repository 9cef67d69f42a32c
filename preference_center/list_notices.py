"""What a list promises, versioned: a change of wording or of legal flags is a new notice.

Consent events name the notice version they were given under, so a list's
promise is never edited in place: ``revise`` writes the next version.
"""

from __future__ import annotations

from typing import Any

from . import list_translations
from .extensions import db
from .models import ListNotice, MailingList

# What a list promises: its wording and the flags the consent rules read.
WORDING = ("name", "description", "frequency")
FLAGS = ("role_relevant", "similar_products")
PROMISE = (*WORDING, *FLAGS)


def revise(
    mailing_list: MailingList,
    translations: dict[str, dict[str, str]] | None = None,
    **changes: Any,
) -> list[str]:
    """Apply ``changes`` (any of ``PROMISE``) and, when given, the wording in other
    languages (``list_translations.set_translations``); returns the names that changed
    (``"translations"`` among them when another language's wording did).

    When anything changed the list gets the next notice version, recorded as
    a ``ListNotice`` that covers every language's wording; the caller commits
    and records who did it.
    """
    unknown = set(changes) - set(PROMISE)
    if unknown:
        raise ValueError(f"Not part of a list's promise: {', '.join(sorted(unknown))}")
    changed = [
        name
        for name in PROMISE
        if name in changes
        and changes[name] is not None
        and getattr(mailing_list, name) != changes[name]
    ]
    for name in changed:
        setattr(mailing_list, name, changes[name])
    if translations is not None and list_translations.set_translations(mailing_list, translations):
        changed.append("translations")
    if not changed:
        return []
    mailing_list.notice_version += 1
    db.session.add(
        ListNotice(
            list_id=mailing_list.id,
            version=mailing_list.notice_version,
            translations=list_translations.notice_json(mailing_list),
            **{name: getattr(mailing_list, name) for name in PROMISE},
        )
    )
    return changed
