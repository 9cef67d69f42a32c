"""flask --app app feedback-arf FILE…: RFC 5965 reports, with and without the original."""

from __future__ import annotations

from feedback_helpers import feedback_events, state_of

from preference_center import mailer

REPORT = """\
From: feedback@mailbox.example
To: fbl@harbor.example
Subject: FW: complaint
Message-ID: <report-{n}@mailbox.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b1"

--b1
Content-Type: text/plain

This is an email abuse report.

--b1
Content-Type: message/feedback-report

Feedback-Type: {kind}
User-Agent: SomeFBL/1.0
Version: 1
{rcpt}
--b1
Content-Type: {original_type}

{original}
--b1--
"""


def write(tmp_path, name, original, *, kind="abuse", rcpt="", original_type="message/rfc822"):
    path = tmp_path / name
    text = REPORT.format(n=name, kind=kind, rcpt=rcpt, original=original,
                         original_type=original_type)  # fmt: skip
    path.write_text(text.replace("\n", "\r\n"))
    return str(path)


def original_with(headers: dict[str, str]) -> str:
    lines = [f"{k}: {v}" for k, v in headers.items()]
    return "\n".join(["From: dana@harbor.example", "Subject: Market Insights", *lines, "", "Hi"])


def test_the_one_click_token_names_contact_and_list(app, make, runner, tmp_path):
    insights, offers = make.list("market-insights"), make.list("offers-events")
    pat = make.contact("pat@example.com")
    make.subscription(pat, insights)
    make.subscription(pat, offers)
    headers = mailer.list_headers(pat, insights)
    # The recipient is redacted, as mailbox providers often do.
    original = original_with({"To": "redacted@mailbox.example", "Message-ID": "<m1@harbor>",
                              "List-Unsubscribe": headers["List-Unsubscribe"]})  # fmt: skip
    report = write(tmp_path, "one.eml", original)
    result = runner.invoke(args=["feedback-arf", report])
    assert result.exit_code == 0, result.output
    assert "applied" in result.output
    assert state_of(pat, insights) == "unsubscribed"
    assert state_of(pat, offers) == "subscribed"
    [event] = feedback_events(pat)
    assert event.actor == "arf" and '"event": "abuse"' in event.detail
    again = runner.invoke(args=["feedback-arf", write(tmp_path, "again.eml", original)])
    assert "duplicate" in again.output
    assert len(feedback_events(pat)) == 1


def test_recipient_and_list_id_without_a_token(app, make, runner, tmp_path):
    insights, offers = make.list("market-insights"), make.list("offers-events")
    notes = make.list("personal-notes", audience="personal")
    pat = make.contact("pat@example.com")
    for mailing_list in (insights, offers, notes):
        make.subscription(pat, mailing_list)
    list_id = mailer.list_headers(pat, offers)["List-Id"]
    headers_only = original_with({"To": "Pat <pat@example.com>", "List-Id": list_id})
    report = write(tmp_path, "hdr.eml", headers_only, original_type="text/rfc822-headers")
    assert runner.invoke(args=["feedback-arf", report]).exit_code == 0
    assert state_of(pat, offers) == "unsubscribed"
    assert state_of(pat, insights) == "subscribed"
    # Without the original at all: Original-Rcpt-To, and every business list.
    bare = write(tmp_path, "bare.eml", "", rcpt="Original-Rcpt-To: pat@example.com",
                 original_type="text/rfc822-headers")  # fmt: skip
    assert runner.invoke(args=["feedback-arf", bare]).exit_code == 0
    assert state_of(pat, insights) == "unsubscribed"
    assert state_of(pat, notes) == "subscribed"


def test_reports_that_are_not_complaints_or_not_reports(app, make, runner, tmp_path):
    insights = make.list("market-insights")
    pat = make.contact("pat@example.com")
    make.subscription(pat, insights)
    not_spam = write(tmp_path, "ns.eml", original_with({"To": "pat@example.com"}), kind="not-spam")
    plain = tmp_path / "plain.eml"
    plain.write_text("From: a@b\nSubject: hi\n\nnot a report\n")
    nobody = write(tmp_path, "nobody.eml", original_with({"Subject": "x"}))
    forged = original_with({"List-Unsubscribe": "<https://prefs.example.test/u/forged>"})
    result = runner.invoke(
        args=["feedback-arf", not_spam, str(plain), nobody, write(tmp_path, "f.eml", forged)]
    )
    assert result.exit_code == 1
    assert "not a complaint" in result.output
    assert "not used" in result.output
    assert state_of(pat, insights) == "subscribed"
    assert feedback_events(pat) == []
