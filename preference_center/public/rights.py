"""Blueprint: the contact's data rights — download my data, delete my data.

Both start from the preference page and work only through a short-lived link
emailed to the address on file, so a forwarded manage link cannot take
someone's data or erase them. Opening an emailed link changes nothing:
the download is a read, and only the POST from the erase page erases.
"""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, render_template
from flask_babel import force_locale, lazy_gettext, ngettext
from flask_babel import gettext as _

from .. import data_export, erasure, languages, mailer, tokens, wording
from ..consent import Via
from ..extensions import db
from ..models import Contact, utcnow
from . import back_to_page, contact_from, fragment, mail_sending_limit, wants_fragment

bp = Blueprint("rights", __name__)

ANCHOR = "your-data"


def _link(endpoint: str, purpose: str, contact: Contact) -> str:
    return tokens.public_url(endpoint, token=tokens.sign(purpose, contact))


def _hours(setting: str) -> int:
    return round(current_app.config[setting] * 24)


def _answer(token: str, contact: Contact, text: str, status: int = 200):
    """The partial for htmx, else the page again (303) with what happened."""
    if not wants_fragment():
        if status != 200:
            return render_template(
                "public/message.html", title=_("That didn't work"), text=text
            ), status
        return back_to_page(token, text, ANCHOR)
    context = {"token": token, "masked_email": wording.mask_email(contact.primary_email)}
    return fragment("public/preferences/_your_data.html", data_message=text, **context), status


def _send(token: str, kind: str, subject: str, endpoint: str, purpose: str, setting: str):
    contact = contact_from(token)
    email = contact.primary_email
    if email is None:
        text = _("We have no address on file to send the link to.")
        return _answer(token, contact, text, 409)
    mailer.queue(
        kind,
        email,
        subject,
        kind,
        contact=contact,
        link=_link(endpoint, purpose, contact),
        hours=_hours(setting),
    )
    db.session.commit()
    text = _("We sent a link to %(address)s.", address=wording.mask_email(email)) + " "
    text += ngettext("It works for %(num)s hour.", "It works for %(num)s hours.", _hours(setting))
    return _answer(token, contact, text)


@bp.post("/p/<token>/your-data/export")
@mail_sending_limit
def request_export(token: str):
    """Email a short-lived download link to the address on file."""
    return _send(
        token,
        "data_export",
        lazy_gettext("Your data: download link"),
        "rights.download_page",
        tokens.DATA_EXPORT,
        "DATA_EXPORT_LINK_MAX_AGE_DAYS",
    )


@bp.post("/p/<token>/your-data/erase")
@mail_sending_limit
def request_erasure(token: str):
    """Email a link that asks, once more, whether to erase everything."""
    return _send(
        token,
        "erase_confirmation",
        lazy_gettext("Please confirm: delete your data"),
        "rights.erase_page",
        tokens.ERASE,
        "ERASE_LINK_MAX_AGE_DAYS",
    )


@bp.get("/download/<token>")
def download_page(token: str):
    """A page with the download button; opening the emailed link changes nothing."""
    contact = tokens.verify(tokens.DATA_EXPORT, token).contact
    languages.speak_to(contact)
    return render_template(
        "public/rights/download.html",
        token=token,
        masked_email=wording.mask_email(contact.primary_email),
    )


@bp.get("/download/<token>/data.json")
def download(token: str):
    """Everything held about the contact, as one JSON document."""
    contact = tokens.verify(tokens.DATA_EXPORT, token).contact
    # The human-readable fields of the file are in the contact's language.
    with force_locale(languages.locale_code(languages.of_contact(contact))):
        document = data_export.to_json(contact)
    response = make_response(document)
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="my-data-{utcnow():%Y-%m-%d}.json"'
    )
    return response


@bp.get("/erase/<token>")
def erase_page(token: str):
    """What erasure removes and keeps, and one button; opening the link erases nothing."""
    contact = tokens.verify(tokens.ERASE, token).contact
    languages.speak_to(contact)
    return render_template(
        "public/rights/erase.html",
        token=token,
        masked_email=wording.mask_email(contact.primary_email),
        manage_url=tokens.manage_url(contact),
    )


@bp.post("/erase/<token>")
def erase(token: str):
    """Erase the contact named by the link."""
    contact = tokens.verify(tokens.ERASE, token).contact
    languages.speak_to(contact)
    # The erase event and the withdrawals are minimised anyway: no IP or user agent.
    erasure.erase(contact, Via(channel="preference_page", actor="contact"))
    db.session.commit()
    return render_template(
        "public/message.html",
        title=_("Your data is deleted"),
        text=_(
            "We removed your name and addresses and every IP address and note in your "
            "consent history, and took you off every list. We keep only a one-way code of "
            "each address so %(organisation)s can never add it again, and the bare record "
            "that you withdrew and asked to be forgotten.",
            organisation=current_app.config["ORGANISATION_NAME"],
        ),
    )
