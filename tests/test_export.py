"""Exporting the consent log: formats, filters, spreadsheet safety and the manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from helpers import all_events

from preference_center import consent, ledger, log_export
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import AdminAction, ConsentEvent, utcnow

FORMULAS = ["=cmd|' /C calc'!A0", "+1", "-2", "@x", "\tx", "\rx"]

# The auditor's recipe from the README, verbatim: recompute one event's hash
# from one line of an NDJSON export.
AUDITOR_SNIPPET = """
import hashlib, json

FIELDS = ["contact", "list", "request_id", "action", "from_state", "to_state",
          "basis", "source", "channel", "actor", "occurred_at", "notice_version",
          "personal_digest", "prev_hash"]
PERSONAL = ["ip", "user_agent", "evidence", "detail"]

def canonical(row, names):
    return json.dumps({k: row[k] for k in names}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)

def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

def check(line: str) -> bool:
    row = json.loads(line)
    chained = sha256((row["prev_hash"] or "") + canonical(row, FIELDS)) == row["hash"]
    if row["personal_salt"] is None:  # erased: nothing personal is left to check
        return chained and all(row[k] is None for k in PERSONAL)
    digest = sha256(row["personal_salt"] + canonical(row, PERSONAL))
    return chained and digest == row["personal_digest"]
"""


@pytest.fixture
def log(make):
    """Two contacts, two lists, and notes carrying would-be spreadsheet formulas."""
    notes = make.list("notes", audience="personal")
    insights = make.list("insights")
    pat = make.contact("pat@example.com", name="Pat")
    lee = make.contact("lee@example.com", name="Lee")
    make.subscription(pat, notes, basis="personal", evidence="Café chat — naïve ✓")
    make.subscription(lee, insights)
    pat_insights = make.subscription(pat, insights)
    for payload in FORMULAS:
        consent.record(pat, Via("admin", "test", user_agent=payload), "note", evidence=payload)
    consent.withdraw(pat_insights, Via("one_click", "contact", ip="203.0.113.9"))
    db.session.commit()
    return pat, lee, notes, insights


def run(runner, *args):
    db.session.commit()  # release SQLite's write lock before the command runs
    return runner.invoke(args=["export-log", *args])


def rows_of_csv(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_has_every_column_and_every_event(log, runner, tmp_path):
    out = tmp_path / "log.csv"

    result = run(runner, "--format", "csv", "-o", str(out))

    assert result.exit_code == 0, result.output
    rows = rows_of_csv(out.read_bytes())
    events = all_events()
    assert list(rows[0]) == list(log_export.EXPORT_COLUMNS)
    assert [int(r["event_id"]) for r in rows] == [e.id for e in events]
    pat, *_ = log
    first = rows[0]
    assert first["occurred_at"] == events[0].occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (first["contact_id"], first["email"], first["list"]) == (
        pat.public_id,
        "pat@example.com",
        "notes",
    )
    assert (first["action"], first["from_state"], first["to_state"], first["basis"]) == (
        "subscribe",
        "none",
        "subscribed",
        "personal",
    )
    assert first["evidence"] == "Café chat — naïve ✓"
    assert (first["notice_version"], first["prev_hash"], first["hash"]) == ("1", "", events[0].hash)
    withdrawal = rows[-1]
    assert (withdrawal["channel"], withdrawal["actor"], withdrawal["ip"]) == (
        "one_click",
        "contact",
        "203.0.113.9",
    )
    assert "Exported 10 event(s) as csv" in result.stderr


def test_csv_neutralises_formulas(log, runner, tmp_path):
    out = tmp_path / "log.csv"
    run(runner, "--format", "csv", "-o", str(out))

    notes = [r for r in rows_of_csv(out.read_bytes()) if r["action"] == "note"]

    assert [r["evidence"] for r in notes] == ["'" + payload for payload in FORMULAS]
    assert [r["user_agent"] for r in notes] == ["'" + payload for payload in FORMULAS]
    with_formulas = [cell for row in notes for cell in row.values()]
    assert not any(cell.startswith(tuple(log_export.FORMULA_TRIGGERS)) for cell in with_formulas)


def test_bom_only_when_asked(log, runner, tmp_path):
    plain, with_bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    run(runner, "--format", "csv", "-o", str(plain))
    run(runner, "--format", "csv", "--bom", "-o", str(with_bom))

    assert plain.read_bytes().startswith(b"event_id,")
    assert with_bom.read_bytes().startswith(b"\xef\xbb\xbfevent_id,")
    assert rows_of_csv(with_bom.read_bytes()) == rows_of_csv(plain.read_bytes())


def test_bom_with_json_is_refused(log, runner):
    result = run(runner, "--format", "json", "--bom")

    assert result.exit_code == 2
    assert "--bom applies to --format csv only" in result.output


def test_json_is_one_array_with_the_true_values(log, runner):
    result = run(runner, "--format", "json")

    assert result.exit_code == 0, result.output
    objects = json.loads(result.stdout)
    assert [o["event_id"] for o in objects] == [e.id for e in all_events()]
    notes = [o for o in objects if o["action"] == "note"]
    # Only CSV is for spreadsheets: JSON keeps values exactly as logged.
    assert [o["evidence"] for o in notes] == FORMULAS
    assert objects[0]["prev_hash"] is None and objects[0]["notice_version"] == 1


def test_json_of_nothing_is_an_empty_array(app, runner):
    assert json.loads(run(runner, "--format", "json").stdout) == []


def test_ndjson_is_one_object_per_line(log, runner):
    result = run(runner, "--format", "ndjson")

    lines = result.stdout.splitlines()
    assert len(lines) == len(all_events()) == 10
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert result.stdout.endswith("}\n")


def test_auditor_snippet_recomputes_every_hash_of_an_ndjson_export(log, runner):
    namespace: dict = {}
    exec(AUDITOR_SNIPPET, namespace)  # noqa: S102 - the README's snippet, run as published
    lines = run(runner, "--format", "ndjson").stdout.splitlines()

    assert namespace["FIELDS"] == list(ledger.HASHED_FIELDS)
    assert namespace["PERSONAL"] == list(ledger.PERSONAL_FIELDS)
    assert all(namespace["check"](line) for line in lines)
    for field, value in (("evidence", "something else"), ("action", "opt_in")):
        tampered = json.loads(lines[3])
        tampered[field] = value
        assert not namespace["check"](json.dumps(tampered, ensure_ascii=False))


def test_list_and_contact_filters(log, runner):
    pat, lee, notes, insights = log

    by_list = json.loads(run(runner, "--format", "json", "--list", "insights").stdout)
    by_id = json.loads(run(runner, "--format", "json", "--contact", lee.public_id).stdout)
    by_email = json.loads(run(runner, "--format", "json", "--contact", "PAT@example.com").stdout)
    both = json.loads(
        run(runner, "--format", "json", "--list", "notes", "--contact", pat.public_id).stdout
    )

    assert {o["list"] for o in by_list} == {"insights"} and len(by_list) == 3
    assert {o["email"] for o in by_id} == {"lee@example.com"} and len(by_id) == 1
    assert {o["contact_id"] for o in by_email} == {pat.public_id} and len(by_email) == 9
    assert [(o["list"], o["contact"]) for o in both] == [("notes", pat.public_id)]


def test_time_filters(log, runner):
    events = all_events()
    middle = events[4].occurred_at
    iso = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    plus_two = middle.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))

    since = json.loads(run(runner, "--format", "json", "--since", iso).stdout)
    until = json.loads(run(runner, "--format", "json", "--until", iso).stdout)
    since_offset = json.loads(
        run(runner, "--format", "json", "--since", plus_two.isoformat()).stdout
    )

    assert [o["event_id"] for o in since] == [e.id for e in events if e.occurred_at >= middle]
    assert [o["event_id"] for o in until] == [e.id for e in events if e.occurred_at < middle]
    assert since_offset == since


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--since", "2024-13-01"], 2, "'2024-13-01' is not an ISO 8601 date or time"),
        (["--until", "yesterday"], 2, "'yesterday' is not an ISO 8601 date or time"),
        (["--list", "nope"], 1, "No list has the slug 'nope'."),
        (["--contact", "nobody@example.com"], 1, "No contact has the address"),
        (["--contact", "0" * 32], 1, "No contact has the id"),
        (["--since", "2025-01-02", "--until", "2025-01-01"], 1, "--since must be earlier"),
        (["--format", "xml"], 2, "'xml' is not one of"),
    ],
)
def test_bad_input_is_a_clear_error(log, runner, tmp_path, args, code, message):
    (tmp_path / "exports").mkdir()
    out = tmp_path / "exports" / "log.json"
    args = ["--format", "json", *args] if "--format" not in args else args

    result = run(runner, *args, "-o", str(out))

    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(out.parent.iterdir()) == []
    assert db.session.execute(db.select(AdminAction)).first() is None


def test_manifest_matches_the_file_and_the_chain_heads(log, runner, tmp_path):
    pat, lee, *_ = log
    out = tmp_path / "log.ndjson"

    run(runner, "--format", "ndjson", "-o", str(out))

    manifest = json.loads((tmp_path / "log.ndjson.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert manifest["rows"] == 10 and manifest["bytes"] == out.stat().st_size
    assert (manifest["file"], manifest["format"]) == ("log.ndjson", "ndjson")
    assert manifest["filters"] == {"since": None, "until": None, "list": None, "contact": None}
    db.session.expire_all()
    assert manifest["chain_heads"] == {pat.public_id: pat.chain_head, lee.public_id: lee.chain_head}
    assert manifest["generated_at"].endswith("Z")


def test_filtered_manifest_names_the_last_exported_event_of_each_contact(log, runner, tmp_path):
    pat, lee, notes, insights = log
    out = tmp_path / "notes.json"

    run(runner, "--format", "json", "--list", "insights", "-o", str(out))

    manifest = json.loads((tmp_path / "notes.json.manifest.json").read_text())
    exported = json.loads(out.read_text())
    pat_last = [o for o in exported if o["contact"] == pat.public_id][-1]
    assert pat_last["action"] == "withdraw"
    assert manifest["chain_heads"] == {
        pat.public_id: pat_last["hash"],
        lee.public_id: lee.chain_head,
    }
    assert manifest["filters"]["list"] == "insights" and manifest["rows"] == len(exported) == 3


def test_every_export_is_recorded_as_an_admin_action(log, runner, tmp_path):
    out = tmp_path / "log.csv"
    run(runner, "--format", "csv", "-o", str(out))
    run(runner, "--format", "ndjson", "--list", "notes")

    to_file, to_stdout = db.session.execute(
        db.select(AdminAction).order_by(AdminAction.id)
    ).scalars()

    assert (to_file.action, to_stdout.action) == ("export_log", "export_log")
    assert to_file.actor.startswith("cli")
    # Written beside its file, the manifest is referred to by its sha256; its
    # chain heads (20 MB at 1M events) are not copied into the action.
    manifest_bytes = (tmp_path / "log.csv.manifest.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    recorded = json.loads(to_file.detail)
    assert recorded.pop("manifest_sha256") == hashlib.sha256(manifest_bytes).hexdigest()
    assert recorded.pop("chain_head_count") == len(manifest.pop("chain_heads")) == 2
    assert recorded == manifest
    stdout_manifest = json.loads(to_stdout.detail)
    assert (stdout_manifest["file"], stdout_manifest["rows"]) == (None, 1)
    assert stdout_manifest["filters"]["list"] == "notes"


def test_write_export_for_the_admin_area(log, tmp_path):
    log_export.write_export(
        tmp_path / "x.csv", "csv", {"list_slug": "notes"}, bom=True, actor="admin:7"
    )
    manifest = json.loads((tmp_path / "x.csv.manifest.json").read_text(encoding="utf-8"))

    action = db.session.execute(db.select(AdminAction)).scalar_one()
    recorded = json.loads(action.detail)
    assert (action.actor, action.action) == ("admin:7", "export_log")
    assert (
        recorded["manifest_sha256"]
        == hashlib.sha256((tmp_path / "x.csv.manifest.json").read_bytes()).hexdigest()
    )
    assert {k: v for k, v in manifest.items() if k != "chain_heads"} == {
        k: v for k, v in recorded.items() if k not in ("manifest_sha256", "chain_head_count")
    }
    assert manifest["bom"] is True and manifest["rows"] == 1


def test_download_records_once_all_bytes_are_out(log):
    chunks = log_export.download("ndjson", {"contact_public_id": log[1].public_id}, actor="admin:1")

    assert db.session.execute(db.select(AdminAction)).first() is None
    body = b"".join(chunks)

    action = db.session.execute(db.select(AdminAction)).scalar_one()
    assert json.loads(action.detail)["sha256"] == hashlib.sha256(body).hexdigest()


def test_an_erased_contact_is_exported_without_an_email(log, runner):
    pat, *_ = log
    pat.erased_at = utcnow()
    db.session.commit()

    rows = json.loads(run(runner, "--format", "json", "--contact", pat.public_id).stdout)

    assert {row["email"] for row in rows} == {None}


def test_rows_are_streamed_lazily_and_in_small_batches(log):
    rows = log_export.stream_rows(batch_size=2)

    assert not isinstance(rows, list | tuple)
    assert [row[0] for row in rows] == [event.id for event in all_events()]


TRICKY = ["a,b", 'say "hi"', "two\nlines", "cr\rhere", "", "naïve ✓ — ok", '=1+1,"x"']


def test_the_sql_rendering_gives_the_bytes_of_the_python_one(log, runner, tmp_path, monkeypatch):
    """The select renders the time and guards the cells in SQL; a stored time it
    cannot render sends the export through Python: both give the same bytes."""
    pat, *_ = log
    for text in TRICKY:
        consent.record(pat, Via("admin", "test", user_agent=text), "note", evidence=text)
    db.session.commit()
    fast = tmp_path / "fast.csv"
    run(runner, "--format", "csv", "-o", str(fast))
    fast_json = run(runner, "--format", "json").stdout

    monkeypatch.setattr(log_export, "_time_text", lambda engine, conditions: None)
    slow = tmp_path / "slow.csv"
    run(runner, "--format", "csv", "-o", str(slow))

    assert fast.read_bytes() == slow.read_bytes()
    assert run(runner, "--format", "json").stdout == fast_json
    rows = rows_of_csv(fast.read_bytes())
    assert [r["evidence"] for r in rows[-len(TRICKY) :]] == [
        log_export.neutralise(text) for text in TRICKY
    ]
    assert all(
        r["occurred_at"] == e.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for r, e in zip(rows, all_events(), strict=True)
    )


def test_a_time_stored_in_another_shape_is_still_exported_as_logged(log, runner):
    """A value SQLAlchemy does not write (seconds only, typed in by hand on SQLite;
    a year before 1000 on PostgreSQL) is rendered by Python, as before."""
    sqlite = db.engine.dialect.name == "sqlite"
    moment = datetime(2024 if sqlite else 999, 5, 6, 7, 8, 9)
    event = ConsentEvent.__table__
    with db.engine.begin() as connection:
        row = connection.execute(db.select(event).order_by(event.c.id).limit(1)).mappings().one()
        values = {**{k: v for k, v in row.items() if k != "id"}, "hash": "f" * 64}
        if sqlite:  # the text as a hand-written INSERT would store it
            values["occurred_at"] = "2024-05-06 07:08:09"
            columns = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            statement = f"INSERT INTO consent_events ({columns}) VALUES ({marks})"
            connection.exec_driver_sql(statement, tuple(values.values()))
        else:
            connection.execute(event.insert().values(**{**values, "occurred_at": moment}))

    objects = json.loads(run(runner, "--format", "json").stdout)

    assert objects[-1]["hash"] == "f" * 64
    assert objects[-1]["occurred_at"] == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert objects[0]["occurred_at"] == all_events()[0].occurred_at.strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
