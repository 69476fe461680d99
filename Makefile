# One command each on a fresh machine with Python 3.11+, Node.js and npm:
#   make demo   — set up, then run the demo on embedded defaults
#   make test   — set up, then run the test suite (the slow soak/fault tests are in test-all)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.setup-stamp
STAMP_NPM := node_modules/.setup-stamp
PYTEST_ARGS ?=
# ape keeps packages, compilers' caches and accounts per checkout: a global ~/.ape shared by two
# checkouts mixes their dependencies (same name and version, different sources).
export APE_DATA_FOLDER ?= $(CURDIR)/.ape-data

.PHONY: setup demo test test-all lint bench clean trex-suite

setup: $(STAMP_PY) $(STAMP_NPM)
	@$(BIN)/python contracts/toolchain/prepare.py

$(STAMP_PY): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

demo: setup
	scripts/demo.sh

# ape's pytest plugin is off for the Python suite (it would start a chain for every run); the
# contract tests under tests/contracts/ape run through `ape test`, which turns it on.
test: setup
	$(BIN)/python -m pytest -p no:ape_test -m "not slow" $(PYTEST_ARGS)
	$(BIN)/ape test tests/contracts/ape -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -p no:ape_test $(PYTEST_ARGS)
	$(BIN)/ape test tests/contracts/ape

lint: setup
	$(BIN)/ruff check chain observer node indexer ta_services scripts tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

# T-REX's own test suite against a node: TREX_RPC_URL=... TREX_SRC=<T-REX checkout> make trex-suite
trex-suite: setup
	contracts/toolchain/trex-suite.sh
