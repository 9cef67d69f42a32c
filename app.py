"""WSGI entry point: `flask --app app …` and `gunicorn app:app`."""

from preference_center import create_app

app = create_app()
