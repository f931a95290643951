# Firebreak: `make run` (portal with demo data) and `make test` (the whole suite) are all a newcomer needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test lint format lock install migrate seed bench clean-var stop-db

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

install: $(VENV)/.installed

# The portal with demo data: web + Celery worker + beat. Ctrl-C stops everything, the embedded database included.
# Links in e-mails point at the port it serves on (PORT=8001 make run), unless FIREBREAK_BASE_URL is set.
run: export FIREBREAK_BASE_URL ?= http://127.0.0.1:$(PORT)
run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(PY) manage.py migrate --noinput
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(PY) manage.py createcachetable
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(PY) manage.py seed_demo
	@echo "Firebreak: http://127.0.0.1:$(PORT)/admin/  API: http://127.0.0.1:$(PORT)/api/docs/"
	@trap '$(PY) -m config.devdb stop' EXIT; DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(VENV)/bin/honcho start -f Procfile

# The whole suite. With DATABASE_URL unset it uses the embedded PostgreSQL, and stops it afterwards
# unless it was already running (a `make run` in another terminal keeps its database).
test: install
	@if [ -z "$$DATABASE_URL" ] && ! $(PY) -m config.devdb is-running; then started=1; fi; \
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ -n "$$started" ]; then $(PY) -m config.devdb stop >/dev/null; fi; exit $$status

lint: install
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	DJANGO_DEBUG=true $(PY) manage.py makemigrations --check --dry-run

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Regenerate the pinned versions from the ranges in pyproject.toml.
lock:
	rm -rf /tmp/firebreak-lock && $(PYTHON) -m venv /tmp/firebreak-lock
	/tmp/firebreak-lock/bin/pip install --quiet '.[dev]'
	/tmp/firebreak-lock/bin/pip freeze --exclude firebreak > requirements.lock

# Benchmarks (bench/, issue 8): loads BENCH_SCALE (small by default; 1m = the full set) into a database of its own
# if it does not hold that scale yet, then runs every benchmark and prints the table. Never the embedded database:
# BENCH_DATABASE_URL must name a database whose name contains "bench" (its data is replaced). Needs `wrk`.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/firebreak_bench
BENCH_SCALE ?= small
bench: install
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.createdb
	DATABASE_URL=$(BENCH_DATABASE_URL) BENCH_SCALE=$(BENCH_SCALE) DJANGO_DEBUG=true DJANGO_SETTINGS_MODULE=bench.settings \
		$(PY) manage.py migrate --noinput
	DATABASE_URL=$(BENCH_DATABASE_URL) BENCH_SCALE=$(BENCH_SCALE) DJANGO_DEBUG=true DJANGO_SETTINGS_MODULE=bench.settings \
		$(PY) -m bench.run $(BENCH_ONLY)

stop-db:
	$(PY) -m config.devdb stop

clean-var: stop-db
	rm -rf var
