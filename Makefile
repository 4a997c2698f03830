# Consent-based SMS texting for car dealerships.
# Local tooling lives in a project-local virtualenv (.venv); never rely on globally installed copies.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help
comma := ,

.PHONY: help venv dev token lint-template checkov browser test-local build test lint bench

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

token: venv ## sign a staff user in to the local user pool (created when missing) and print the ID token: make token DEALER=demo-dealer USER=staff-1 [ROLES=dealer-admin] (last line)
	@# USER must come from the command line, not from the login shell's $$USER.
	@test -n "$(DEALER)" -a "$(origin USER)" = "command line" || \
		{ echo "usage: make token DEALER=<dealer id> USER=<staff user id>" >&2; exit 2; }
	@$(PY) -m infra.local.token --dealer "$(DEALER)" --user "$(USER)" $(foreach r,$(subst $(comma), ,$(ROLES) $(ROLE)),--role "$(r)")

lint-template: venv ## cfn-lint infra/template.yaml
	$(VENV)/bin/cfn-lint infra/template.yaml

# checkov lives in a virtualenv of its own: its dependencies clash with the pins of .venv.
VENV_CHECKOV := .venv-checkov
CHECKOV_STAMP := $(VENV_CHECKOV)/.installed

$(CHECKOV_STAMP): infra/requirements-checkov.txt
	$(PYTHON) -m venv $(VENV_CHECKOV)
	$(VENV_CHECKOV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

# Fails on any failed check. A check that does not apply is skipped in its resource's Metadata
# (checkov: skip: id + comment), each with its reason; --skip-download: nothing is fetched from
# the vendor's platform (the checks are the installed version's, the same everywhere).
checkov: $(CHECKOV_STAMP) ## checkov's CloudFormation checks on infra/template.yaml (pinned, .venv-checkov)
	$(VENV_CHECKOV)/bin/checkov --file infra/template.yaml --framework cloudformation --quiet --compact --skip-download

# The portal's browser test drives Debian's Chromium through its chromedriver (no browser download).
BROWSER_BINS := /usr/bin/chromium /usr/bin/chromedriver
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser: ## install Debian's chromium and chromium-driver for the portal's browser test (apt-get, once)
	@if ls $(BROWSER_BINS) >/dev/null 2>&1; then exit 0; fi; \
	echo "browser: installing Debian's chromium and chromium-driver"; \
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null \
		|| { echo "browser: apt-get install chromium chromium-driver failed" >&2; exit 1; }; \
	ls $(BROWSER_BINS) >/dev/null

test-local: venv browser ## tests of the local stack (infra/local/tests), the portal in Chromium, the API description
	API_SAMPLES_DIR=$(API_SAMPLES) $(PY) -m pytest -q infra/local/tests

# --- Rust targets ---
# One build profile (dev) for tests and the local stack, so the AWS SDK compiles once; only the
# small workspace crates differ between the test build (test-util fakes) and the functions'.

CARGO ?= cargo
CARGO_FEATURES := --workspace --all-targets --all-features

.PHONY: fmt fmt-check clippy test-rust fuzz chaos bench-lib bench-build deploy sam lambda-target real-words provision-numbers replay-publish-failures redrive

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check: ## check formatting
	$(CARGO) fmt --all -- --check

clippy: ## lint the Rust code, warnings are errors
	$(CARGO) clippy $(CARGO_FEATURES) -- -D warnings

lint: fmt-check clippy lint-template checkov ## every static check (fmt, clippy, cfn-lint, checkov)

# The handler and security tests write every response they see to $(API_SAMPLES); test-local holds
# each to docs/openapi.yaml.
API_SAMPLES := $(CURDIR)/target/api-samples

test-rust: venv ## unit, property, handler and emulator tests (the harness starts the emulator)
	rm -rf $(API_SAMPLES)
	API_SAMPLES_DIR=$(API_SAMPLES) $(CARGO) test $(CARGO_FEATURES)
	@# the reply classifier's figures on the labelled hard replies, per language and difficulty
	$(CARGO) test --workspace --all-features --test hard_replies -- --nocapture hard_replies_report

test: lint test-rust test-local ## everything CI runs

# What the template runs: arm64 (Graviton), built with the pinned cargo-lambda and the zig it
# cross-compiles with (both in .venv), into target/lambda/<function>/bootstrap. Executables stay
# position-independent (address randomization on); FAST_START=1 links them position-dependent for
# a shorter cold start (docs/decisions.md: the trade-off and the figures).
LAMBDA_TARGET := aarch64-unknown-linux-gnu
LAMBDA_TOOLS := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
# A target's rustflags replace cargo-lambda's build.rustflags, so its Graviton2 tuning is said again.
FAST_START_FLAGS := CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C relocation-model=static -C target-cpu=neoverse-n1" \
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C relocation-model=static"

lambda-target:
	@rustup target list --installed 2>/dev/null | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET)

build: venv lambda-target ## release build of every function for AWS (arm64, pinned cargo-lambda + zig) -> target/lambda/<function>/bootstrap [FAST_START=1]
	$(LAMBDA_TOOLS) $(if $(FAST_START),$(FAST_START_FLAGS)) $(CARGO) lambda build --release --arm64 $(RELEASE_FUNCTIONS)

fuzz: ## long property-based fuzzing (parsers, signature, classifier, phones, templates, every JSON body), bounded to 10 min
	PROPTEST_CASES=$(or $(FUZZ_CASES),5000) timeout 300 $(CARGO) test --release --all-features -p consent --lib
	PROPTEST_CASES=$(or $(FUZZ_CASES),5000) timeout 300 $(CARGO) test --release --all-features -p stack-tests --test security

# The fault run (tests/src/chaos.rs): texts and replies through the local stack while DynamoDB
# throttles and fails, indexes lag, the carrier answers 429/500 or never, instances are killed
# and the emulator restarts once; fails if a guarantee broke. `make test` runs a short one.
chaos: venv ## fault run: ~2,000 texts, ~300 replies under injected faults, seeded (SEED=N; SHORT=1; CARRIER=end-user-messaging) -> target/chaos/latest.json
	$(CARGO) build $(CARGO_FEATURES)
	timeout 3000 target/debug/chaos $(if $(SEED),--seed $(SEED)) $(if $(SHORT),--short) $(if $(CARRIER),--carrier $(CARRIER))

bench-lib: ## criterion benchmarks of the consent library
	$(CARGO) bench -p consent --bench domain

# The functions and the cold-start references are measured as release binaries; the bench
# tool itself is the dev build `make test` already made (same flags, so nothing is rebuilt).
# The functions in one command (the local stack's release profile builds them the same way, so
# nothing is rebuilt), the references in another.
RELEASE_FUNCTIONS := -p authorize -p automate -p deliver -p dispatch -p inbound -p publish -p queues -p send -p settings -p webhooks

bench-build: venv ## release binaries of the functions and the cold-start references, as deployed and with the fast start (infra/local/release.py); the bench tool (dev profile)
	$(CARGO) build $(CARGO_FEATURES)
	$(PY) -m infra.local.release $(RELEASE_FUNCTIONS) -p bench-refs
	$(PY) -m infra.local.release --fast-start $(RELEASE_FUNCTIONS) -p bench-refs

bench: venv bench-build ## system benchmarks: cold start, requests/message, throughput, dispatch burst, latency -> target/bench/latest.json
	target/debug/bench $(BENCH_ONLY)

real-words: ## maintainer: list again the real words the reply classifier never reads as typos (after changing reply-rules.tsv)
	test -x .venv-words/bin/python || $(PYTHON) -m venv .venv-words
	.venv-words/bin/pip install --quiet --disable-pip-version-check -r tools/requirements-words.txt
	.venv-words/bin/python tools/real_words.py

provision-numbers: venv ## operator: allow texting numbers for a dealer and point their webhooks at the stack: make provision-numbers TABLE=<table> ACCOUNT=AC... DEALER=<dealer id> NUMBERS="+1202555...[..+1202555...]" [BASE_URL=<stack's public base URL>] [TOKEN_SECRET_ARN=<arn>] [CARRIER_BASE_URL=https://api.twilio.com]; on End User Messaging: CARRIER=end-user-messaging ACCOUNT=<aws account id> [TOPIC_ARN=<EumRepliesTopicArn output>]
	@test -n "$(TABLE)" -a -n "$(NUMBERS)" || \
		{ echo "usage: make provision-numbers TABLE=<table> ACCOUNT=AC... DEALER=<dealer id> NUMBERS=\"+1202555...[..+1202555...]\" [BASE_URL=<the stack's PublicBaseUrl, else its ApiUrl output>] [TOKEN_SECRET_ARN=<TwilioAuthTokenSecret ARN>, else TWILIO_AUTH_TOKEN exported] [CARRIER_BASE_URL=https://api.twilio.com]" >&2; exit 2; }
	@# An auth token on make's command line would show in `ps` and the shell's history.
	@test "$(origin TWILIO_AUTH_TOKEN)" != "command line" || \
		{ echo "provision-numbers: do not give TWILIO_AUTH_TOKEN on the command line: export it, or give TOKEN_SECRET_ARN" >&2; exit 2; }
	$(PY) -m infra.provision --table "$(TABLE)" --account "$(ACCOUNT)" --dealer "$(DEALER)" $(if $(CARRIER),--carrier "$(CARRIER)") $(if $(TOPIC_ARN),--two-way-topic-arn "$(TOPIC_ARN)") $(if $(BASE_URL),--base-url "$(BASE_URL)") $(if $(CARRIER_BASE_URL),--carrier-base-url "$(CARRIER_BASE_URL)") $(if $(TOKEN_SECRET_ARN),--token-secret-arn "$(TOKEN_SECRET_ARN)") $(NUMBERS)

replay-publish-failures: venv ## operator: republish stream batches publish gave up on: make replay-publish-failures QUEUE_URL=<PublishFailures URL> FUNCTION=<publish function> [DRY_RUN=1] [MAX=100]
	@test -n "$(QUEUE_URL)" -a -n "$(FUNCTION)" || \
		{ echo "usage: make replay-publish-failures QUEUE_URL=<PublishFailures queue URL> FUNCTION=<publish function name> [DRY_RUN=1] [MAX=100]" >&2; exit 2; }
	$(PY) -m infra.replay_publish_failures --queue-url "$(QUEUE_URL)" --function-name "$(FUNCTION)" --max-messages "$(or $(MAX),100)" $(if $(DRY_RUN),--dry-run)

# QUEUE: a dead-letter queue's logical id with STACK= (CloudFormation finds it; a stack it does not know is
# taken for a local `make dev` stack), or its URL or name. infra/redrive.py says how it moves them.
redrive: venv ## operator: move a dead-letter queue's messages back to their queue: make redrive QUEUE=<OutboundDLQ|AutomationDLQ|InboundDLQ|StatusDLQ> STACK=<stack> [DRY_RUN=1] [MAX=N] [RATE=N]
	@test -n "$(QUEUE)" || \
		{ echo "usage: make redrive QUEUE=<OutboundDLQ, AutomationDLQ, InboundDLQ or StatusDLQ with STACK=<stack name>; or the queue's URL or name> [DRY_RUN=1] [MAX=<at most this many; receive, send, delete>] [RATE=<messages a second; move task>] [TO=<queue URL>] (PublishFailures: make replay-publish-failures)" >&2; exit 2; }
	$(PY) -m infra.redrive "$(QUEUE)" $(if $(STACK),--stack "$(STACK)") $(if $(DRY_RUN),--dry-run) $(if $(MAX),--max "$(MAX)") $(if $(RATE),--rate "$(RATE)") $(if $(TO),--to "$(TO)")

# The SAM CLI, pinned, in a virtualenv of its own (its dependencies clash with .venv's pins).
VENV_SAM := .venv-sam
SAM_STAMP := $(VENV_SAM)/.installed
SAM := $(VENV_SAM)/bin/sam

$(SAM_STAMP): infra/requirements-sam.txt
	$(PYTHON) -m venv $(VENV_SAM)
	$(VENV_SAM)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt
	touch $@

sam: $(SAM_STAMP) ## install the pinned AWS SAM CLI in .venv-sam (make deploy does)

# sam build runs the pinned cargo-lambda for each function (BuildMethod rust-cargolambda, arm64);
# sam deploy asks its questions and saves the answers (samconfig.toml), or takes a config file.
deploy: venv lambda-target $(SAM_STAMP) ## deploy with SAM and your AWS credentials: make deploy STACK=texting-prod (asks), or make deploy CONFIG=infra/samconfig.toml [CONFIG_ENV=prod] (no questions) [FAST_START=1]
	$(LAMBDA_TOOLS) $(if $(FAST_START),$(FAST_START_FLAGS)) $(SAM) build --template-file infra/template.yaml --beta-features --build-dir .aws-sam/build
	$(if $(CONFIG),$(SAM) deploy --template-file .aws-sam/build/template.yaml --config-file "$(abspath $(CONFIG))" --config-env "$(or $(CONFIG_ENV),default)" --no-confirm-changeset --no-fail-on-empty-changeset,$(SAM) deploy --template-file .aws-sam/build/template.yaml --guided --stack-name "$(or $(STACK),texting)" --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND)
