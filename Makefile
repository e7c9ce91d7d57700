# WECARE.DIGITAL — `make run` starts the whole platform locally; `make test` runs lint and every test.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: run test lint install system-deps clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: system-deps $(BIN)/.installed

# Debian packages the platform and its tests need (apt-get runs only when one is missing).
APT_PACKAGES := postgresql
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: install
	scripts/run-local.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	scripts/with-services.sh bash -c 'ruff check . && ruff format --check . && \
		python manage.py makemigrations --check --dry-run >/dev/null && pytest'

clean:
	rm -rf $(VENV) .run staticfiles
