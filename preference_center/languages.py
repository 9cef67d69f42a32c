"""The languages we speak to contacts in, and which one a response uses.

Tags are BCP 47 as senders write them (``fr``, ``pt-BR``); Babel's locale codes
(``pt_BR``) stay inside this module. The order a page's language is chosen in:
``?lang=xx`` (that response only), the contact's stored language, the browser's
``Accept-Language``, then ``DEFAULT_LANGUAGE``. The admin area and the API stay
in English.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from babel import Locale
from babel.lists import format_list
from flask import current_app, g, has_request_context, request
from flask_babel import Babel, Domain, force_locale, format_date, get_locale, refresh

# The shipped catalogs; English is the source language.
SUPPORTED = ("en", "fr", "de", "es", "pt-BR", "ar")
RIGHT_TO_LEFT = frozenset({"ar"})
# A language without its region means ours: ``pt`` and ``pt-PT`` are served pt-BR.
BY_PRIMARY = {tag.split("-")[0].lower(): tag for tag in SUPPORTED}
# Longer than any tag worth reading; Accept-Language beyond this is ignored.
MAX_HEADER = 1000
_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
# English keeps its "15 Feb 2011"; the others use their own medium date.
_DATE_PATTERNS = {"en": "d MMM y"}

babel = Babel()


def normalise(value: object) -> str | None:
    """The supported tag a BCP 47 value names (``fr-CA`` → ``fr``), or None."""
    if not isinstance(value, str) or len(value) > 35 or not _TAG.fullmatch(value.strip()):
        return None
    parts = value.strip().replace("_", "-").split("-")
    exact = "-".join([parts[0].lower(), *(p.upper() for p in parts[1:2])])
    if exact in SUPPORTED:
        return exact
    return BY_PRIMARY.get(parts[0].lower())


def locale_code(tag: str) -> str:
    """Babel's code for a supported tag: ``pt-BR`` → ``pt_BR``."""
    return tag.replace("-", "_")


def tag_of(locale: Locale | None) -> str:
    """The BCP 47 tag of a Babel locale: ``pt_BR`` → ``pt-BR``."""
    if locale is None:
        return default()
    return "-".join(part for part in (locale.language, locale.territory) if part)


def default() -> str:
    return normalise(current_app.config.get("DEFAULT_LANGUAGE")) or "en"


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an Accept-Language header, by weight."""
    if not header or len(header) > MAX_HEADER:
        return None
    weighted = []
    for position, item in enumerate(header.split(",")[:50]):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        params = params.strip()
        if params:
            name, _, number = params.partition("=")
            try:
                weight = float(number) if name.strip() == "q" else 1.0
            except ValueError:
                continue
        if not 0 < weight <= 1:
            continue
        found = normalise(tag.strip())
        if found:
            weighted.append((-weight, position, found))
    return min(weighted)[2] if weighted else None


def current() -> str:
    """The tag of the language this response (or forced block) speaks."""
    return tag_of(get_locale())


def select() -> str:
    """Flask-Babel's locale selector: the negotiation order of this module."""
    if not has_request_context():
        return locale_code(default())
    if request.blueprint in ("admin", "api") or request.path.startswith(("/admin", "/api")):
        return "en"
    tag = (
        normalise(request.args.get("lang"))
        or normalise(g.get("contact_language"))
        or from_accept_language(request.headers.get("Accept-Language"))
        or default()
    )
    return locale_code(tag)


def speak_to(contact) -> None:
    """This response is for ``contact``: use their stored language (``?lang`` still wins)."""
    g.contact_language = contact.language
    refresh()


def of_contact(contact) -> str:
    """The language mail to ``contact`` goes in: theirs, else this page's, else the default."""
    stored = normalise(getattr(contact, "language", None))
    if stored:
        return stored
    if has_request_context() and not request.path.startswith(("/admin", "/api")):
        return current()
    return default()


def speaking(tag: str):
    """A block in which gettext, dates and list wording use ``tag`` (a supported tag)."""
    return force_locale(locale_code(normalise(tag) or default()))


def direction(tag: str | None = None) -> str:
    return "rtl" if (tag or current()).split("-")[0] in RIGHT_TO_LEFT else "ltr"


def display_name(tag: str, in_tag: str | None = None, *, capitalised: bool = True) -> str:
    """A language's name, in its own language by default (Français), or in ``in_tag``'s.

    Uncapitalised, it fits inside a sentence as that language writes it (en français).
    """
    locale = Locale.parse(locale_code(tag))
    name = locale.get_display_name(Locale.parse(locale_code(in_tag or tag))) or tag
    return name[:1].upper() + name[1:] if capitalised else name


def choices() -> list[tuple[str, str]]:
    """(tag, name in its own language) for every shipped language."""
    return [(tag, display_name(tag)) for tag in SUPPORTED]


def day(moment: date | datetime | None) -> str:
    """A date as the current language writes it: 15 Feb 2011, 15 févr. 2011."""
    tag = current()
    return format_date(moment, _DATE_PATTERNS.get(tag, "medium"))


def join(items: list[str]) -> str:
    """ "A", "B" and "C" as the current language lists things (Babel's list patterns)."""
    return format_list(items, locale=get_locale()) if items else ""


def list_text(mailing_list, field: str) -> str:
    """A list's name, description or frequency in the current language, else its own."""
    tag = current()
    for translation in getattr(mailing_list, "translations", ()):
        if translation.language == tag and getattr(translation, field):
            return getattr(translation, field)
    return getattr(mailing_list, field) or ""


def list_name(mailing_list) -> str:
    return list_text(mailing_list, "name")


class _Domain(Domain):
    """Flask-Babel's message domain, finding the catalog in one step.

    ``Domain.get_translations`` looks up the request's Babel state three times per
    string, and a page translates a few hundred. The catalog is kept beside the
    locale object it was found for and used while that very object is in force:
    ``force_locale`` and ``refresh`` (``speak_to``) replace or drop the locale, so
    the next string looks the catalog up again.
    """

    def get_translations(self):
        state = g.get("_flask_babel") if g else None
        kept = getattr(state, "pc_translations", None)
        if kept is not None and kept[0] is getattr(state, "babel_locale", None):
            return kept[1]
        found = super().get_translations()
        state = g.get("_flask_babel") if g else None
        locale = getattr(state, "babel_locale", None)
        if locale is not None:
            state.pc_translations = (locale, found)
        return found


_domain = _Domain()
# Flask-Babel's gettext and ours go through this one domain (its default, "messages").
babel.domain_instance = _domain


def init_app(app) -> None:
    """Bind Flask-Babel (catalogs in preference_center/translations) and the template helpers."""
    babel.init_app(app, locale_selector=select)
    # Flask-Babel's own template callables, with the catalog found in one step.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _domain.get_translations().ugettext(s),
        ngettext=lambda s, p, n: _domain.get_translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _domain.get_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _domain.get_translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.globals.update(
        html_lang=current,
        html_dir=direction,
        language_choices=choices,
        list_languages=lambda: [tag for tag in SUPPORTED if tag != default()],
        list_name=list_name,
        list_text=list_text,
        format_day=day,
        languages_join=join,
    )
    app.jinja_env.filters["list_name_filter"] = list_name
