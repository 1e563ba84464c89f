# sparsegrid — the two commands a newcomer needs: `make demo` and `make test`.
# Every target installs what it needs on a fresh Debian 12 machine, as root, without asking.

SHELL        := /bin/bash
SWIFT        ?= swift
PYTHON       ?= python3
VENV         := .venv
VPY          := $(VENV)/bin/python
APT_PACKAGES := libzmq3-dev libsqlite3-dev pkg-config patchelf librsvg2-bin chromium chromium-driver fonts-dejavu-core curl iproute2 nftables shellcheck systemd
BIN          := .build/debug/sparsegrid
export SPARSEGRID_PYTHON := $(abspath $(VPY))

.PHONY: all deps venv build release dist install uninstall test test-swift test-engine demo bench bench-smoke fmt lint clean

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

# The release binary: the Swift standard library linked in statically (no libswift*.so at run
# time) and a RUNPATH to ../lib/sparsegrid, where `make dist` and `make install` put the other
# shared libraries it needs (libzmq and its dependencies, libsqlite3); --disable-local-rpath
# leaves out the $ORIGIN SwiftPM would add before it. Only the sparsegrid product: the fuzzer
# has its own release build (fuzz-build).
RELEASE_FLAGS := -c release --static-swift-stdlib --disable-local-rpath --product sparsegrid \
                 -Xlinker -rpath -Xlinker '$$ORIGIN/../lib/sparsegrid'
release: deps
	$(SWIFT) build $(RELEASE_FLAGS)

# `make dist`: dist/sparsegrid-VERSION-linux-x86_64.tar.gz, a tree that runs on a Linux host
# without a Swift toolchain: bin/sparsegrid (the release build), lib/sparsegrid/ (its shared
# libraries beyond glibc and libstdc++, each with RUNPATH $ORIGIN), share/man/man1/sparsegrid.1,
# share/sparsegrid/wheels/ (the engine's wheel, built offline with the venv's setuptools),
# share/sparsegrid/deploy/ (deploy/) and INSTALL (scripts/INSTALL.dist). scripts/dist.sh lays it
# out, checks that the binary loads every library from the tree or glibc's set, and tars it with
# sorted names, owner root and the last commit's time (the same binary gives the same bytes).
# DistBundleTests unpacks it and runs a sweep from it with no toolchain on the worker's PATH
# (and, as root, in a mount namespace where the toolchain and the system's libzmq are hidden).
# A clean release build takes ~15 min on 2 loaded cores (680 s of CPU); `make test` makes it.
#
# `make install` (as root for /usr/local) lays the same tree out under PREFIX (DESTDIR stages a
# package), less INSTALL. INSTALL_BIN installs another build instead of making the release one
# (the install test uses the debug binary; the Swift runtime's libraries it needs are left out,
# so that tree runs only beside the toolchain).
PREFIX      ?= /usr/local
RELEASE_BIN := .build/release/sparsegrid
INSTALL_BIN ?= $(RELEASE_BIN)
DIST_DIR    := dist

dist: release venv
	scripts/dist.sh tarball $(DIST_DIR) $(RELEASE_BIN) $(VPY)

install: venv $(if $(filter $(RELEASE_BIN),$(INSTALL_BIN)),release)
	$(if $(filter $(RELEASE_BIN),$(INSTALL_BIN)),,SPARSEGRID_DIST_TOOLCHAIN_LIBS=skip) \
	  scripts/dist.sh stage "$(DESTDIR)$(PREFIX)" "$(INSTALL_BIN)" $(VPY)

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/sparsegrid" "$(DESTDIR)$(PREFIX)/share/man/man1/sparsegrid.1"
	rm -rf "$(DESTDIR)$(PREFIX)/lib/sparsegrid" "$(DESTDIR)$(PREFIX)/share/sparsegrid"

# Lint first (seconds), then the Swift suites, the engine's pytest, the committed fuzz corpus
# through a plain build, and a bounded libFuzzer run over the wire decoders.
test: deps venv build lint dist bench-smoke bench-scale-smoke bench-peers-smoke bench-warm-smoke test-swift test-engine fuzz-replay fuzz-smoke

# Build first, then write the build's dirty pages out before the suites start: right after a
# link of several hundred MB, the first fsync of a test coordinator's SQLite file can wait
# tens of seconds for that writeback (seen once as six system tests timing out together).
#
# Then two passes. The suites that load the machine on purpose (a CPU hog, SIGKILLed processes,
# a headless browser, a 100k-task backup, links cut and packets dropped between network
# namespaces with dead intervals of seconds, the engine's wheel built, installed and trained
# with, the dist bundle unpacked and a sweep run from it, every deploy/ file's command lines run
# as written) run on their own, after the rest: on two cores, run alongside ~500 parallel tests
# they pushed unrelated system tests past their time limits. They also run one at a time
# (swift-testing's SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH; a toolchain without it runs
# them together, which also passes, only with less margin).
HEAVY_SUITES := LoadLivenessTests|ChaosTests|DashboardBrowserTests|BackupSizeTests|MultiHostTests|EnginePackageTests|DistBundleTests|DeployChecksTests
test-swift: deps venv
	$(SWIFT) build --build-tests
	sync
	$(SWIFT) test --skip-build --skip '$(HEAVY_SUITES)'
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=1 $(SWIFT) test --skip-build --filter '$(HEAVY_SUITES)'

test-engine: venv
	cd engine && PYTHONPATH=. ../$(VPY) -m pytest -q tests

# The CPU demo: sweeps/quick.yaml on two local workers, then the tables and the report, and
# how to browse the finished sweep (run's own dashboard ends with it).
demo: deps venv build
	$(BIN) run sweeps/quick.yaml --workers 2 --state .sparsegrid
	$(BIN) results quick --state .sparsegrid
	@echo "Browse the finished sweep in the dashboard: $(BIN) dashboard --state .sparsegrid   (then open the URL it prints)"

bench: deps
	bench/coordinator

# The coordinator benchmark, small, so it cannot rot: 500 null tasks, W = 2, both durabilities,
# one repetition, with the release binary `dist` just built. Fails if a run fails or stores
# fewer results than tasks (bench/README.md; the figures it prints are not compared).
bench-smoke: release
	BINS=$(RELEASE_BIN) DURABILITY="full normal" WORKERS=2 REPEAT=1 bench/coordinator 500 128

# sparsegrid beside Ray, Dask distributed and ipyparallel, interleaved: no-op throughput, sequential
# round trips, tasks of 5 ms; W = 2 and 8, 3 repetitions (bench/README.md). The peers live in
# bench/peers/.venv (bench/peers/setup), never in the product's venv. The table goes to stdout and
# bench/results/peers-DATE.md.
bench-peers: release
	bench/peers/setup
	BIN=$(RELEASE_BIN) bench/peers/run

# The same, small, so it cannot rot: W = 2, one repetition, 300 no-op tasks, 30 round trips, 40
# tasks of 5 ms, the table in /tmp. Fails if any system errors or any result is missing.
bench-peers-smoke: release
	bench/peers/setup
	BIN=$(RELEASE_BIN) WORKERS=2 REPEAT=1 TASKS=300 TRIPS=30 SLEEP_TASKS=40 \
	  OUT=/tmp/sparsegrid-bench-peers-smoke.md bench/peers/run

# A million tasks (bench/scale): planning, launch, coordinator memory, restart and throughput
# at 1k / 10k / 100k / 1M tasks of the null engine; the quick variant runs 1k and 10k and fails
# if a step fails or a run does not finish every task (its figures are not compared).
bench-scale: release
	BIN=$(RELEASE_BIN) bench/scale

bench-scale-smoke: release
	BIN=$(RELEASE_BIN) SIZES="1000 10000" bench/scale

# Warm engines against a process per task (bench/warm): sweeps/smoke.yaml through `sparsegrid run`,
# alternated, REPEAT=2. The quick variant runs bench/warm-smoke.yaml (two tasks, one slot) once each
# way and fails if a run fails or a task ran in the wrong mode.
bench-warm: release venv
	BIN=$(RELEASE_BIN) bench/warm sweeps/smoke.yaml

bench-warm-smoke: release venv
	BIN=$(RELEASE_BIN) WORKERS=1 SLOTS=1 REPEAT=1 bench/warm bench/warm-smoke.yaml

# Python scripts without a .py suffix: ruff lints a file named on its command line whatever its name.
PY_SCRIPTS := bench/scale bench/peers/run

fmt:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift
	$(VENV)/bin/ruff format engine bench $(PY_SCRIPTS)

# shellcheck: deploy/'s scripts here too, for a quick answer (DeployChecksTests runs it as well).
lint: deps venv
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift
	shellcheck --shell=bash deploy/slurm/*.sbatch $(wildcard deploy/*/*.sh scripts/*.sh) bench/coordinator bench/warm bench/peers/setup
	$(VENV)/bin/ruff check engine bench $(PY_SCRIPTS)
	$(VENV)/bin/ruff format --check engine bench $(PY_SCRIPTS)

clean:
	rm -rf .build .build-fuzz .sparsegrid

# --- Fuzzing the wire decoders (Sources/WireFuzz; results in bench/RESULTS.md) ---------------
# fuzz-build: libFuzzer + AddressSanitizer, release, in its own scratch path (.build-fuzz).
#   FUZZING selects the libFuzzer entry point in Sources/WireFuzz/main.swift, which declares
#   LLVMFuzzerRunDriver with @_extern(c) (hence the Extern feature); main.swift says why.
# fuzz-smoke: FUZZ_SMOKE_SECONDS over a temporary copy of the seed corpus; stops at the first
#   crash, timeout or memory-limit hit, with its stack in the log.
# fuzz: FUZZ_SECONDS in libFuzzer's fork mode, which keeps fuzzing past a crash (a known,
#   unfixed one would otherwise end every run at once).
# Both fail if the run left any input in .build-fuzz/findings/<time>/ (fork mode exits 0 even
# when a seed crashes, so the folder is what counts), and print where each one crashed.
# Replay one with `.build-fuzz/release/WireFuzz FILE` or a plain build's `.build/debug/WireFuzz FILE`.
# SWIFT_BACKTRACE=enable=no: the Swift backtracer would own SIGILL and libFuzzer would write no
# crash input. detect_leaks=0: the Swift runtime's lazily built caches look like leaks to LSan.
FUZZ_SCRATCH       := .build-fuzz
FUZZ_BIN           := $(FUZZ_SCRATCH)/release/WireFuzz
FUZZ_CORPUS        := Tests/Fixtures/wire-corpus
FUZZ_SECONDS       ?= 600
FUZZ_SMOKE_SECONDS ?= 30
FUZZ_ENV           := SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0
FUZZ_OPTIONS       := -timeout=5 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1
# $(call FUZZ_RUN,libFuzzer options): the run, then the verdict from the findings folder.
FUZZ_RUN = work=$$(mktemp -d) && log=$$(mktemp) && trap 'rm -rf "$$work" "$$log"' EXIT && \
	cp $(FUZZ_CORPUS)/* "$$work"/ && found=$(FUZZ_SCRATCH)/findings/$$(date -u +%Y%m%dT%H%M%SZ) && \
	mkdir -p "$$found" && status=0 && \
	{ $(FUZZ_ENV) $(FUZZ_BIN) "$$work" $(FUZZ_OPTIONS) -artifact_prefix="$$found/" $(1) || status=$$?; } && \
	if [ -z "$$(ls -A "$$found")" ]; then rmdir "$$found"; exit $$status; fi; \
	echo "WireFuzz: $$(ls "$$found" | wc -l) finding(s) in $$found; where each crashed:"; \
	for f in "$$found"/*; do \
	  $(FUZZ_ENV) $(FUZZ_BIN) "$$f" >"$$log" 2>&1; \
	  what=$$(grep -m1 -oE '(Fatal error|Swift runtime failure): [^/]*' "$$log" || grep -m1 -oE 'ERROR: .*' "$$log"); \
	  echo "  $$f: $$(echo "$$what" | head -c 300)"; \
	  echo "    at $$(grep -m1 -oE '/[^ ]*/Sources/[^ ]*' "$$log")"; \
	done; exit 1
.PHONY: fuzz-build fuzz-smoke fuzz fuzz-replay

fuzz-build: deps
	$(SWIFT) build -c release --product WireFuzz --scratch-path $(FUZZ_SCRATCH) \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING \
	  -Xswiftc -enable-experimental-feature -Xswiftc Extern

fuzz-smoke: fuzz-build
	@$(call FUZZ_RUN,-max_total_time=$(FUZZ_SMOKE_SECONDS))

fuzz: fuzz-build
	@$(call FUZZ_RUN,-max_total_time=$(FUZZ_SECONDS) -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)

# The committed corpus through the plain (debug) build: seconds, no libFuzzer needed.
fuzz-replay: deps
	$(SWIFT) build --product WireFuzz
	.build/debug/WireFuzz $(FUZZ_CORPUS)
