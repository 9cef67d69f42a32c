"""The contact's language: negotiation, the page in each language, control, mail, API, import."""

from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta

import admin_helpers
import pytest
from helpers import csrf_token, events_of

from preference_center import (
    addresses,
    consent,
    invitations,
    languages,
    ledger,
    links,
    list_translations,
    mailer,
    receipts,
    reconfirmations,
    tokens,
)
from preference_center.consent import Provenance, Via
from preference_center.demo import ensure_list
from preference_center.extensions import db
from preference_center.importers import ImportOptions, import_contacts
from preference_center.models import Contact, MailingList, OutboxMessage, utcnow

OTHERS = [tag for tag in languages.SUPPORTED if tag != "en"]
# Values the test gives the page (names, addresses): data, not wording.
DATA = [
    "Dana Reyes",
    "Harbor Financial",
    "p***@example.com",
    "w***@work.example",
    "Pat Doe",
    "Met at the Toronto conference",
    "ticked the box",
]
WORDING = {
    "fr": ("Regards sur les marchés", "L’avis de la maison sur les marchés.", "Mensuel"),
    "de": ("Marktperspektiven", "Die Sicht des Hauses auf die Märkte.", "Monatlich"),
    "es": ("Perspectivas del mercado", "La visión de la casa sobre los mercados.", "Mensual"),
    "pt-BR": ("Panorama do mercado", "A visão da casa sobre os mercados.", "Mensal"),
    "ar": ("رؤى السوق", "رؤية الدار للأسواق.", "شهريًا"),
}
DIGEST = {
    "fr": ("Condensé", "Le meilleur de la semaine.", "Hebdomadaire"),
    "de": ("Kompakt", "Das Beste der Woche.", "Wöchentlich"),
    "es": ("Resumen", "Lo mejor de la semana.", "Semanal"),
    "pt-BR": ("Resumo", "O melhor da semana.", "Semanal"),
    "ar": ("الموجز", "أفضل ما في الأسبوع.", "أسبوعيًا"),
}
OFFERS = {
    "fr": ("Offres clients", "Nos offres pour nos clients.", "Trimestriel"),
    "de": ("Kundenangebote", "Unsere Angebote für Kunden.", "Vierteljährlich"),
    "es": ("Ofertas para clientes", "Nuestras ofertas para clientes.", "Trimestral"),
    "pt-BR": ("Ofertas para clientes", "Nossas ofertas para clientes.", "Trimestral"),
    "ar": ("عروض العملاء", "عروضنا لعملائنا.", "كل ثلاثة أشهر"),
}
NOTES = {
    "fr": ("Carnet de Dana", "Des nouvelles de Dana.", "Parfois"),
    "de": ("Danas Notizen", "Neues von Dana.", "Manchmal"),
    "es": ("Notas de Dana", "Noticias de Dana.", "A veces"),
    "pt-BR": ("Notas da Dana", "Notícias da Dana.", "Às vezes"),
    "ar": ("ملاحظات دانا", "أخبار من دانا.", "أحيانًا"),
}


def translate(mailing_list, wording: dict) -> None:
    list_translations.set_translations(
        mailing_list,
        {
            tag: dict(zip(list_translations.FIELDS, texts, strict=True))
            for tag, texts in wording.items()
        },
    )
    db.session.commit()


def organisation_data(app) -> list[str]:
    """Who sends (the identification footer): the organisation's data, not wording."""
    config = app.config
    values = [config["ORGANISATION_ADDRESS"] or "", config["ORGANISATION_CONTACT"] or ""]
    return [part.strip() for value in values for part in value.split("·") if part.strip()]


def text_segments(page: str) -> list[str]:
    """The visible text between tags, unescaped, whitespace collapsed."""
    body = re.sub(r"https?://\S+", " ", page)  # links carry tokens, not words
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"<option\b.*?</option>", " ", body, flags=re.S)  # language names, by design
    parts = re.split(r"<[^>]+>", body)
    return [" ".join(html_lib.unescape(part).split()) for part in parts if part.strip()]


def english_fragments(page: str, data: list[str]) -> set[str]:
    """Runs of at least two English words in the page, with the data values cut out."""
    fragments = set()
    for segment in text_segments(page):
        for value in data:
            segment = segment.replace(value, "|")
        for piece in re.split(r"[|:;.,()—?!\"]", segment):
            words = re.findall(r"[A-Za-z']+", piece)
            if len(words) >= 2:
                fragments.add(" ".join(piece.split()))
    return fragments


@pytest.fixture
def pat(make):
    """A contact with every section of the page: lists with why-sentences, an invitation,
    a pending business address, a paused list with a cadence choice, history."""
    insights = make.list("insights", name="Market Insights", description="Our view of markets.")
    notes = make.list("notes", audience="personal", name="Dana's notes", description="News.")
    digest = make.list("digest", name="Digest", description="The week's best.")
    digest.cadences = "1/7\n1/30"  # the admin's own words for its cadences: data
    translate(insights, WORDING)
    translate(notes, NOTES)
    translate(digest, DIGEST)
    contact = make.contact("pat@example.com", "Pat Doe")
    make.subscription(contact, notes, basis="personal", evidence="Met at the Toronto conference")
    paused = make.subscription(contact, digest)
    consent.pause(paused, 30, Via("preference_page", "contact"))
    make.subscription(
        contact, insights, state="invited", basis="none", source="networking import", evidence=""
    )
    addresses.add_business_address(contact, "work@work.example", Via("preference_page", "contact"))
    db.session.commit()
    return contact, insights, notes


# --- negotiation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-CA,fr;q=0.9,en;q=0.8", "fr"),
        ("pt-BR", "pt-BR"),
        ("pt", "pt-BR"),
        ("pt-PT;q=1", "pt-BR"),
        ("en;q=0.5, de;q=0.9", "de"),
        ("es-419", "es"),
        ("AR-eg", "ar"),
        ("zh-CN, ja", None),
        ("fr;q=0, de;q=0.1", "de"),
        ("fr;q=abc, es", "es"),
        ("*", None),
        (";;;,,,=", None),
        ("x" * 5000, None),
        ("", None),
    ],
)
def test_accept_language_weights_regions_and_nonsense(app, header, expected):
    assert languages.from_accept_language(header) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("fr", "fr"), ("FR", "fr"), ("pt-br", "pt-BR"), ("pt_BR", "pt-BR"), ("fr-CA", "fr"),
     ("xx", None), ("", None), ("f", None), ("fr-" + "a" * 40, None), (None, None), (3, None)],
)  # fmt: skip
def test_normalise_reads_bcp47(value, expected):
    assert languages.normalise(value) == expected


def lang_of(response) -> tuple[str, str]:
    match = re.search(r'<html lang="([^"]+)" dir="([^"]+)"', response.text)
    assert match, response.text[:200]
    return match.group(1), match.group(2)


def test_order_lang_then_stored_then_accept_language_then_default(app, client, pat, manage_path):
    contact, _, _ = pat
    path = manage_path(contact)
    assert lang_of(client.get(path)) == ("en", "ltr")
    assert lang_of(client.get(path, headers={"Accept-Language": "de-AT"})) == ("de", "ltr")
    consent.set_language(contact, "fr", Via("admin", "test"))
    db.session.commit()
    assert lang_of(client.get(path, headers={"Accept-Language": "de"})) == ("fr", "ltr")
    assert lang_of(client.get(path + "?lang=ar", headers={"Accept-Language": "de"})) == (
        "ar",
        "rtl",
    )
    # ?lang is for that response only: nothing stored, nothing logged.
    db.session.refresh(contact)
    assert contact.language == "fr"
    assert events_of(contact)[-1].action == "language_set"
    app.config["DEFAULT_LANGUAGE"] = "es"
    assert lang_of(client.get("/p")) == ("es", "ltr")


@pytest.mark.parametrize(
    "headers",
    [{"Accept-Language": "x" * 8000}, {"Accept-Language": "\u00e9\u00e8;q=\u00e9"},
     {"Accept-Language": "fr;q=1e309"}, {"Accept-Language": ",,;q="}],
)  # fmt: skip
@pytest.mark.parametrize("query", ["", "?lang=", "?lang=xx", "?lang=" + "a" * 3000, "?lang=%00"])
def test_no_header_or_parameter_makes_a_500(client, pat, manage_path, headers, query):
    contact, _, _ = pat
    for path in (manage_path(contact), "/p", "/p/not-a-token"):
        response = client.get(path + query, headers=headers)
        assert response.status_code in (200, 400, 404)  # a NUL is refused whole
        assert lang_of(response)[0] in languages.SUPPORTED


def test_every_public_page_says_its_language(client, pat, manage_path):
    contact, insights, _ = pat
    paths = [
        manage_path(contact),
        "/p",
        "/p/not-a-token",
        tokens.unsubscribe_url(contact, "notes").split("example.test", 1)[1],
        "/download/" + tokens.sign(tokens.DATA_EXPORT, contact),
        "/erase/" + tokens.sign(tokens.ERASE, contact),
    ]
    for path in paths:
        response = client.get(path + ("&" if "?" in path else "?") + "lang=ar")
        assert lang_of(response) == ("ar", "rtl"), path


# --- the page in every language -------------------------------------------------


@pytest.mark.parametrize("tag", OTHERS)
def test_the_page_leaves_no_english_phrase(app, client, pat, manage_path, tag):
    contact, _, _ = pat
    path = manage_path(contact)
    english = client.get(path + "?lang=en").text
    # Every section is there in English first, so the comparison covers them.
    for section in (
        "Where business messages go",
        "Your history",
        "Your data",
        "Invited",
        "added you on",
        "Paused until",
        "How often: Digest",
        'class="identification"',
    ):
        assert section in html_lib.unescape(english), section
    translated = client.get(path + "?lang=" + tag).text
    assert lang_of(client.get(path + "?lang=" + tag))[0] == tag
    text = " ".join(text_segments(translated))
    data = [*DATA, *organisation_data(app)]
    left = sorted(f for f in english_fragments(english, data) if f in text)
    assert left == [], f"English left on the {tag} page: {left[:8]}"
    assert 'class="identification"' in translated and "Paused until" not in translated
    # The list's own wording for that language, and a date the way it writes dates.
    assert WORDING[tag][0] in text and NOTES[tag][0] in text
    assert languages.normalise(tag)
    with languages.speaking(tag):
        assert languages.day(utcnow()) in text


def test_a_list_without_a_translation_falls_back_to_its_own_words(client, make, manage_path):
    plain = make.list("plain", name="Plain List", description="Only in English.")
    contact = make.contact("lee@example.com")
    make.subscription(contact, plain)
    page = client.get(manage_path(contact) + "?lang=de").text
    assert "Plain List" in page and "Only in English." in page and "Plain List erhalten" in page


# --- the language control ------------------------------------------------------


def test_the_control_stores_logs_and_answers_303_without_javascript(client, pat, manage_path):
    contact, _, _ = pat
    path = manage_path(contact)
    token = csrf_token(client.get(path).text)
    response = client.post(f"{path}/language", data={"language": "pt-BR", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].endswith("#language")
    page = client.get(response.headers["Location"])
    assert lang_of(page) == ("pt-BR", "ltr")
    assert "Salvo: páginas e e-mails agora estão em português" in page.text
    db.session.refresh(contact)
    assert contact.language == "pt-BR"
    event = events_of(contact)[-1]
    assert (event.action, event.to_state, event.channel, event.actor) == (
        "language_set", "pt-BR", "preference_page", "contact"
    )  # fmt: skip
    assert event.language == "en"  # the page the contact chose on was in English
    assert ledger.verify_all().problems == []


def test_the_control_with_htmx_answers_the_page_in_the_new_language(client, pat, manage_path):
    contact, _, _ = pat
    path = manage_path(contact)
    token = csrf_token(client.get(path).text)
    response = client.post(
        f"{path}/language",
        data={"language": "ar", "csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert '<div id="page" lang="ar" dir="rtl">' in response.text
    assert "تم الحفظ" in response.text


@pytest.mark.parametrize("value", ["", "xx", "en-" + "x" * 100])
def test_the_control_refuses_what_it_does_not_offer(client, pat, manage_path, value):
    contact, _, _ = pat
    path = manage_path(contact)
    token = csrf_token(client.get(path).text)
    before = len(events_of(contact))
    response = client.post(f"{path}/language", data={"language": value, "csrf_token": token})
    assert response.status_code == 400
    assert len(events_of(contact)) == before


def test_the_control_needs_its_csrf_token(client, pat, manage_path):
    contact, _, _ = pat
    response = client.post(f"{manage_path(contact)}/language", data={"language": "fr"})
    assert response.status_code == 400
    db.session.refresh(contact)
    assert contact.language is None


def test_events_record_the_language_the_contact_saw_and_the_log_verifies(
    client, pat, manage_path, runner
):
    contact, _, notes = pat
    path = manage_path(contact) + "?lang=es"
    token = csrf_token(client.get(path).text)
    client.post(
        f"{manage_path(contact)}/lists/notes?lang=es", data={"csrf_token": token}
    )  # withdraw
    event = events_of(contact)[-1]
    assert (event.action, event.language) == ("withdraw", "es")
    assert [e.language for e in events_of(contact)][:2] == [None, None]  # admin-placed: none
    result = runner.invoke(args=["verify-log"])
    assert result.exit_code == 0, result.output


# --- API and import ----------------------------------------------------------------


def test_the_api_stores_language_and_the_consent_answer_carries_it(client, make, api_auth):
    make.list("insights")
    auth = api_auth()
    created = client.post(
        "/api/v1/contacts",
        json={
            "email": "ana@example.com",
            "language": "pt-br",
            "subscriptions": [
                {"list": "insights", "state": "subscribed", "source": "form",
                 "added_by": "Dana", "basis": "express", "evidence": "ticked"}
            ],
        },
        headers=auth,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json["contact"]["language"] == "pt-BR"
    answer = client.get("/api/v1/consent?email=ana@example.com&list=insights", headers=auth)
    assert answer.json["allowed"] is True and answer.json["language"] == "pt-BR"
    refused = client.post(
        "/api/v1/contacts", json={"email": "bo@example.com", "language": "klingon"}, headers=auth
    )
    assert refused.status_code == 422 and "language" in refused.json["error"]["message"]
    unknown = client.get("/api/v1/consent?email=nobody@example.com&list=insights", headers=auth)
    assert unknown.json["language"] is None


def test_the_import_reads_the_language_column(app, make):
    make.list("insights")
    data = (
        b"email,name,language\n"
        b"fr@example.com,Fleur,fr-CA\n"
        b"br@example.com,Bia,pt-BR\n"
        b"none@example.com,Nils,\n"
    )
    options = ImportOptions(list_slug="insights", source="fair", basis="express", added_by="Dana")
    summary = import_contacts(data, options)
    db.session.commit()
    assert summary.created == 3
    found = {c.primary_email: c.language for c in db.session.execute(db.select(Contact)).scalars()}
    assert found == {"fr@example.com": "fr", "br@example.com": "pt-BR", "none@example.com": None}


def test_the_import_rejects_a_language_we_do_not_speak(app, make):
    make.list("insights")
    options = ImportOptions(
        list_slug="insights", source="fair", basis="express", added_by="Dana", skip_invalid=True
    )
    summary = import_contacts(b"email,language\nx@example.com,tlh\n", options)
    assert [r.reason for r in summary.rejected] == [
        "language 'tlh' is not one we speak (en, fr, de, es, pt-BR, ar)"
    ]


def test_the_admin_sees_and_changes_the_language(client, pat):
    contact, _, _ = pat
    admin_helpers.create()
    admin_helpers.sign_in(client, "ada@example.com")
    page = client.get(f"/admin/contacts/{contact.public_id}").text
    assert "not chosen (default en)" in page
    response = client.post(
        f"/admin/contacts/{contact.public_id}/language",
        data={"language": "de", "csrf_token": csrf_token(page)},
    )
    assert response.status_code == 303
    db.session.refresh(contact)
    assert contact.language == "de"
    assert events_of(contact)[-1].actor.startswith("admin:")


# --- mail in every language --------------------------------------------------------


def queue_every_kind(client, contact, insights, manage_path) -> None:
    """One message of each kind the contact can get, queued by the code that sends it."""
    via = Via("preference_page", "contact")
    invitations.queue_invitation(consent.find_subscription(contact, insights))
    links.queue_link_mail(contact)
    address = contact.business_address
    addresses.approve_business_address(contact, addresses.address_fingerprint(address.email), via)
    db.session.commit()
    path = manage_path(contact)
    token = csrf_token(client.get(path).text)
    client.post(f"{path}/your-data/export", data={"csrf_token": token})
    client.post(f"{path}/your-data/erase", data={"csrf_token": token})
    # Saying yes on the page: a confirmation now, and a receipt once the window closes.
    client.post(f"{path}/lists/insights", data={"subscribed": "yes", "csrf_token": token})
    receipts.queue_due(now=utcnow() + timedelta(days=1))
    db.session.commit()
    # "Keep receiving?" before implied consent (a purchase) ends.
    offers = ensure_list(
        slug="offers",
        audience="personal",
        name="Customer offers",
        description="Our offers for customers.",
        frequency="Quarterly",
    )
    translate(offers, OFFERS)
    bought = Provenance(
        source="till receipt",
        added_by="Dana Reyes",
        basis="implied_purchase",
        evidence="Order 1234",
        basis_date=utcnow().date() - timedelta(days=700),
    )
    implied, _ = consent.place(contact, offers, "subscribed", bought, Via("admin", "test"))
    reconfirmations.queue_reconfirmation(implied)
    db.session.commit()


KINDS = {
    "invitation", "fresh_link", "approve_address", "verify_address", "data_export",
    "erase_confirmation", "confirmation", "receipt", "reconfirmation",
}  # fmt: skip


def delivered(smtp) -> list:
    sent, postponed = mailer.deliver_due(limit=100)
    assert postponed == 0
    return list(smtp.messages)


@pytest.fixture
def english_mail(client, pat, manage_path, smtp):
    """What each kind of mail says in English, for the comparison."""
    contact, insights, _ = pat
    queue_every_kind(client, contact, insights, manage_path)
    messages = delivered(smtp)
    kinds = [row.kind for row in db.session.execute(db.select(OutboxMessage)).scalars()]
    assert set(kinds) == KINDS
    return {kind: message for kind, message in zip(kinds, messages, strict=True)}


@pytest.mark.parametrize("tag", OTHERS)
def test_every_kind_of_mail_goes_in_the_contacts_language(
    app, client, make, manage_path, smtp, english_mail, tag
):
    insights = db.session.execute(db.select(MailingList).filter_by(slug="insights")).scalar_one()
    contact = make.contact(f"{tag.lower()}@example.com", "Pat Doe")
    make.subscription(
        contact, insights, state="invited", basis="none", source="networking import", evidence=""
    )
    consent.set_language(contact, tag, Via("admin", "test"))
    db.session.commit()
    smtp.messages.clear()
    first = db.session.execute(db.select(db.func.max(OutboxMessage.id))).scalar()
    addresses.add_business_address(contact, f"w-{tag.lower()}@work.example", Via("admin", "test"))
    db.session.commit()
    queue_every_kind(client, contact, insights, manage_path)
    rows = list(
        db.session.execute(db.select(OutboxMessage).where(OutboxMessage.id > first)).scalars()
    )
    messages = delivered(smtp)
    assert {row.kind for row in rows} == KINDS
    data = [
        *DATA,
        *organisation_data(app),
        f"{tag.lower()[:1]}***@example.com",
        "w***@work.example",
        "Market Insights",
        "Customer offers",
    ]
    for row, message in zip(rows, messages, strict=True):
        english = english_mail[row.kind]
        assert message.message["Subject"] != english.message["Subject"], row.kind
        for part, english_part in (
            (message.text(), english.text()),
            (message.html(), english.html()),
        ):
            left = sorted(f for f in english_fragments(english_part, data) if f in part)
            assert left == [], f"{tag} {row.kind}: {left[:5]}"
            # Who sends, in every language (CASL Reg. s.2, CAN-SPAM §7704(a)(5)).
            assert len(organisation_data(app)) >= 3  # address, phone, email, web
            for who in organisation_data(app):
                assert who in part.replace("&amp;", "&"), f"{tag} {row.kind}: no {who!r}"
        assert f'lang="{tag}"' in message.html()
