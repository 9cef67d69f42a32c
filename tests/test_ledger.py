"""The hash chains, their verification, and the database refusing to rewrite history."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa
from helpers import all_events, events_of

from preference_center import consent, ledger
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import Contact, MailingList

PAGE = Via(channel="preference_page", actor="contact", ip="198.51.100.4", user_agent="UA/1")


def sql(statement: str, **params) -> None:
    """Run raw SQL behind the app's back, in its own committed transaction."""
    db.session.execute(sa.text(statement), params)
    db.session.commit()


@pytest.fixture
def no_triggers(app):
    """Drop the append-only triggers so a test can tamper; restore them afterwards.

    The PostgreSQL test database lives for the whole session, so the triggers
    must come back for the tests that follow.
    """
    postgres = db.engine.dialect.name == "postgresql"
    db.session.commit()
    for verb in ("update", "delete"):
        on = " ON consent_events" if postgres else ""
        sql(f"DROP TRIGGER consent_events_no_{verb}{on}")
    yield
    db.session.rollback()
    if postgres:
        for verb in ("UPDATE", "DELETE"):
            sql(
                f"CREATE TRIGGER consent_events_no_{verb.lower()} BEFORE {verb} ON consent_events "
                "FOR EACH ROW EXECUTE FUNCTION consent_events_append_only()"
            )


@pytest.fixture
def history(make):
    """Two contacts with interleaved events on two lists."""
    notes = make.list("notes", audience="personal")
    insights = make.list("insights")
    pat = make.contact("pat@example.com")
    lee = make.contact("lee@example.com")
    pat_notes = make.subscription(pat, notes, basis="personal")
    make.subscription(lee, insights)
    pat_insights = make.subscription(pat, insights)
    consent.withdraw(pat_notes, PAGE)
    db.session.commit()
    consent.dispute(pat_insights, PAGE, "I never agreed to this")
    db.session.commit()
    return pat, lee, notes, insights


def verify(runner):
    db.session.commit()  # release SQLite's write lock before the command runs
    return runner.invoke(args=["verify-log"])


def test_each_event_links_to_the_previous_event_of_its_own_contact(history):
    pat, lee, *_ = history

    for contact in (pat, lee):
        events = events_of(contact)
        assert events[0].prev_hash is None
        for previous, event in zip(events, events[1:], strict=False):
            assert event.prev_hash == previous.hash
        assert contact.chain_head == events[-1].hash
    for event in all_events():
        slug = event.mailing_list.slug if event.mailing_list else None
        fields = ledger.hashed_fields(event, event.contact.public_id, slug)
        assert ledger.event_hash(fields) == event.hash


def test_verify_all_checks_every_chain_and_subscription(history):
    report = ledger.verify_all()

    assert report.ok
    assert report.first_problem is None
    assert (report.contacts_checked, report.events_checked, report.subscriptions_checked) == (
        2,
        5,
        3,
    )


def test_verify_all_streams_in_small_batches(history):
    report = ledger.verify_all(batch_size=1)

    assert report.ok and report.events_checked == 5


def test_verify_log_exits_zero_on_an_intact_log(history, runner):
    result = verify(runner)

    assert result.exit_code == 0, result.output
    assert "intact: 5 event(s) in 2 contact chain(s), 3 subscription(s)" in result.output


def test_business_choice_and_affirmation_replay_cleanly(make, runner):
    notes = make.list("notes", audience="personal")
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    make.subscription(contact, notes, basis="personal")
    make.subscription(contact, insights, basis="implied_inquiry", basis_date=date.today())
    assert consent.opt_in(contact, insights, PAGE, evidence="yes") == consent.RECONFIRMING
    consent.confirm(consent.find_subscription(contact, insights), PAGE)  # the emailed link
    db.session.commit()
    consent.decline_business_contact(contact, PAGE)
    db.session.commit()
    consent.allow_business_contact(contact, PAGE)
    db.session.commit()

    actions = [e.action for e in events_of(contact)]
    assert actions[2:] == ["affirm", "withdraw", "decline_business", "allow_business"]
    assert verify(runner).exit_code == 0


def test_an_edited_field_is_named(history, runner, no_triggers):
    pat, *_ = history
    edited = events_of(pat)[1]

    sql("UPDATE consent_events SET basis = 'implied_purchase' WHERE id = :id", id=edited.id)
    result = verify(runner)

    assert result.exit_code == 1
    assert (
        f"First problem: event {edited.id} of contact {pat.public_id}: its hash does not "
        "match its fields: the event was edited"
    ) in result.output


@pytest.mark.parametrize(
    ("column", "value"),
    [("ip", "192.0.2.66"), ("user_agent", "Forged/1"), ("evidence", "made up"), ("detail", "x")],
)
def test_an_edited_personal_field_is_named(history, runner, no_triggers, column, value):
    pat, *_ = history
    edited = events_of(pat)[-1]

    sql(f"UPDATE consent_events SET {column} = :value WHERE id = :id", value=value, id=edited.id)
    result = verify(runner)

    assert result.exit_code == 1
    assert (
        f"First problem: event {edited.id} of contact {pat.public_id}: its IP, user agent, "
        "evidence or detail do not match their digest: the event was edited"
    ) in result.output


def test_personal_fields_put_back_after_erasure_are_named(history, no_triggers):
    pat, *_ = history
    edited = events_of(pat)[-1]

    sql(
        "UPDATE consent_events SET personal_salt = NULL, ip = NULL, user_agent = NULL,"
        " evidence = NULL, detail = 'invented later' WHERE id = :id",
        id=edited.id,
    )

    assert [str(p) for p in ledger.verify_all().problems] == [
        f"event {edited.id} of contact {pat.public_id}: it has personal fields but no salt: "
        "the event was edited after erasure"
    ]


def test_the_hash_covers_the_digest_not_the_personal_fields(history):
    pat, *_ = history
    event = events_of(pat)[-1]
    fields = ledger.hashed_fields(event, pat.public_id, event.mailing_list.slug)

    # Optional fields are hashed only when set: this admin event names no language.
    assert set(ledger.HASHED_FIELDS) <= set(fields)
    assert set(fields) <= set(ledger.HASHED_FIELDS) | set(ledger.OPTIONAL_HASHED_FIELDS)
    assert not set(ledger.PERSONAL_FIELDS) & set(fields)
    assert len(event.personal_salt) == 32 and event.personal_digest == ledger.personal_digest(
        event.personal_salt,
        {
            "ip": "198.51.100.4",
            "user_agent": "UA/1",
            "evidence": event.evidence,
            "detail": "I never agreed to this",
        },
    )
    assert ledger.personal_digest("0" * 32, event) != event.personal_digest


def test_an_edited_field_with_a_recomputed_hash_breaks_the_next_link(history, runner, no_triggers):
    pat, *_ = history
    edited, following = events_of(pat)[1:3]
    fields = ledger.hashed_fields(edited, pat.public_id, edited.mailing_list.slug)
    forged = ledger.event_hash({**fields, "basis": "implied_purchase"})

    sql(
        "UPDATE consent_events SET basis = 'implied_purchase', hash = :hash WHERE id = :id",
        hash=forged,
        id=edited.id,
    )
    result = verify(runner)

    assert result.exit_code == 1
    assert f"First problem: event {following.id} of contact {pat.public_id}: prev_hash" in (
        result.output
    )


def test_a_deleted_event_is_named_by_the_event_after_it(history, runner, no_triggers):
    pat, *_ = history
    deleted, following = events_of(pat)[1:3]

    sql("DELETE FROM consent_events WHERE id = :id", id=deleted.id)
    result = verify(runner)

    assert result.exit_code == 1
    assert f"First problem: event {following.id} of contact {pat.public_id}" in result.output
    assert "an event was removed, inserted or reordered" in result.output


def test_a_deleted_newest_event_shows_in_the_head(history, runner, no_triggers):
    pat, *_ = history
    *_, before_last, last = events_of(pat)

    sql("DELETE FROM consent_events WHERE id = :id", id=last.id)
    result = verify(runner)

    assert result.exit_code == 1
    assert (
        f"First problem: event {before_last.id} of contact {pat.public_id}: the head stored "
        "on the contact"
    ) in result.output


def test_reordered_events_are_named(history, runner, no_triggers):
    pat, *_ = history
    first, second = (event.id for event in events_of(pat)[1:3])

    sql("UPDATE consent_events SET id = -1 WHERE id = :id", id=first)
    sql("UPDATE consent_events SET id = :new WHERE id = :old", new=first, old=second)
    sql("UPDATE consent_events SET id = :new WHERE id = -1", new=second)
    result = verify(runner)

    assert result.exit_code == 1
    assert f"First problem: event {first} of contact {pat.public_id}: prev_hash" in (result.output)
    assert "reordered" in result.output


def test_a_subscription_state_edited_behind_the_apps_back_is_named(history, runner):
    pat, _lee, notes, _insights = history
    last_event = events_of(pat)[-2]  # the withdrawal from notes
    assert last_event.mailing_list == notes

    sql(
        "UPDATE subscriptions SET state = 'subscribed' WHERE contact_id = :c AND list_id = :l",
        c=pat.id,
        l=notes.id,
    )
    result = verify(runner)

    assert result.exit_code == 1
    assert (
        f"First problem: subscription of contact {pat.public_id} to notes: state 'subscribed' "
        f"but its events replay to 'unsubscribed' (last event {last_event.id})"
    ) in result.output


def test_a_subscription_without_events_and_events_without_subscription(make, history):
    pat, lee, notes, _insights = history
    sql(
        "INSERT INTO subscriptions (contact_id, list_id, state, source, added_by, added_at,"
        " basis, evidence, deliver_to_business, updated_at) VALUES (:c, :l, 'subscribed',"
        " 'nowhere', 'nobody', CURRENT_TIMESTAMP, 'express', '', false, CURRENT_TIMESTAMP)",
        c=lee.id,
        l=notes.id,
    )
    sql("DELETE FROM subscriptions WHERE contact_id = :c AND list_id = :l", c=pat.id, l=notes.id)

    report = ledger.verify_all()

    messages = [str(problem) for problem in report.problems]
    assert messages == [
        f"event {events_of(pat)[-2].id} of contact {pat.public_id}: events record the list "
        "notes but the subscription is missing",
        f"subscription of contact {lee.public_id} to notes: state 'subscribed' but no event "
        "records it",
    ]
    assert not report.ok and report.problem_count == 2


def test_a_rewritten_head_is_named(history, runner):
    _pat, lee, *_ = history

    sql("UPDATE contacts SET chain_head = NULL WHERE id = :id", id=lee.id)
    result = verify(runner)

    assert result.exit_code == 1
    assert f"contact {lee.public_id}: the head stored on the contact (none)" in result.output


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_events SET evidence = 'rewritten' WHERE id = :id",
        "DELETE FROM consent_events WHERE id = :id",
    ],
)
def test_the_database_refuses_to_rewrite_events(history, statement):
    pat, *_ = history
    event = events_of(pat)[0]
    db.session.commit()

    with pytest.raises(sa.exc.DBAPIError, match="consent_events is append-only"):
        db.session.execute(sa.text(statement), {"id": event.id})
    db.session.rollback()

    db.session.expire_all()
    assert events_of(pat)[0].evidence == event.evidence
    assert ledger.verify_all().ok


def test_concurrent_writes_to_one_contact_keep_one_valid_chain(app, make):
    lists = [make.list(f"notes-{n}", audience="personal") for n in range(2)]
    contact = make.contact("pat@example.com")
    contact_id, list_ids = contact.id, [m.id for m in lists]
    db.session.commit()
    threads_count, rounds = 4, 6
    start = threading.Barrier(threads_count)
    changes: list[bool] = []
    errors: list[BaseException] = []

    def toggle(worker: int) -> None:
        try:
            # Each worker is a page request: its transactions begin as a writer's
            # would (BEGIN IMMEDIATE on SQLite, row locks on PostgreSQL).
            with app.test_request_context("/", method="POST"):
                via = Via(channel="preference_page", actor=f"worker-{worker}")
                start.wait()
                for round_ in range(rounds):
                    person = db.session.get(Contact, contact_id)
                    mailing_list = db.session.get(MailingList, list_ids[(worker + round_ // 2) % 2])
                    if round_ % 2 == 0:
                        changed = consent.opt_in(person, mailing_list, via, evidence="ticked")
                    else:
                        subscription = consent.find_subscription(person, mailing_list)
                        changed = consent.withdraw(subscription, via)
                    db.session.commit()
                    changes.append(changed)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=toggle, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    db.session.expire_all()
    events = events_of(contact)
    assert len(events) == sum(changed not in (False, consent.UNCHANGED) for changed in changes) > 0
    assert len({event.prev_hash for event in events}) == len(events)  # no fork
    report = ledger.verify_all()
    assert report.ok, report.problems
    assert report.events_checked == len(events)


MINIMISE = "ip = NULL, user_agent = NULL, evidence = NULL, detail = NULL, personal_salt = NULL"


@pytest.mark.parametrize(
    "change",
    [
        "ip = NULL",
        "ip = NULL, user_agent = NULL, evidence = NULL, detail = NULL",
        "ip = '192.0.2.1'",
        f"{MINIMISE}, action = 'opt_in'",
        f"{MINIMISE}, personal_digest = '{'0' * 64}'",
        f"{MINIMISE}, hash = '{'0' * 64}'",
        f"{MINIMISE}, prev_hash = NULL",
        f"{MINIMISE}, occurred_at = CURRENT_TIMESTAMP",
        f"{MINIMISE}, id = id + 1000",
    ],
)
def test_the_database_refuses_every_update_but_minimisation(history, change):
    pat, *_ = history
    event = events_of(pat)[-1]

    with pytest.raises(sa.exc.DBAPIError, match="consent_events is append-only"):
        db.session.execute(
            sa.text(f"UPDATE consent_events SET {change} WHERE id = :id"), {"id": event.id}
        )
    db.session.rollback()

    assert events_of(pat)[-1].ip == "198.51.100.4"
    assert ledger.verify_all().ok


def test_the_database_allows_minimisation_and_the_chain_still_verifies(history):
    pat, *_ = history
    event = events_of(pat)[-1]
    digest = event.personal_digest

    sql(f"UPDATE consent_events SET {MINIMISE} WHERE id = :id", id=event.id)

    db.session.expire_all()
    minimised = events_of(pat)[-1]
    assert (minimised.ip, minimised.user_agent, minimised.evidence, minimised.detail) == (
        None,
        None,
        None,
        None,
    )
    assert (minimised.personal_salt, minimised.personal_digest) == (None, digest)
    assert ledger.verify_all().ok


def test_the_admin_event_page_shows_an_edited_ip(app, history, no_triggers):
    from admin_helpers import create, sign_in

    pat, *_ = history
    edited = events_of(pat)[0]
    sql("UPDATE consent_events SET ip = '203.0.113.66' WHERE id = :id", id=edited.id)
    create("auditor@example.com", role="auditor")
    client = app.test_client()
    sign_in(client, "auditor@example.com")

    page = client.get(f"/admin/log/{edited.id}")

    assert page.status_code == 200
    assert "Its personal fields are not what was written" in page.text
    assert "203.0.113.66" in page.text
    assert "Its hash matches its fields." in page.text  # the digest, not the hash, tells
