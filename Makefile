# Consent-based SMS texting for car dealerships.
# Local tooling lives in a project-local virtualenv (.venv); never rely on globally installed copies.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help

.PHONY: help venv dev token lint-template test-local build test lint bench

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

# --- local stack (infra/local) ---

venv: $(VENV_STAMP) ## create .venv with the pinned local tools (moto, cargo-lambda, cfn-lint, pytest)

$(VENV_STAMP): infra/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

dev: venv ## run the whole stack locally (emulator, functions, gateway :3000, fake carrier :4010, bridge)
	$(PY) -m infra.local.dev

token: venv ## print a portal JWT: make token DEALER=demo-dealer USER=staff-1 (last line)
	@# USER must come from the command line, not from the login shell's $$USER.
	@test -n "$(DEALER)" -a "$(origin USER)" = "command line" || \
		{ echo "usage: make token DEALER=<dealer id> USER=<staff user id>" >&2; exit 2; }
	@$(PY) -m infra.local.token --dealer "$(DEALER)" --user "$(USER)"

lint-template: venv ## cfn-lint infra/template.yaml
	$(VENV)/bin/cfn-lint infra/template.yaml

test-local: venv ## tests of the local stack (infra/local/tests)
	$(PY) -m pytest -q infra/local/tests

# --- Rust targets (lead) ---
# Placeholders: the lead fills these in (cargo fmt/clippy/test, cargo lambda build, benchmarks).

build: ## build every function (placeholder)
	@echo "build: not wired yet (lead)"

test: lint-template test-local ## every test (Rust tests to be added by the lead)

lint: ## fmt/clippy (placeholder)
	@echo "lint: not wired yet (lead)"

bench: ## benchmarks (placeholder)
	@echo "bench: not wired yet (lead)"
