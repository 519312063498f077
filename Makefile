# The two commands a user needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PIP := $(VENV)/bin/python -m pip
PIN := -c constraints.txt

.PHONY: install install-dev demo test lint typecheck docs bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Stamps make `make install` idempotent: pip runs again only when the package metadata changes.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install -q $(PIN) torch==2.13.0
	$(PIP) install -q $(PIN) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q $(PIN) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/aekit demo

lint: install-dev
	$(VENV)/bin/ruff check src tests bench examples docs
	$(VENV)/bin/ruff format --check src tests bench examples docs

typecheck: install-dev
	$(VENV)/bin/mypy

test: lint typecheck
	$(VENV)/bin/python -m pytest

# The documentation site, warnings as errors (a broken reference or link fails the build)
docs: install-dev
	$(VENV)/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

bench: install-dev
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) build docs/_build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
