# One task runner. `make demo` and `make test` bootstrap .venv from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: install demo test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install  ## the main job: the offline storyboard pipeline on its embedded defaults
	$(BIN)/boardflow demo

test: install
	$(BIN)/python -m pytest

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
