"""The demo data set that tells the story of PRODUCT.md. Safe to load twice."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime

from werkzeug.security import generate_password_hash

from . import consent, list_translations
from .admin import auth
from .consent import Provenance, Via
from .extensions import db
from .models import (
    Address,
    AdminAction,
    AdminUser,
    Contact,
    ListNotice,
    MailingList,
    normalise_email,
)

DEMO_ADMIN = "demo-admin@example.com"

LISTS = [
    {
        "slug": "personal-notes",
        "name": "Dana's personal notes",
        "description": "A few lines from Dana about life, books and the harbor.",
        "frequency": "A few times a year",
        "audience": "personal",
    },
    {
        "slug": "market-insights",
        "name": "Market Insights",
        "description": "Harbor Financial's view of the markets, with charts.",
        "frequency": "Monthly",
        "audience": "business",
    },
    {
        "slug": "offers-events",
        "name": "Offers & Events",
        "description": "Seminars, client events and offers from Harbor Financial.",
        "frequency": "About twice a month",
        "audience": "business",
    },
]

# Each demo list in every shipped language: (name, description, frequency). Names carry
# no article, as they stand inside sentences ("Mettre … en pause pendant 30 jours").
TRANSLATIONS = {
    "personal-notes": {
        "fr": (
            "Notes personnelles de Dana",
            "Quelques lignes de Dana sur la vie, les livres et le port.",
            "Quelques fois par an",
        ),
        "de": (
            "Danas persönliche Notizen",
            "Ein paar Zeilen von Dana über das Leben, Bücher und den Hafen.",
            "Ein paarmal im Jahr",
        ),
        "es": (
            "Notas personales de Dana",
            "Unas líneas de Dana sobre la vida, los libros y el puerto.",
            "Unas pocas veces al año",
        ),
        "pt-BR": (
            "Notas pessoais da Dana",
            "Algumas linhas da Dana sobre a vida, os livros e o porto.",
            "Algumas vezes por ano",
        ),
        "ar": (
            "ملاحظات دانا الشخصية",
            "بضعة أسطر من دانا عن الحياة والكتب والميناء.",
            "بضع مرات في السنة",
        ),
    },
    "market-insights": {
        "fr": (
            "Regards sur les marchés",
            "Le point de vue de Harbor Financial sur les marchés, avec des graphiques.",
            "Mensuel",
        ),
        "de": (
            "Marktperspektiven",
            "Die Sicht von Harbor Financial auf die Märkte, mit Grafiken.",
            "Monatlich",
        ),
        "es": (
            "Perspectivas del mercado",
            "La visión de Harbor Financial sobre los mercados, con gráficos.",
            "Mensual",
        ),
        "pt-BR": (
            "Panorama do mercado",
            "A visão da Harbor Financial sobre os mercados, com gráficos.",
            "Mensal",
        ),
        "ar": ("رؤى السوق", "رؤية Harbor Financial للأسواق، مع رسوم بيانية.", "شهريًا"),
    },
    "offers-events": {
        "fr": (
            "Offres et événements",
            "Séminaires, événements clients et offres de Harbor Financial.",
            "Environ deux fois par mois",
        ),
        "de": (
            "Angebote und Veranstaltungen",
            "Seminare, Kundenveranstaltungen und Angebote von Harbor Financial.",
            "Etwa zweimal im Monat",
        ),
        "es": (
            "Ofertas y eventos",
            "Seminarios, eventos para clientes y ofertas de Harbor Financial.",
            "Unas dos veces al mes",
        ),
        "pt-BR": (
            "Ofertas e eventos",
            "Seminários, eventos para clientes e ofertas da Harbor Financial.",
            "Cerca de duas vezes por mês",
        ),
        "ar": (
            "العروض والفعاليات",
            "ندوات وفعاليات للعملاء وعروض من Harbor Financial.",
            "نحو مرتين في الشهر",
        ),
    },
}

DEMO_VIA = Via(channel="import", actor="demo loader")


def ensure_list(**fields: str | bool) -> MailingList:
    """Create a list with its first notice version, unless it exists."""
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=fields["slug"])
    ).scalar_one_or_none()
    if mailing_list is None:
        mailing_list = MailingList(**fields, notice_version=1)
        db.session.add(mailing_list)
        wording = TRANSLATIONS.get(fields["slug"], {})
        list_translations.set_translations(
            mailing_list,
            {
                tag: dict(zip(list_translations.FIELDS, texts, strict=True))
                for tag, texts in wording.items()
            },
        )
        db.session.flush()
        db.session.add(
            ListNotice(
                list_id=mailing_list.id,
                version=1,
                name=mailing_list.name,
                description=mailing_list.description,
                frequency=mailing_list.frequency,
                role_relevant=bool(mailing_list.role_relevant),
                similar_products=bool(mailing_list.similar_products),
                translations=list_translations.notice_json(mailing_list),
            )
        )
    return mailing_list


def ensure_contact(email: str, name: str, jurisdiction: str | None = None) -> Contact:
    """The contact owning ``email`` as a personal address, created if new."""
    address = db.session.execute(
        db.select(Address).filter_by(email=normalise_email(email))
    ).scalar_one_or_none()
    if address is not None:
        return address.contact
    contact = Contact(name=name, jurisdiction=jurisdiction)
    contact.addresses.append(Address(email=normalise_email(email), kind="personal"))
    db.session.add(contact)
    db.session.flush()
    return contact


def load() -> list[Contact]:
    """Load lists and the four story contacts; returns the contacts.

    Their jurisdictions tell the law's side of the story: Sam (US) may get the one
    emailed invitation; Alex (GB) confirmed by email; Jordan (CA) withdrew; Morgan
    (CA) is a friend with implied consent from a purchase, and its 2-year clock.
    """
    lists = {spec["slug"]: ensure_list(**spec) for spec in LISTS}
    db.session.flush()

    sam = ensure_contact("sam.rivera@example.com", "Sam Rivera", "US")
    consent.place(
        sam,
        lists["market-insights"],
        "invited",
        Provenance(
            source="networking import",
            added_by="Dana Reyes",
            basis="none",
            evidence="Connected on LinkedIn on 15 Feb 2011 — a connection is not consent",
            added_at=datetime(2011, 2, 15, 9, 30),
        ),
        DEMO_VIA,
    )

    alex = ensure_contact("alex.chen@example.com", "Alex Chen", "GB")
    consent.place(
        alex,
        lists["market-insights"],
        "subscribed",
        Provenance(
            source="harbor.example/signup",
            added_by="signup form",
            basis="double_opt_in",
            evidence="Signup form on 3 Mar 2025 from 203.0.113.7, confirmed by email link",
            added_at=datetime(2025, 3, 3, 14, 5),
        ),
        DEMO_VIA,
    )

    jordan = ensure_contact("jordan.patel@example.com", "Jordan Patel", "CA")
    subscription, _ = consent.place(
        jordan,
        lists["offers-events"],
        "subscribed",
        Provenance(
            source="seminar sign-in sheet",
            added_by="Dana Reyes",
            basis="express",
            evidence="Ticked 'send me event invitations' at the 12 Sep 2024 seminar",
            added_at=datetime(2024, 9, 12, 18, 0),
        ),
        DEMO_VIA,
    )
    consent.withdraw(subscription, Via(channel="preference_page", actor="contact"))

    morgan = ensure_contact("morgan.lee@example.com", "Morgan Lee", "CA")
    consent.place(
        morgan,
        lists["personal-notes"],
        "subscribed",
        Provenance(
            source="Dana's address book",
            added_by="Dana Reyes",
            basis="personal",
            evidence="Friends since university; Morgan asked to hear Dana's news",
            added_at=datetime(2020, 6, 1, 12, 0),
        ),
        DEMO_VIA,
    )
    consent.place(
        morgan,
        lists["market-insights"],
        "subscribed",
        Provenance(
            source="client records",
            added_by="Dana Reyes",
            basis="implied_purchase",
            evidence="Bought a Harbor Financial portfolio review (invoice HF-2025-0311)",
            basis_date=date(2025, 3, 2),
            added_at=datetime(2025, 3, 4, 10, 0),
        ),
        DEMO_VIA,
    )
    return [sam, alex, jordan, morgan]


def ensure_admin() -> tuple[AdminUser | None, str | None]:
    """The demo admin with a fresh random password, or (None, None) beside real admins.

    Only a database whose sole admin is the demo one (or that has none) gets
    it, so loading the demo next to real accounts never adds a known login.
    The password is never stored in the clear, so each run sets a new one and
    returns it to be printed once; the change is in the admin record.
    """
    others = db.session.execute(
        db.select(db.func.count()).select_from(AdminUser).where(AdminUser.email != DEMO_ADMIN)
    ).scalar_one()
    if others:
        return None, None
    password = secrets.token_urlsafe(15)
    admin = db.session.execute(
        db.select(AdminUser).filter_by(email=DEMO_ADMIN)
    ).scalar_one_or_none()
    if admin is None:
        admin = auth.create_admin(DEMO_ADMIN, password, "admin")
        action = "create_admin"
    else:
        admin.password_hash = generate_password_hash(password, auth.PASSWORD_METHOD)
        admin.disabled_at = None
        action = "reset_demo_admin_password"
    db.session.add(
        AdminAction(
            admin_id=admin.id,
            actor="demo loader",
            action=action,
            detail=json.dumps({"email": admin.email, "role": admin.role}),
        )
    )
    return admin, password
