"""The baseline: a bare Flask app served exactly like the real one.

Every figure of `make bench` is divided by the rate of one of these routes,
measured in the same run under the same gunicorn settings, so a noisy
machine moves both sides of the ratio.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello():
    """The bare "hello" route: no database, no template."""
    return "Hello, World!"


@app.get("/json")
def json_answer():
    """A bare JSON route shaped like a consent answer, with no database behind it."""
    return {
        "allowed": True,
        "status": "subscribed",
        "basis": "express",
        "reason": "Subscribed.",
        "deliver_to": "someone@example.com",
        "expires_at": None,
    }
