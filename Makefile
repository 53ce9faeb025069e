# hailo-ollama-service developer targets. The test command of the README is
# `make check`; it is what .ci/run calls.
PYTHON ?= /usr/bin/python3
PYTEST = $(PYTHON) -m pytest
# Debian releases of the booted tests (each gets the whole life cycle), and
# the release of `make demo` (trixie: what a new Pi owner has).
SUITES ?= trixie bookworm
SUITE ?= trixie
VERSION := $(shell dpkg-parsechangelog -S Version 2>/dev/null || sed -n '1s/.*(\(.*\)).*/\1/p' debian/changelog)

.PHONY: all lint test test-unit test-standin test-package test-system check deb standin-debs generate bench clean demo demo-stop bench-system

all: test

## Lint: ruff over the whole tree (ruff.toml), mypy over the package
## (mypy.ini). The pinned linters live in a virtualenv made on first use.
LINT_ENV ?= .lint-env
$(LINT_ENV)/.installed: tools/lint-requirements.txt
	$(PYTHON) -m venv $(LINT_ENV)
	$(LINT_ENV)/bin/pip install --quiet --disable-pip-version-check -r tools/lint-requirements.txt
	touch $@

lint: $(LINT_ENV)/.installed
	$(LINT_ENV)/bin/ruff check .
	$(LINT_ENV)/bin/mypy hailo_ollama_service

## Unit tests: no root, seconds.
test test-unit:
	$(PYTEST) tests/unit

test-standin:
	$(PYTEST) tests/standin

## Package tests: build the .deb, lintian, contents, shellcheck (root).
test-package:
	$(PYTEST) tests/package

## Booted-container life cycle (root, systemd-nspawn, mmdebstrap), once per
## release in SUITES, the releases at the same time (tests/system/run-suites:
## lines prefixed with the release); every release runs to its end even when
## another one failed.
test-system:
	tests/system/run-suites $(PYTHON) $(SUITES)

## Everything: what the README's test command and CI run.
check: test-unit test-standin test-package test-system

deb:
	tools/build-deb --outdir dist

standin-debs:
	tests/standin/build-debs dist/standin

## Regenerate the files derived from the settings schema.
generate:
	$(PYTHON) -m hailo_ollama_service.config.generate conffile > etc/hailo/hailo-ollama.yaml
	$(PYTHON) -m hailo_ollama_service.config.generate templates > debian/templates
	$(PYTHON) -m hailo_ollama_service.config.generate preseed > examples/preseed.cfg
	$(PYTHON) -m hailo_ollama_service.config.generate settings-table | $(PYTHON) tools/splice-generated README.md settings-table

bench:
	$(PYTHON) bench/render_bench.py

## Booted-container figures (root): apt install, start overhead, edit latency.
bench-system:
	$(PYTHON) bench/system_bench.py

clean:
	rm -rf dist build .pytest_cache *.egg-info .lint-env .ruff_cache .mypy_cache
	find . -name __pycache__ -prune -exec rm -rf {} +

## A throwaway container with the package installed, API on 127.0.0.1:11434.
demo:
	HOS_SUITE=$(SUITE) tools/demo up

demo-stop:
	tools/demo down
