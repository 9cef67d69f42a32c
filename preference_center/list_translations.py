"""A list's wording in more languages, and the notice version that covers all of them."""

from __future__ import annotations

import json

from . import languages
from .models import ListTranslation, MailingList

FIELDS = ("name", "description", "frequency")


def wording_of(mailing_list: MailingList) -> dict[str, dict[str, str]]:
    """{tag: {name, description, frequency}} for every language the list is written in."""
    return {
        t.language: {name: getattr(t, name) for name in FIELDS}
        for t in mailing_list.translations
        if any(getattr(t, name) for name in FIELDS)
    }


def notice_json(mailing_list: MailingList) -> str:
    """The translations a notice version records (JSON, keys sorted)."""
    return json.dumps(wording_of(mailing_list), sort_keys=True, ensure_ascii=False)


def set_translations(mailing_list: MailingList, wanted: dict[str, dict[str, str]]) -> bool:
    """Make the list's translations ``wanted`` (empty ones removed); True if any changed.

    The caller makes a new notice version when this returns True, as for a change
    of the list's own wording.
    """
    wanted = {
        tag: {name: (fields.get(name) or "").strip() for name in FIELDS}
        for tag, fields in wanted.items()
        if tag in languages.SUPPORTED
    }
    wanted = {tag: fields for tag, fields in wanted.items() if any(fields.values())}
    if wanted == wording_of(mailing_list):
        return False
    existing = {t.language: t for t in mailing_list.translations}
    for tag, translation in existing.items():
        if tag not in wanted:
            mailing_list.translations.remove(translation)
    for tag, fields in wanted.items():
        translation = existing.get(tag)
        if translation is None:
            translation = ListTranslation(language=tag)
            mailing_list.translations.append(translation)
        for name, value in fields.items():
            setattr(translation, name, value)
    return True
