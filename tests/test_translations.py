"""The catalogs: every contact-facing string of the code, translated in every shipped language."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from preference_center import languages

ROOT = Path(__file__).resolve().parent.parent
CATALOGS = ROOT / "preference_center" / "translations"
SHIPPED = [languages.locale_code(tag) for tag in languages.SUPPORTED if tag != "en"]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set:
    """The messages in the code now, extracted exactly as `make extract-messages` does."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "lazy_gettext", "--no-location", "-o", str(pot), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as handle:
        return {message.id for message in read_po(handle) if message.id}


def catalog(locale: str):
    with (CATALOGS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def test_the_code_has_contact_facing_strings(extracted):
    assert len(extracted) > 200
    assert "Your email preferences" in extracted
    assert ("It works for %(num)s hour.", "It works for %(num)s hours.") in extracted


@pytest.mark.parametrize("locale", SHIPPED)
def test_every_message_in_the_code_is_in_the_catalog(extracted, locale):
    missing = extracted - {message.id for message in catalog(locale) if message.id}
    assert not missing, (
        f"{locale} lacks {sorted(map(str, missing))[:10]}: run make extract-messages"
    )


@pytest.mark.parametrize("locale", SHIPPED)
def test_the_catalog_has_nothing_the_code_no_longer_says(extracted, locale):
    stale = {message.id for message in catalog(locale) if message.id} - extracted
    assert not stale, f"{locale} still has {sorted(map(str, stale))[:10]}"


@pytest.mark.parametrize("locale", SHIPPED)
def test_every_message_is_translated_and_not_fuzzy(locale):
    problems = []
    for message in catalog(locale):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            problems.append(("untranslated", message.id))
        if message.fuzzy:
            problems.append(("fuzzy", message.id))
    assert problems == []


@pytest.mark.parametrize("locale", SHIPPED)
def test_placeholders_and_plural_forms_check_out(locale):
    """Babel's own checkers: the same %(name)s placeholders, the language's number of forms."""
    problems = [
        (message.id, [str(e) for e in errors]) for message, errors in catalog(locale).check()
    ]
    assert problems == []
