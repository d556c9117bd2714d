# Ferry: `make devnet` runs the whole system, `make test` runs every test.
# Every target that needs an external tool depends on `setup`, which installs the pinned
# tools into .tools/ (idempotent; seconds when everything is present).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.tools/bin:$(HOME)/.cargo/bin:/usr/local/go/bin:$(PATH)
CARGO ?= cargo
DEVNET_DIR ?= .devnet

.PHONY: setup build build-release contracts devnet devnet-down test lint bench clean

setup:
	@bash deploy/setup.sh

build: setup
	$(CARGO) build --workspace --bins

build-release: setup
	$(CARGO) build --release --workspace --bins

# Compiles contracts/*.sol with the pinned solcjs into contracts/out (committed; a test checks
# they match a fresh compile).
contracts: setup
	node contracts/build.js

devnet: build
	target/debug/ferry-devnet --dir $(DEVNET_DIR) up

devnet-down:
	@if [ -x target/debug/ferry-devnet ]; then target/debug/ferry-devnet --dir $(DEVNET_DIR) down; \
	else echo "no devnet binary: nothing was started"; fi

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	CARGO=$(CARGO) deploy/check-crate-deps.sh
	promtool check rules deploy/prometheus/alerts.yml
	promtool check config deploy/prometheus/prometheus.yml

# Unit, app and property tests run in parallel; the end-to-end tests start their own
# networks on private loopback subnets, so they never touch a running devnet.
test: build lint
	$(CARGO) test --workspace

bench: build-release
	target/release/ferry-bench

clean:
	$(CARGO) clean
	rm -rf target/networks
