# One task runner. `make demo` and `make test` bootstrap .venv from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: install test-deps demo test test-fast lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install  ## the main job: the offline storyboard pipeline on its embedded defaults
	$(BIN)/boardflow demo

test: install test-deps  ## everything, as CI runs it
	$(BIN)/python -m pytest

# The loop for your own edits: no `prefect server start`, no workers, no browser, nothing marked slow
# (the in-process Prefect test harness still starts once, ~17 s).
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not servers and not browser"

# Debian's packages the tests drive for real: Chromium for the UI checks in tests/ui (through Playwright's Python
# package, never `playwright install`), redis-server for the shared-lock tests, PostgreSQL for the server tests.
# Installs only what is missing and only as root; otherwise says so, and those tests skip with the reason.
SYSTEM_DEPS := /usr/bin/chromium:chromium /usr/bin/redis-server:redis-server /usr/lib/postgresql/15/bin/initdb:postgresql

test-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do [ -x "$${dep%%:*}" ] || missing="$$missing $${dep#*:}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing) \
			|| echo "test-deps: apt-get could not install$$missing; the tests that need them will be skipped"; \
	else echo "test-deps: missing$$missing and this is not root; the tests that need them will be skipped"; fi

SOURCES := generators flows cli blocks deployments tests bench

# pyright checks what [tool.pyright] includes (generators/, blocks/); its Node comes from a PyPI wheel.
lint: install
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(BIN)/pyright --pythonpath $(BIN)/python

format: install
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .boardflow .pytest_cache
