# One task runner. `make demo` and `make test` bootstrap .venv from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: install ui-deps demo test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install  ## the main job: the offline storyboard pipeline on its embedded defaults
	$(BIN)/boardflow demo

test: install ui-deps
	$(BIN)/python -m pytest

# Debian's Chromium for the UI checks in tests/ui (driven by Playwright's Python package, never `playwright
# install`). Installs only when missing and we are root; otherwise says so, and those tests skip with the reason.
ui-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) \
			|| echo "ui-deps: apt-get could not install chromium; the UI tests will be skipped"; \
	else echo "ui-deps: /usr/bin/chromium is missing and this is not root; the UI tests will be skipped"; fi

lint: install
	$(BIN)/ruff check generators flows blocks deployments tests bench
	$(BIN)/ruff format --check generators flows blocks deployments tests bench

format: install
	$(BIN)/ruff format generators flows blocks deployments tests bench
	$(BIN)/ruff check --fix generators flows blocks deployments tests bench

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .boardflow .pytest_cache
