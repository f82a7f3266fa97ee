# lanchat: a registry and a peer for chatting on a LAN.
# `make help` lists the targets.

CARGO  ?= cargo
ARGS   ?=
# Seconds between the demo scripts' steps, so a class can follow on a
# projector; DEMO_PACE=0 runs them at full speed.
DEMO_PACE ?= 2
NX_VENV := target/nx-venv
NX      := $(NX_VENV)/bin/nx-27017

.PHONY: help build test lint bench run-registry run-peer demo demo-tmux clean

help:
	@echo "make build         release build of bin/registry and bin/peer"
	@echo "make test          the whole test suite (starts its own MongoDB-compatible server)"
	@echo "make lint          rustfmt check and clippy (with and without MongoDB), warnings as errors"
	@echo "make bench         benchmarks on the release binaries: a table and target/bench/results.json"
	@echo "                   (ARGS=--quick: under 2 minutes; ARGS=\"--only rooms,footprint\": some sections)"
	@echo "make run-registry  start a registry on 0.0.0.0:15600 (embedded store registry.db); ARGS=... for more"
	@echo "make run-peer      start a peer (ARGS=\"--registry HOST:15600\" to reach another machine)"
	@echo "make demo          scripted classroom demo: a registry and three peers on loopback,"
	@echo "                   DEMO_PACE seconds between steps (default 2; DEMO_PACE=0: full speed)"
	@echo "make demo-tmux     the same demo in tmux, the three students side by side, each pane"
	@echo "                   an interactive peer once its script is done"

build:
	$(CARGO) build --release --bins

# The release binaries, rebuilt only when a source changed, so that
# `make run-peer` in several terminals at once starts the built peer
# instead of several cargo runs waiting on each other's lock.
RELEASE := target/release
BINS    := $(RELEASE)/peer $(RELEASE)/registry
SOURCES := Cargo.toml Cargo.lock $(shell find src bin -name '*.rs')

$(BINS): $(SOURCES)
	$(CARGO) build --release --bins
	@touch $(BINS)

# The MongoDB tests need a server: with MONGODB_URI unset they start a
# throwaway nx-27017 (a MongoDB-wire-compatible server from PyPI) from this venv.
$(NX):
	python3 -m venv $(NX_VENV)
	$(NX_VENV)/bin/pip install --quiet nx-27017==0.8.1

test: $(NX)
	NX27017=$(abspath $(NX)) $(CARGO) test --lib --bins --tests

# Registry throughput and concurrency, room latency, the ngircd baseline
# (installed from Debian by the bench when missing), footprint (BENCHMARKS.md).
bench: $(NX)
	$(CARGO) build --release --bins
	NX27017=$(abspath $(NX)) $(CARGO) bench --bench lanchat -- $(ARGS)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --no-default-features -- -D warnings

run-registry: $(RELEASE)/registry
	$(RELEASE)/registry $(ARGS)

run-peer: $(RELEASE)/peer
	$(RELEASE)/peer $(ARGS)

demo: $(BINS)
	DEMO_PACE=$(DEMO_PACE) demos/run.sh target/release

demo-tmux: $(BINS)
	DEMO_PACE=$(DEMO_PACE) demos/tmux.sh target/release

clean:
	$(CARGO) clean
