"""``flask demo``: the story's contacts with their links, and a way into the admin."""

from __future__ import annotations

import re

from admin_helpers import create, sign_in

from preference_center.demo import DEMO_ADMIN
from preference_center.extensions import db
from preference_center.models import AdminUser

LOGIN = re.compile(r"email (\S+)  password (\S+)")


def printed_login(result) -> tuple[str, str]:
    assert result.exit_code == 0, result.output
    match = LOGIN.search(result.output)
    assert match, result.output
    return match.group(1), match.group(2)


def admins() -> list[str]:
    db.session.commit()
    return list(db.session.execute(db.select(AdminUser.email)).scalars())


def test_the_demo_prints_links_and_a_demo_admin_who_can_sign_in(runner, client):
    result = runner.invoke(args=["demo"])

    email, password = printed_login(result)
    assert email == DEMO_ADMIN
    assert "https://prefs.example.test/p/" in result.output
    assert "https://prefs.example.test/admin/login" in result.output
    assert sign_in(client, email, password).status_code == 303
    assert client.get("/admin/log/export?format=csv").status_code == 200


def test_loading_twice_keeps_one_demo_admin_with_a_new_password(runner, client):
    _, first = printed_login(runner.invoke(args=["demo"]))
    _, second = printed_login(runner.invoke(args=["demo"]))

    assert first != second
    assert admins() == [DEMO_ADMIN]
    assert sign_in(client, DEMO_ADMIN, first).status_code != 303
    assert sign_in(client, DEMO_ADMIN, second).status_code == 303


def test_no_demo_admin_beside_real_admins(runner):
    create("ada@example.com", "admin")

    result = runner.invoke(args=["demo"])

    assert result.exit_code == 0, result.output
    assert "no demo admin" in result.output and not LOGIN.search(result.output)
    assert admins() == ["ada@example.com"]
