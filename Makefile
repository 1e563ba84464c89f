# sparsegrid — the two commands a newcomer needs: `make demo` and `make test`.
# Every target installs what it needs on a fresh Debian 12 machine, as root, without asking.

SHELL        := /bin/bash
SWIFT        ?= swift
PYTHON       ?= python3
VENV         := .venv
VPY          := $(VENV)/bin/python
APT_PACKAGES := libzmq3-dev libsqlite3-dev pkg-config librsvg2-bin
BIN          := .build/debug/sparsegrid
export SPARSEGRID_PYTHON := $(abspath $(VPY))

.PHONY: all deps venv build release test test-swift test-engine demo bench fmt lint clean

all: build

# System packages. `apt-get update` only when something is missing, so reruns are quick.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Python engine dependencies, pinned, in a venv inside the repo (ignored by git).
venv: $(VENV)/.installed
$(VENV)/.installed: engine/requirements.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r engine/requirements.txt
	touch $@

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

test: deps venv build test-swift test-engine

test-swift: deps venv
	$(SWIFT) test

test-engine: venv
	cd engine && PYTHONPATH=. ../$(VPY) -m pytest -q tests

# The CPU demo: sweeps/quick.yaml on two local workers, then the tables and the report.
demo: deps venv build
	$(BIN) run sweeps/quick.yaml --workers 2 --state .sparsegrid
	$(BIN) results --state .sparsegrid --sweep quick

bench: deps
	bench/coordinator

fmt:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift
	$(VENV)/bin/ruff format engine

lint:
	$(SWIFT) format lint --recursive Sources Tests Package.swift
	$(VENV)/bin/ruff check engine

clean:
	rm -rf .build .sparsegrid
