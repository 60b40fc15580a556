# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv serve-demo serve bench clean chromium fuzz

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

## make demo: SQLite, demo data, an admin login and a POS API key, served on 127.0.0.1:8000.
demo: $(STAMP)
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py seed_demo
	DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000

## make serve: gunicorn, a Celery worker and beat on this machine's PostgreSQL and Redis (bin/serve; Ctrl-C stops all).
serve: $(STAMP)
	bin/serve

## make lint: ruff, the import layers (import-linter: pyproject.toml), mypy (strict on services, selectors, the
## rules engine and the ledger) and the migrations check. mypy imports the settings and signs nothing, so it runs
## without a SECRET_KEY (as `makemigrations` does).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	LOYALTY_ALLOW_INSECURE_KEY=1 $(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run

## make chromium: the headless browser of the dashboard's browser test (Debian packages; installed as root).
chromium:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "Chromium is missing: apt-get install chromium chromium-driver (the browser test skips, or fails in CI)"; fi

## make test: lint, make fuzz, then the whole suite (on PostgreSQL when DATABASE_URL is set, else SQLite);
## the suite runs last so that its summary closes the output.
test: lint chromium
	$(MAKE) fuzz
	$(VENV)/bin/pytest -n 2 --dist loadfile

## make fuzz: Schemathesis against gunicorn on a fresh PostgreSQL database (bin/fuzz; FUZZ_MAX_EXAMPLES=5 for a
## quick local run). Fails on any failure Schemathesis finds that .ci/fuzz/schemathesis.toml does not accept.
fuzz: $(STAMP)
	bin/fuzz

bench: $(STAMP)
	$(PY) bench/ledger.py

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache .mypy_cache .hypothesis staticfiles
