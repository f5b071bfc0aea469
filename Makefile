# Homeroom's two commands: `make demo` and `make test` (see README.md). Both start from a fresh
# clone: they create .venv and install what they need.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# setup.py and the C source build the relay's compiled fan-out loop: a change rebuilds it.
$(VENV)/.runtime: pyproject.toml setup.py media_relay/_fanout.c media_relay/_estimate.c | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(PIP) -e '.[dev]'
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo "Homeroom is serving on http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@# No beat and no worker here: daphne runs reminders and lesson ends itself every 30 s, from
	@# its first request on (so that reminders reach the bell live); one /healthz call starts it.
	@( for i in $$(seq 60); do sleep 1; $(BIN)/python -c "import urllib.request as u; u.urlopen('http://$(HOST):$(PORT)/healthz', timeout=2)" 2>/dev/null && break; done ) &
	HOMEROOM_PERIODIC_IN_PROCESS_SECONDS=$${HOMEROOM_PERIODIC_IN_PROCESS_SECONDS:-30} \
	HOMEROOM_SITE_URL=$${HOMEROOM_SITE_URL:-http://$(HOST):$(PORT)} \
	$(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

test: $(VENV)/.dev
	bash .ci/test.sh

lint: $(VENV)/.dev
	bash .ci/lint.sh

bench: $(VENV)/.dev
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
