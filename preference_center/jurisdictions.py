"""Where a contact is, as ISO 3166-1 alpha-2, and which e-marketing law applies there.

Only the codes are here; the rules themselves live in ``consent.py``.
"""

from __future__ import annotations

from flask import current_app

# ISO 3166-1 alpha-2, the officially assigned codes.
CODES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)
# The EU's member states, where the ePrivacy Directive's Art. 13 applies, and the
# EEA states that apply it through the EEA Agreement.
EU = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
EEA = EU | {"IS", "LI", "NO"}

INDIVIDUAL = "individual"
CORPORATE = "corporate"
SUBSCRIBER_TYPES = (INDIVIDUAL, CORPORATE)


class JurisdictionError(ValueError):
    """A code that is not ISO 3166-1 alpha-2, or an unknown subscriber type."""


def parse(raw: str | None) -> str | None:
    """``raw`` as an upper-case alpha-2 code; blank is ``None`` (unknown)."""
    code = (raw or "").strip().upper()
    if not code:
        return None
    if code == "UK":  # the common spelling; ISO 3166-1 says GB
        code = "GB"
    if code not in CODES:
        raise JurisdictionError(
            f"{raw.strip()!r} is not an ISO 3166-1 alpha-2 country code (e.g. US, CA, GB, DE)."
        )
    return code


def parse_subscriber_type(raw: str | None) -> str | None:
    """``individual`` or ``corporate``; blank is ``None`` (unknown, treated as individual)."""
    value = (raw or "").strip().lower()
    if not value:
        return None
    if value not in SUBSCRIBER_TYPES:
        raise JurisdictionError(
            f"subscriber_type {raw.strip()!r} is neither 'individual' nor 'corporate'."
        )
    return value


def default() -> str | None:
    """``DEFAULT_JURISDICTION``, or ``None`` when unset."""
    return current_app.config.get("DEFAULT_JURISDICTION") or None


def effective(contact_jurisdiction: str | None) -> str | None:
    """The contact's own jurisdiction, else the default; ``None`` is unknown."""
    return contact_jurisdiction or default()


def law(code: str | None) -> str:
    """The e-marketing law that applies: CASL, PECR, ePrivacy, CAN-SPAM, other or unknown."""
    if code is None:
        return "unknown"
    if code == "CA":
        return "CASL"
    if code == "GB":
        return "PECR"
    if code in EEA:
        return "ePrivacy"
    if code == "US":
        return "CAN-SPAM"
    return "other"
