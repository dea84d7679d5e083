# Two commands for a fresh machine: `make run` (mine the default topic on the embedded SQLite
# database, no broker) and `make test` (install test needs, start Redis/PostgreSQL, run tests).
#
# Both work in a project virtual environment, never in the interpreter's own site-packages:
# Debian's python3 is "externally managed" (PEP 668) and refuses `pip install` outside a venv.
# The venv is made from the system interpreter where there is one (3.11 or newer), so the path
# a new user has is the path CI takes; PYTHON=... picks another (pyenv, a newer Python). A stamp
# file per install, newer than pyproject.toml, means a second run installs nothing.
#
#   make run                              # crawl the configured topics, print the stats
#   make test                             # every test
#   make test PYTEST_ARGS='-x tests/test_docs.py'
#   make run VENV=/path/to/venv           # use (and, when stale, install into) another venv
#
# Reach the tools afterwards as .venv/bin/miner and .venv/bin/celery, or `. .venv/bin/activate`.

# The first of /usr/bin/python3 and python3 that is Python 3.11 or newer.
PYTHON ?= $(shell for python in /usr/bin/python3 python3; do \
  "$$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo "$$python"; break; }; \
  done)
VENV ?= .venv
PYTEST_ARGS ?=

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
# pip older than 21.3 cannot install a pyproject.toml project in editable mode (PEP 660).
PIP_FOR_EDITABLE := 21.3

.PHONY: run test venv

venv: $(BIN)/python

$(BIN)/python:
	@test -n "$(PYTHON)" || { \
	  echo "make: needs Python 3.11 or newer as /usr/bin/python3 or python3 (or name one: make PYTHON=...)" >&2; \
	  exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "make: could not create $(VENV) with $(PYTHON) (on Debian or Ubuntu: apt-get install python3-venv)" >&2; \
	  exit 1; }
	@$(BIN)/python -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (21, 3))' \
	  || $(PIP) install --upgrade 'pip>=$(PIP_FOR_EDITABLE)'

# The package and its dependencies, for `make run`.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	@$(PIP) install -e .
	@touch $@

# The test extra includes everything `make run` needs, so it satisfies that stamp too.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	@$(BIN)/miner crawl
	@$(BIN)/miner stats

test: $(VENV)/.installed-test
	@VENV=$(VENV) bash scripts/test.sh $(PYTEST_ARGS)
