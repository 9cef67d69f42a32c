"""The one address check, and every door that takes an address using it."""

from __future__ import annotations

import pytest
from admin_helpers import row_counts, token_of

from preference_center import tokens
from preference_center.validation import InvalidAddress, email_address

# What an outside probe sent, and what else a form or a file can carry.
REFUSED = [
    "<svg/onload=alert(1)>@evil.example",
    "v@example.com,attacker@evil.example",
    "v@example.com attacker@evil.example",
    "Pat <pat@example.com>",
    "pat@example.com\r\nBcc: victim@example.com",
    "pat\r@example.com",
    "pat\n@example.com",
    "pat\ud800@example.com",
    "pat@exa\udfffmple.com",
    "pat\x00@example.com",
    "pat@example.com\x00",
    "a" * 390 + "@example.com",
    "p" * 64 + "q@example.com",
    "pat@" + "d" * 300 + ".example",
    "bob@",
    "@example.com",
    "two words@example.com",
    "no-at-sign",
    "pat@localhost",
    "pat@host.test",
    "pat@[192.0.2.1]",
    '"quoted"@example.com',
    "ü@example.com",
    "a..b@example.com",
    "",
    "   ",
]


@pytest.mark.parametrize("text", REFUSED)
def test_anything_but_one_plain_address_is_refused_with_a_message(text):
    with pytest.raises(InvalidAddress) as refused:
        email_address(text)
    message = str(refused.value)
    assert message and "\x00" not in message and "\r" not in message and "\n" not in message


@pytest.mark.parametrize("text", [None, 42, ["pat@example.com"], b"pat@example.com"])
def test_what_is_not_text_is_refused(text):
    with pytest.raises(InvalidAddress):
        email_address(text)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("pat@example.com", "pat@example.com"),
        ("  Pat.Lee+news@Example.COM ", "pat.lee+news@example.com"),
        ("pat@bücher.example", "pat@xn--bcher-kva.example"),
        ("o'neil@work.example", "o'neil@work.example"),
    ],
)
def test_an_address_is_kept_in_one_form(text, stored):
    assert email_address(text) == stored


def test_the_probes_inputs_get_a_clear_answer_at_every_form(client, make):
    contact = make.contact("owner@example.com")
    manage = tokens.sign(tokens.MANAGE, contact)
    # A form post is UTF-8: a lone surrogate cannot travel in one (the API's JSON can).
    values = [v for v in REFUSED[:14] if not any("\ud800" <= c <= "\udfff" for c in v)]
    for number, value in enumerate(values):
        before = row_counts()
        fresh = client.post(
            "/p",
            data={"csrf_token": token_of(client, "/p"), "email": value},
            environ_base={"REMOTE_ADDR": f"192.0.2.{number}"},
        )
        business = client.post(
            f"/p/{manage}/business-address",
            data={"csrf_token": token_of(client, f"/p/{manage}"), "email": value},
            environ_base={"REMOTE_ADDR": f"192.0.2.{number}"},
        )
        # A NUL is refused before any view (400); the rest by the address check.
        assert fresh.status_code == 400, value
        assert business.status_code in (400, 409), value
        assert "valid email address" in business.get_data(as_text=True) or "\x00" in value
        assert row_counts() == before, value


def test_the_api_answers_each_probe_with_invalid_email(client, api_auth):
    headers = api_auth("contacts:write", "links")
    for value in REFUSED[:14]:
        for path in ("/api/v1/contacts", "/api/v1/links"):
            response = client.post(path, headers=headers, json={"email": value})
            assert response.status_code == 422, (path, value)
            assert response.get_json()["error"]["code"] == "invalid_email", (path, value)


def test_the_importer_rejects_each_probe_by_line(runner, make, tmp_path):
    make.list("insights")
    path = tmp_path / "contacts.csv"
    rows = [v for v in REFUSED[:14] if v.strip() and "\x00" not in v]
    with path.open("w", encoding="utf-8", errors="surrogatepass", newline="") as stream:
        stream.write("email\n" + "".join(f'"{v.replace(chr(34), 2 * chr(34))}"\n' for v in rows))
    before = row_counts()

    result = runner.invoke(
        args=["import-contacts", str(path), "--list", "insights", "--source", "sheet"]
        + ["--basis", "express", "--added-by", "Dana Reyes"]
    )

    assert result.exit_code == 1, result.output
    assert result.output.count("is not an email address") == len(rows)
    assert row_counts() == before
