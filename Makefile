# Two commands: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
HTMX := static/vendor/htmx.min.js

.PHONY: run serve test lint install install-dev assets translations extract-messages browser java clean bench bench-tools soak soak-long

run: install assets translations  ## set up, migrate, load the demo and serve on 127.0.0.1:5000
	$(FLASK) db upgrade
	$(FLASK) demo
	bin/dev-server

# Production serving (README, "Production"): migrations, gunicorn with gunicorn.conf.py
# (gevent workers) on 127.0.0.1:$PORT (default 8000), and the outbox worker.
serve: install assets translations
	bin/serve

test: install-dev assets translations browser java  ## set up and run the whole suite
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# htmx is served from our own static path, copied from its pinned npm package.
$(HTMX): node_modules/.package-lock.json
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

assets: $(HTMX)

# Compiled catalogs are built, not committed: each .mo from its .po (languages.py, babel.cfg).
CATALOGS := $(wildcard preference_center/translations/*/LC_MESSAGES/messages.po)
translations: $(CATALOGS:.po=.mo)

%/LC_MESSAGES/messages.mo: %/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel compile --statistics -i $< -o $@ -l $(notdir $*)

# After changing contact-facing strings: re-extract, merge into every catalog, translate the new
# entries (tests/test_translations.py fails until each is translated), then `make translations`.
extract-messages: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext --no-location --sort-output --omit-header \
	  -o preference_center/translations/messages.pot .
	$(BIN)/pybabel update -i preference_center/translations/messages.pot \
	  -d preference_center/translations --no-fuzzy-matching --ignore-obsolete

# Browser tests drive Debian's Chromium; Playwright never downloads its own.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The W3C HTML checker (vnu-jar, from npm) runs on the machine's Java.
java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Installing Debian's Java for the HTML checker"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }

# Benchmarks (bench/README.md): every figure next to a same-run baseline.
# DATABASE_URL=postgresql+psycopg://… make bench for PostgreSQL; BENCH_ARGS=--quick for a smoke run.
bench: install-dev bench-tools
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-tools:
	@command -v wrk >/dev/null 2>&1 && command -v sqlite3 >/dev/null 2>&1 && test -x /usr/bin/time || { \
	  echo "Installing wrk, the sqlite3 CLI and GNU time for the benchmarks"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk sqlite3 time >/dev/null; }

# Load and faults (bench/soak): short on SQLite, then on PostgreSQL when SOAK_POSTGRES_URL answers.
SOAK_SECONDS ?= 10
SOAK_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres
soak: install-dev
	SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/pytest bench/soak -m soak
	SOAK_SECONDS=$(SOAK_SECONDS) TEST_DATABASE_URL=$(SOAK_POSTGRES_URL) $(BIN)/pytest bench/soak -m soak

soak-long:
	$(MAKE) soak SOAK_SECONDS=60

clean:
	rm -rf $(VENV) node_modules static/vendor .pytest_cache
