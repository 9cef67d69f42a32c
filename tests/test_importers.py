"""flask import-contacts: plain CSV and LinkedIn exports, with provenance, all or nothing."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from helpers import all_events, events_of, state_of
from hypothesis import given, settings
from hypothesis import strategies as st

from preference_center import consent, importers, may_send, suppression
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import (
    Address,
    AdminAction,
    ConsentEvent,
    Contact,
    OutboxMessage,
    Subscription,
    utcnow,
)

PAGE = Via(channel="preference_page", actor="contact")

LINKEDIN_EXPORT = (
    "Notes:\n"
    '"When exporting your connection data, you may notice that some of the email '
    "addresses are missing. You will only see email addresses for connections who have "
    "allowed their connections to see or download their email address using this "
    "setting https://www.linkedin.com/psettings/privacy/email. You can learn more here "
    'https://www.linkedin.com/help/linkedin/answer/261"\n'
    "\n"
    "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
    "Sam,Rivera,https://www.linkedin.com/in/sam,Sam.Rivera@Example.com,"
    '"Acme, Inc.",CEO,15 Feb 2011\n'
    "Nobody,Shared,https://www.linkedin.com/in/nobody,,Quiet Co,Analyst,01 Jan 2020\n"
    "Zoë,Núñez,https://www.linkedin.com/in/zoe,zoe@example.org,"
    '"Café ""Au Lait"", Ltd",Owner,02 Mar 2021\n'
    "Private,Person,https://www.linkedin.com/in/private,,,,\n"
)


def write(tmp_path, text: str, name: str = "contacts.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run_import(runner, path, *extra, slug="insights", basis="express", source="seminar sheet"):
    args = ["import-contacts", str(path), "--list", slug, "--source", source]
    args += ["--basis", basis, "--added-by", "Dana Reyes", *extra]
    return runner.invoke(args=args)


def subscription_for(email: str, mailing_list) -> Subscription:
    db.session.expire_all()
    address = db.session.execute(db.select(Address).filter_by(email=email)).scalar_one()
    return consent.find_subscription(address.contact, mailing_list)


def count(model) -> int:
    return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def assert_clean_refusal(result, message: str):
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_plain_csv_imports_with_provenance(runner, make, tmp_path):
    insights = make.list("insights")
    path = write(
        tmp_path,
        "\ufeffEmail,NAME,Evidence\r\n"
        'Pat@Example.com,"Núñez, José","Ticked the box, then said:\r\n""yes please"""\r\n'
        "lee@example.com,Lee,\r\n",
    )

    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    assert (
        "Imported into insights: created 2, updated 0, invited 0, unchanged 0, "
        "suppressed 0, rejected 0" in result.output
    )
    pat = subscription_for("pat@example.com", insights)
    assert pat.contact.name == "Núñez, José"
    assert (pat.state, pat.basis, pat.source, pat.added_by) == (
        "subscribed",
        "express",
        "seminar sheet",
        "Dana Reyes",
    )
    assert pat.evidence == 'Ticked the box, then said:\r\n"yes please"'
    lee = subscription_for("lee@example.com", insights)
    assert lee.evidence == "Line 4 of contacts.csv"
    [event] = events_of(pat.contact)
    assert (event.action, event.channel, event.to_state, event.basis) == (
        "subscribe",
        "import",
        "subscribed",
        "express",
    )
    assert event.actor == "cli import by Dana Reyes"
    [action] = db.session.execute(db.select(AdminAction)).scalars().all()
    assert action.action == "import_contacts"
    assert count(OutboxMessage) == 0


def test_addresses_are_normalised_and_deduplicated(runner, make, tmp_path):
    insights = make.list("insights")
    known = make.contact("pat@example.com", "Pat")
    path = write(
        tmp_path,
        "email,name\n  PAT@example.com ,Pat Again\nnew@example.com,New\nNEW@EXAMPLE.COM,Twice\n",
    )

    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    assert "created 2," in result.output
    assert "duplicates merged 1" in result.output
    assert count(Contact) == 2
    assert subscription_for("pat@example.com", insights).contact.id == known.id
    assert subscription_for("new@example.com", insights).contact.name == "New"


def test_importing_the_same_file_again_changes_nothing(runner, make, tmp_path):
    make.list("insights")
    path = write(tmp_path, "email\na@example.com\nb@example.com\n")
    assert run_import(runner, path).exit_code == 0
    events_before = len(all_events())

    result = run_import(runner, path)

    assert "created 0, updated 0, invited 0, unchanged 2, suppressed 0, rejected 0" in (
        result.output
    )
    assert len(all_events()) == events_before


def test_an_invited_contact_imported_with_consent_is_updated(runner, make, tmp_path):
    insights = make.list("insights")
    pat = make.contact("pat@example.com")
    make.subscription(pat, insights, state="invited", basis="none")
    path = write(tmp_path, "email,evidence\npat@example.com,Signed the seminar sheet\n")

    result = run_import(runner, path)

    assert "created 0, updated 1," in result.output
    assert state_of(pat, insights) == "subscribed"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "utf-16"])
def test_files_are_read_in_the_common_encodings(runner, make, tmp_path, encoding):
    insights = make.list("insights")
    path = write(tmp_path, "email,name\r\nzoe@example.org,Zoë Núñez-Façade\r\n", encoding=encoding)

    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    assert subscription_for("zoe@example.org", insights).contact.name == "Zoë Núñez-Façade"


def test_a_semicolon_separated_export_is_read(runner, make, tmp_path):
    insights = make.list("insights")
    path = write(tmp_path, "Name;Email\nPat;pat@example.com\n")

    assert run_import(runner, path).exit_code == 0
    assert subscription_for("pat@example.com", insights).contact.name == "Pat"


def test_basis_none_only_invites(runner, make, tmp_path):
    insights = make.list("insights")
    path = write(tmp_path, "email\npat@example.com\n")

    result = run_import(runner, path, basis="none", source="business cards")

    assert "created 0, updated 0, invited 1," in result.output
    subscription = subscription_for("pat@example.com", insights)
    assert (subscription.state, subscription.basis) == ("invited", "none")
    assert not may_send.check("pat@example.com", "insights").allowed


# --- LinkedIn ---------------------------------------------------------------


def test_a_linkedin_export_only_invites(runner, make, tmp_path):
    insights = make.list("insights")
    path = write(tmp_path, "\ufeff" + LINKEDIN_EXPORT, name="Connections.csv")

    result = run_import(runner, path, basis="none", source="my LinkedIn")

    assert result.exit_code == 0, result.output
    assert (
        "created 0, updated 0, invited 2, unchanged 0, suppressed 0, rejected 0, "
        "skipped without email 2" in result.output
    )
    sam = subscription_for("sam.rivera@example.com", insights)
    assert (sam.state, sam.basis, sam.source) == ("invited", "none", "networking import")
    assert sam.evidence == "Connected on LinkedIn on 15 Feb 2011"
    assert sam.contact.name == "Sam Rivera"
    zoe = subscription_for("zoe@example.org", insights)
    assert zoe.contact.name == "Zoë Núñez"
    assert zoe.evidence == "Connected on LinkedIn on 02 Mar 2021"
    assert count(Contact) == 2
    answer = may_send.check("sam.rivera@example.com", "insights")
    assert (answer.allowed, answer.status) == (False, "invited")
    # Invitations are an explicit act, never a side effect of the import.
    assert count(OutboxMessage) == 0


@pytest.mark.parametrize("basis", ["express", "double_opt_in", "implied_inquiry"])
def test_a_linkedin_export_with_any_other_basis_is_refused(runner, make, tmp_path, basis):
    make.list("insights")
    path = write(tmp_path, LINKEDIN_EXPORT, name="Connections.csv")

    result = run_import(runner, path, basis=basis)

    assert_clean_refusal(result, "A connection is not consent")
    assert "--basis none" in result.output
    assert count(Contact) == 0
    assert all_events() == []


def test_a_linkedin_export_in_windows_1252_is_recognised(runner, make, tmp_path):
    insights = make.list("insights")
    path = write(tmp_path, LINKEDIN_EXPORT, name="Connections.csv", encoding="cp1252")

    result = run_import(runner, path, basis="none")

    assert result.exit_code == 0, result.output
    assert subscription_for("zoe@example.org", insights).contact.name == "Zoë Núñez"


# --- all or nothing, --skip-invalid ------------------------------------------

MIXED = (
    "email,name\n"
    "good@example.com,Good\n"
    "bob@,Bob\n"
    '"two words@example.com","Multi\nline"\n'
    ",Nobody\n"
    "fine@example.com,Fine\n"
)


def test_one_bad_row_refuses_the_whole_file_with_line_numbers(runner, make, tmp_path):
    make.list("insights")
    path = write(tmp_path, MIXED)

    result = run_import(runner, path)

    assert_clean_refusal(result, "3 rows have problems, so nothing was imported")
    assert "line 3: 'bob@' is not an email address" in result.output
    assert "line 4: 'two words@example.com' is not an email address" in result.output
    assert "line 6: no email address" in result.output
    assert count(Contact) == 0
    assert count(Subscription) == 0
    assert all_events() == []
    assert not (tmp_path / "contacts.rejected.csv").exists()


def test_skip_invalid_imports_the_rest_and_writes_the_rejected_rows(runner, make, tmp_path):
    insights = make.list("insights")
    path = write(tmp_path, MIXED)
    rejected = tmp_path / "out" / "rejected.csv"
    rejected.parent.mkdir()

    result = run_import(runner, path, "--skip-invalid", "--rejected", str(rejected))

    assert result.exit_code == 0, result.output
    assert "created 2, updated 0, invited 0, unchanged 0, suppressed 0, rejected 3" in (
        result.output
    )
    assert f"3 rejected row(s) written to {rejected}" in result.output
    assert state_of(subscription_for("good@example.com", insights).contact, insights) == (
        "subscribed"
    )
    with rejected.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows == [
        ["line", "reason", "email", "name"],
        ["3", "'bob@' is not an email address", "bob@", "Bob"],
        [
            "4",
            "'two words@example.com' is not an email address",
            "two words@example.com",
            "Multi\nline",
        ],
        ["6", "no email address", "", "Nobody"],
    ]


def test_skip_invalid_writes_next_to_the_file_by_default(runner, make, tmp_path):
    make.list("insights")
    path = write(tmp_path, MIXED)

    result = run_import(runner, path, "--skip-invalid")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "contacts.rejected.csv").read_text(encoding="utf-8").count("\n") == 5


def test_rejected_needs_skip_invalid(runner, make, tmp_path):
    make.list("insights")
    path = write(tmp_path, MIXED)

    result = run_import(runner, path, "--rejected", str(tmp_path / "r.csv"))

    assert result.exit_code == 2
    assert "--rejected only applies with --skip-invalid" in result.output
    assert count(Contact) == 0


# --- implied consent ---------------------------------------------------------


def test_implied_bases_need_a_valid_recent_date_per_row(runner, make, tmp_path):
    insights = make.list("insights")
    today = utcnow().date()
    recent = today - timedelta(days=30)
    path = write(
        tmp_path,
        "email,basis_date\n"
        f"recent@example.com,{recent.isoformat()}\n"
        "missing@example.com,\n"
        "garbled@example.com,31/01/2025\n"
        f"future@example.com,{(today + timedelta(days=3)).isoformat()}\n"
        f"old@example.com,{(today - timedelta(days=800)).isoformat()}\n",
    )

    result = run_import(runner, path, "--skip-invalid", basis="implied_purchase")

    assert result.exit_code == 0, result.output
    assert "created 1," in result.output and "rejected 4" in result.output
    subscription = subscription_for("recent@example.com", insights)
    assert subscription.basis_date == recent
    assert subscription.expires_at == consent.implied_expiry("implied_purchase", recent)
    reasons = (tmp_path / "contacts.rejected.csv").read_text(encoding="utf-8")
    assert "basis_date is required for implied_purchase" in reasons
    assert "basis_date '31/01/2025' is not a date (use YYYY-MM-DD)" in reasons
    assert "is in the future" in reasons
    assert "already ended on" in reasons


def test_an_implied_basis_without_a_date_column_is_refused(runner, make, tmp_path):
    make.list("insights")
    path = write(tmp_path, "email\npat@example.com\n")

    result = run_import(runner, path, basis="implied_inquiry")

    assert_clean_refusal(result, "needs a basis_date column")
    assert count(Contact) == 0


# --- suppressed rows -----------------------------------------------------------


def test_withdrawn_disputed_declined_and_erased_addresses_are_suppressed(runner, make, tmp_path):
    insights = make.list("insights")
    withdrew = make.contact("withdrew@example.com")
    consent.withdraw(make.subscription(withdrew, insights), PAGE)
    disputed = make.contact("disputed@example.com")
    consent.dispute(make.subscription(disputed, insights, state="invited", basis="none"), PAGE, "")
    declined = make.contact("declined@example.com")
    consent.decline_business_contact(declined, PAGE)
    suppression.suppress("Erased@Example.com")
    db.session.commit()
    events_before = len(all_events())
    path = write(
        tmp_path,
        "email\nwithdrew@example.com\nDISPUTED@example.com\ndeclined@example.com\n"
        "erased@example.com\nnew@example.com\n",
    )

    result = run_import(runner, path)

    assert result.exit_code == 0, result.output
    assert "created 1, updated 0, invited 0, unchanged 0, suppressed 4, rejected 0" in (
        result.output
    )
    assert state_of(withdrew, insights) == "unsubscribed"
    assert state_of(disputed, insights) == "unsubscribed"
    assert state_of(declined, insights) is None
    assert (
        db.session.execute(
            db.select(Address).filter_by(email="erased@example.com")
        ).scalar_one_or_none()
        is None
    )
    assert len(all_events()) == events_before + 1


def test_suppressed_address_uses_a_keyed_hash(app):
    suppression.suppress(" Gone@Example.com ")
    db.session.commit()

    assert suppression.suppressed_address("gone@example.com")
    assert not suppression.suppressed_address("here@example.com")
    stored = db.session.execute(db.select(suppression.Suppression.email_hash)).scalar_one()
    assert "gone" not in stored and len(stored) == 64
    app.config["SECRET_KEY"] = "another key"
    assert not suppression.suppressed_address("gone@example.com")


# --- dry run and refusals ----------------------------------------------------------


def test_a_dry_run_counts_but_writes_nothing(runner, make, tmp_path):
    make.list("insights")
    path = write(tmp_path, MIXED)

    result = run_import(runner, path, "--dry-run", "--skip-invalid")

    assert result.exit_code == 0, result.output
    assert "Dry run, nothing written. Would import into insights: created 2," in result.output
    assert "line 3: 'bob@' is not an email address" in result.output
    db.session.expire_all()
    assert count(Contact) == 0
    assert count(Address) == 0
    assert count(Subscription) == 0
    assert count(ConsentEvent) == 0
    assert count(AdminAction) == 0
    assert not (tmp_path / "contacts.rejected.csv").exists()


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        ("email\npat@example.com\n", ["--list", "nope"], "There is no list 'nope'."),
        ("", [], "The file is empty."),
        ("name,phone\nPat,555\n", [], "No 'email' column in the header row (line 1: name, phone)"),
        ("email\npat@example.com\n", ["--basis", "personal"], "no basis for the business list"),
        ("email\npat@example.com\n", ["--source", "  "], "source missing"),
        ('email\n"pat@example.com\n' + "x" * 200_000, [], "the CSV cannot be read"),
    ],
)
def test_a_file_that_cannot_be_imported_gets_a_clear_message(
    runner, make, tmp_path, text, args, message
):
    make.list("insights")
    path = write(tmp_path, text)
    options = {"--list": "insights", "--basis": "express", "--source": "sheet"}
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [item for pair in options.items() for item in pair]

    result = runner.invoke(args=["import-contacts", str(path), *flat, "--added-by", "Dana Reyes"])

    assert_clean_refusal(result, message)
    assert count(Contact) == 0


def test_the_import_function_is_reusable_without_the_cli(make):
    insights = make.list("insights")
    options = importers.ImportOptions(
        list_slug="insights", source="admin upload", basis="express", added_by="Admin"
    )

    summary = importers.import_contacts(b"email\npat@example.com\n", options)
    db.session.commit()

    assert (summary.created, summary.rejected, summary.format) == (1, [], "csv")
    assert state_of(subscription_for("pat@example.com", insights).contact, insights) == (
        "subscribed"
    )
    with pytest.raises(importers.InvalidRows) as refused:
        importers.import_contacts(b"email\nnot-an-address\n", options)
    assert refused.value.summary.rejected[0].line == 2


def test_a_personal_list_accepts_a_personal_basis(runner, make, tmp_path):
    notes = make.list("notes", audience="personal")
    path = write(tmp_path, "email\nfriend@example.com\n")

    result = run_import(runner, path, slug="notes", basis="personal", source="address book")

    assert result.exit_code == 0, result.output
    assert subscription_for("friend@example.com", notes).basis == "personal"


def test_declined_contacts_cannot_be_placed_on_business_lists_by_anyone(make):
    insights = make.list("insights")
    pat = make.contact("pat@example.com")
    consent.decline_business_contact(pat, PAGE)
    db.session.commit()

    with pytest.raises(consent.ConsentError, match="declined business messages"):
        make.subscription(pat, insights)
    db.session.rollback()
    assert state_of(pat, insights) is None


def test_nul_characters_are_dropped(runner, make, tmp_path):
    insights = make.list("insights")
    path = write(tmp_path, "email,name\npat@example.com\x00,Pa\x00t\n")

    assert run_import(runner, path).exit_code == 0
    assert subscription_for("pat@example.com", insights).contact.name == "Pat"


def test_erased_addresses_are_found_across_query_chunks(runner, make, tmp_path):
    make.list("insights")
    emails = [f"p{i}@example.com" for i in range(suppression.CHUNK + 100)]
    suppression.suppress(emails[suppression.CHUNK + 50])
    db.session.commit()
    path = write(tmp_path, "email\n" + "\n".join(emails) + "\n")

    result = run_import(runner, path)

    assert f"created {len(emails) - 1}," in result.output
    assert "suppressed 1," in result.output


@given(st.text(alphabet=st.sampled_from('ab,"\r\n\u2028\x0c\x00é'), max_size=60))
@settings(max_examples=300, deadline=None)
def test_lines_are_split_as_a_file_opened_with_newline_empty_splits_them(text):
    # The importer reads the CSV's lines lazily instead of through io.StringIO (which
    # copies the whole file at four bytes a character); the csv module must see the
    # very same lines: CR LF, CR and LF end one, nothing else does.
    assert list(importers.lines(text)) == list(io.StringIO(text, newline=""))


def test_a_file_with_old_mac_line_endings_is_read_row_by_row():
    text = "email,name\rann@example.com,Ann\rbob@example.com,Bob\r"
    assert [values for _line, values in importers.records(text)] == [
        ["email", "name"],
        ["ann@example.com", "Ann"],
        ["bob@example.com", "Bob"],
    ]
