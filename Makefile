# auditlake: `make run` serves on http://127.0.0.1:8080, `make test` runs lint,
# types and the whole test suite. Both create .venv and install from the lock
# files in requirements/ (hash-checked), so every machine gets the versions the
# tests passed with. `make lock` refreshes the locks after a pyproject.toml edit.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: run test lint lock lock-upgrade unit integration acceptance bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What serving needs: the runtime lock, then the project itself without deps.
$(VENV)/.run-installed: requirements/run.lock pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) --require-hashes -r requirements/run.lock
	$(PIP_INSTALL) --no-deps -e .
	touch $@

# The test tools on top (the same pins for everything run.lock has).
$(VENV)/.test-installed: requirements/test.lock $(VENV)/.run-installed
	$(PIP_INSTALL) --require-hashes -r requirements/test.lock
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/auditlake serve

lint: $(VENV)/.test-installed
	$(BIN)/python scripts/lockfile.py check
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest

# Keeps existing pins where pyproject.toml still allows them; lock-upgrade
# moves every pin to the newest allowed version.
lock: | $(BIN)/python
	$(PIP_INSTALL) uv==$(UV_VERSION)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/lockfile.py write

lock-upgrade: | $(BIN)/python
	$(PIP_INSTALL) uv==$(UV_VERSION)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/lockfile.py write --upgrade

unit: $(VENV)/.test-installed
	$(BIN)/pytest tests/unit

integration: $(VENV)/.test-installed
	$(BIN)/pytest tests/integration

acceptance: $(VENV)/.test-installed
	$(BIN)/pytest tests/acceptance

bench: $(VENV)/.test-installed
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/poll.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
