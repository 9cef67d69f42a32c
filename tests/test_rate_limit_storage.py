"""Where the rate limits count (REDIS_URL / RATELIMIT_STORAGE_URI), and what every
route does while that Redis is unreachable (rate_limits.py's decisions).

The Redis is the machine's (127.0.0.1:6379, as in CI); each test counts under
its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import logging
import socket
import uuid
from urllib.parse import urlsplit

import pytest
import redis
from helpers import csrf_token, events_of, state_of
from limits.storage import MemoryStorage, RedisStorage
from plugins.app import pushed
from plugins.database import settings

from preference_center import create_app, tokens
from preference_center.extensions import limiter

REDIS = "redis://127.0.0.1:6379/0"


def redis_is_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_is_up(), reason="no Redis on 127.0.0.1:6379")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_for(database_url, tmp_path, monkeypatch, smtp_server):
    """Build the app from the environment given, as `make serve` would."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    for name in ("REDIS_URL", "RATELIMIT_STORAGE_URI", "RATELIMIT_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    sink, _ = smtp_server
    made = []

    def build(**environment: str):
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        config = settings(database_url, tmp_path, MAIL_PORT=sink.port)
        del config["RATELIMIT_STORAGE_URI"]  # from the environment, as in production
        generator = pushed(create_app(config))
        made.append(generator)
        return next(generator)

    yield build
    for generator in made:
        for _ in generator:  # closes the app context and its connections
            pass


@pytest.mark.parametrize(
    ("environment", "storage"),
    [
        ({}, MemoryStorage),
        ({"REDIS_URL": REDIS}, RedisStorage),
        ({"RATELIMIT_STORAGE_URI": REDIS}, RedisStorage),
        ({"REDIS_URL": REDIS, "RATELIMIT_STORAGE_URI": "memory://"}, MemoryStorage),
    ],
)
def test_the_limits_count_where_the_environment_says(app_for, environment, storage):
    app = app_for(**environment)
    assert isinstance(limiter.storage, storage)
    expected = environment.get("RATELIMIT_STORAGE_URI") or environment.get("REDIS_URL")
    assert app.config["RATELIMIT_STORAGE_URI"] == (expected or "memory://")


@needs_redis
def test_a_limit_counts_in_redis_and_trips_there(app_for):
    prefix = f"pc-test-{uuid.uuid4().hex[:8]}"
    app = app_for(REDIS_URL=REDIS, RATELIMIT_KEY_PREFIX=prefix)
    client = app.test_client()
    store = redis.Redis.from_url(REDIS)
    try:
        token = csrf_token(client.get("/p").text)
        answers = [
            client.post("/p", data={"csrf_token": token, "email": "sam@example.com"}).status_code
            for _ in range(4)
        ]
        assert answers == [200, 200, 200, 429]  # "3 per hour" for one typed address
        keys = list(store.scan_iter(f"*{prefix}*"))
        assert keys, "nothing was counted in Redis"
        assert not [k for k in keys if b"sam@example.com" in k], "an address in a key"
    finally:
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)
        store.close()


def test_without_redis_pages_and_withdrawals_work_and_mail_forms_refuse(make, app_for, caplog):
    # `make` first: its own app is set up before this one and torn down after it.
    app = app_for(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")
    client = app.test_client()
    insights = make.list("market-insights", name="Market Insights")
    webinars = make.list("webinars", name="Webinars")
    pat = make.contact("pat@example.com", name="Pat")
    make.subscription(pat, insights)
    make.subscription(pat, webinars)
    page = "/p/" + tokens.sign(tokens.MANAGE, pat)
    caplog.set_level(logging.INFO)

    shown = client.get(page)
    assert shown.status_code == 200
    token = csrf_token(shown.text)

    # A withdrawal on the page: no limit applies, nothing asks Redis.
    withdrawn = client.post(f"{page}/lists/webinars", data={"csrf_token": token})
    assert withdrawn.status_code in (200, 303)
    assert state_of(pat, webinars) == "unsubscribed"

    # The one-click (RFC 8058).
    one_click = urlsplit(tokens.unsubscribe_url(pat, "market-insights")).path
    answer = client.post(
        one_click,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert state_of(pat, insights) == "unsubscribed"
    assert [e.to_state for e in events_of(pat)[-2:]] == ["unsubscribed", "unsubscribed"]

    # An opt-in that mails the contact: counted in this process's memory, with a log line.
    opted = client.post(f"{page}/lists/webinars", data={"csrf_token": token, "subscribed": "yes"})
    assert opted.status_code in (200, 303), opted.text[:500]
    assert state_of(pat, webinars) in ("pending", "subscribed")
    assert "falling back to in-memory storage" in caplog.text

    # The forms that mail a typed address refuse cleanly meanwhile.
    form = csrf_token(client.get("/p").text)
    refused = client.post("/p", data={"csrf_token": form, "email": "pat@example.com"})
    assert refused.status_code == 503
    assert "try again in a few minutes" in refused.text and "Traceback" not in refused.text
    assert "refused until it answers" in caplog.text
    signup = client.get("/s/market-insights")
    assert signup.status_code == 200
    sent = client.post(
        "/s", data={"csrf_token": csrf_token(signup.text), "email": "new@example.com"}
    )
    assert sent.status_code == 503
