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

# --- Fuzzing the wire decoders (Sources/WireFuzz; results in bench/RESULTS.md) ---------------
# fuzz-build: libFuzzer + AddressSanitizer, release, in its own scratch path (.build-fuzz).
#   FUZZING selects the libFuzzer entry point in Sources/WireFuzz/main.swift, which declares
#   LLVMFuzzerRunDriver with @_extern(c) (hence the Extern feature); main.swift says why.
# fuzz-smoke: a bounded run over a temporary copy of the seed corpus; fails on a crash, a
#   timeout or the memory limit (libFuzzer's exit status). fuzz: the same for FUZZ_SECONDS.
# Crash inputs land in .build-fuzz/findings/; replay one with `.build-fuzz/release/WireFuzz FILE`
# (or a plain build's `.build/debug/WireFuzz FILE`), and add it to the corpus once fixed.
# SWIFT_BACKTRACE=enable=no: the Swift backtracer would own SIGILL and libFuzzer would write no
# crash input. detect_leaks=0: the Swift runtime's lazily built caches look like leaks to LSan.
FUZZ_SCRATCH  := .build-fuzz
FUZZ_BIN      := $(FUZZ_SCRATCH)/release/WireFuzz
FUZZ_CORPUS   := Tests/Fixtures/wire-corpus
FUZZ_SECONDS  ?= 600
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_OPTIONS  := -timeout=5 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
                 -artifact_prefix=$(FUZZ_SCRATCH)/findings/
FUZZ_ENV      := SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0
FUZZ_RUN       = work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && cp $(FUZZ_CORPUS)/* "$$work"/ && \
                 mkdir -p $(FUZZ_SCRATCH)/findings && \
                 $(FUZZ_ENV) $(FUZZ_BIN) "$$work" $(FUZZ_OPTIONS)
.PHONY: fuzz-build fuzz-smoke fuzz fuzz-replay

fuzz-build: deps
	$(SWIFT) build -c release --product WireFuzz --scratch-path $(FUZZ_SCRATCH) \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
	  -Xswiftc -enable-experimental-feature -Xswiftc Extern

fuzz-smoke: fuzz-build
	$(FUZZ_RUN) -max_total_time=$(FUZZ_SMOKE_SECONDS)

fuzz: fuzz-build
	$(FUZZ_RUN) -max_total_time=$(FUZZ_SECONDS)

# The committed corpus through the plain (debug) build: seconds, no libFuzzer needed.
fuzz-replay: deps
	$(SWIFT) build --product WireFuzz
	.build/debug/WireFuzz $(FUZZ_CORPUS)
