# salesops-widgets: developer and CI entry points. `make help` lists the targets.
#
# Everything runs from a project virtualenv, $(VENV) (default .venv), built from pyproject.toml.
# CI runs `bash .ci/run`, which runs `make test` on a fresh clone.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV ?= .venv
BIN := $(VENV)/bin
# The first Python >= 3.11 that actually runs (a pyenv shim can exist for a version that is not
# selected, so `command -v` is not enough). Override with `make PYTHON=/path/to/python3 ...`.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
	echo $$p; break; fi; done)
# Written once the package and its dev, spark and postgres extras are installed; rebuilt when pyproject.toml changes.
STAMP := $(VENV)/.installed-dev

SAMPLES := data/samples

# Port of `make dashboards` (salesops serve finds our offline Voilà template under share/jupyter).
VOILA_PORT ?= 8866

# Two workers for two cores. --dist loadfile keeps each test file on one worker, so the browser
# tests share one Voilà server and one chromium. (Not --dist loadgroup with xdist_group marks:
# pytest-xdist 3.8 groups by rewriting item._nodeid, which pytest 9.2 no longer reads, so the
# marks are silently ignored.)
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: help venv install sample chromium backends dashboards test lint format clean distclean

help:  ## list the targets
	@grep -E '^[a-z][a-z -]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

venv install: $(STAMP)  ## create the venv (VENV, default .venv) with the package and its dev, spark, postgres extras

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: no Python >= 3.11 found (tried python3.13, python3.12, python3.11, python3)." >&2; \
		echo "       Install one, or run: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)" >&2; \
		exit 1; fi
	@echo "== creating $(VENV) with $$($(PYTHON) -c 'import sys; print(sys.executable, sys.version.split()[0])')"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,postgres]'
	@# A `python3` kernelspec inside the venv that names the venv's python, so papermill and
	@# Voilà run notebooks with the project's packages whatever kernels the user has elsewhere.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (salesops)" >/dev/null
	touch $@

# $(call ensure_sample,NAME,EXTRA ARGS): generate data/samples/NAME unless it has an opportunities
# table (opportunities.parquet, or .csv for the messy one). It is written to a temporary folder
# and moved into place, so a failed run never leaves a half-written sample behind.
define ensure_sample
	@if ! ls $(SAMPLES)/$(1)/opportunities.* >/dev/null 2>&1; then \
		echo "$(BIN)/salesops sample --out $(SAMPLES)/$(1) $(2)"; \
		rm -rf $(SAMPLES)/.tmp-$(1); \
		$(BIN)/salesops sample --out $(SAMPLES)/.tmp-$(1) $(2) >/dev/null; \
		rm -rf $(SAMPLES)/$(1); \
		mv $(SAMPLES)/.tmp-$(1) $(SAMPLES)/$(1); \
	fi
endef

sample: $(STAMP)  ## make sure the sample CRM exports data/samples/{default,messy} are there
	$(call ensure_sample,default,)
	$(call ensure_sample,messy,--messy)

chromium:  ## make sure Debian's chromium is at /usr/bin/chromium (installs it with apt as root)
	bash scripts/ensure_chromium.sh

backends:  ## make sure Java 17 (for Spark) and PostgreSQL's server are installed (apt as root)
	bash scripts/ensure_backends.sh

dashboards: $(STAMP) sample  ## serve notebooks/ on the sample data at http://127.0.0.1:8866 (VOILA_PORT)
	$(BIN)/salesops serve --data $(SAMPLES)/default --port $(VOILA_PORT)

test: $(STAMP) chromium backends sample  ## run the whole test suite (PYTEST_ARGS to change pytest's options)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove caches and test artifacts (keeps the venv and the samples)
	rm -rf .pytest_cache .ruff_cache .hypothesis tmp build dist *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +

distclean: clean  ## also remove the venv (the committed samples stay)
	rm -rf $(VENV) $(SAMPLES)/.tmp-*
