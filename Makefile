# WECARE.DIGITAL — `make run` starts the whole platform locally; `make test` runs lint and every test.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
OIDC_PROVIDER := e2e/oidc-provider
# pytest-xdist processes of `make test`, each with its own test database and AWS emulator.
TEST_WORKERS ?= 2

.PHONY: run password test lint install system-deps clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: system-deps $(BIN)/.installed $(OIDC_PROVIDER)/node_modules/.installed

# Debian packages the platform and its tests need (apt-get runs only when one is missing):
# postgresql (the test database server), python3-venv (Debian's python3 ships venv without pip).
# chromium: the browser tests (Playwright drives Debian's build; it cannot download its own).
APT_PACKAGES := postgresql chromium
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
		$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The OpenID provider the end-to-end sign-in test starts (npm package oidc-provider), installed
# exactly as locked; again only when node_modules is missing or the lock changed.
$(OIDC_PROVIDER)/node_modules/.installed: $(OIDC_PROVIDER)/package-lock.json | system-deps
	cd $(OIDC_PROVIDER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	scripts/run-local.sh

# A new password for the local login of `make run` (scripts/manage.sh sets the local environment).
password: install
	scripts/manage.sh ensure_local_login --reset-password

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# cfn-lint checks every CloudFormation template of deploy/ (they are deployed on the emulator by the tests).
# makemigrations --check only compares models with migrations: an in-memory database is enough.
test: install
	$(BIN)/cfn-lint deploy/*.yaml
	scripts/with-services.sh bash -c 'ruff check . && ruff format --check . && \
		DATABASE_URL=sqlite://:memory: python manage.py makemigrations --check --dry-run && \
		pytest -n $(TEST_WORKERS) --dist loadfile'

clean:
	rm -rf $(VENV) .run staticfiles
