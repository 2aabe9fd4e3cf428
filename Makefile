# Latch: `make run` starts the desktop app, `make test` runs every check and test.
# Both install what they need first (apt packages, npm packages, Rust crates).

SHELL := /bin/bash
# rustup installs cargo (and cargo install puts tauri-driver) here; later recipes must find them.
export PATH := $(HOME)/.cargo/bin:$(PATH)
.DEFAULT_GOAL := help

# Debian/Ubuntu packages: Tauri (webkit2gtk, appindicator), the Secret Service (gnome-keyring,
# secret-tool, dbus), and the real parts the tests drive (Xvfb, Chromium, WebKitWebDriver, git,
# nginx as a TLS and client-certificate gateway).
APT_PACKAGES := build-essential pkg-config curl ca-certificates \
	libdbus-1-dev libwebkit2gtk-4.1-dev libayatana-appindicator3-dev \
	gnome-keyring libsecret-tools dbus dbus-x11 xvfb chromium webkit2gtk-driver git \
	python3 python3-venv nginx openssl

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help deps deps-apt deps-rust deps-npm deps-python ui run test lint unit-and-e2e package ipc-types

help:
	@echo "make run   - install what is needed, build the UI, start the Latch desktop app"
	@echo "make test  - install what is needed, run fmt, clippy, the UI type check and every test"

deps: deps-apt deps-rust deps-npm deps-python

deps-apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing: $$missing"; \
	  guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\n# make deps: packages installed for the tests start no service (nginx on port 80)\nexit 101\n' \
	      | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null && $(SUDO) chmod +x /usr/sbin/policy-rc.d && guard=1; \
	  fi; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	  status=$$?; [ -z "$$guard" ] || $(SUDO) rm -f /usr/sbin/policy-rc.d; \
	  case " $$missing " in *" nginx "*) { command -v systemctl >/dev/null && $(SUDO) systemctl disable nginx >/dev/null 2>&1; } || true;; esac; \
	  exit $$status; \
	fi

deps-rust:
	@command -v cargo >/dev/null || { \
	  echo "Installing the Rust toolchain with rustup"; \
	  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy; }
	@. "$$HOME/.cargo/env" 2>/dev/null || true; rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt 2>/dev/null || true
	@cargo fetch --locked -q 2>/dev/null || cargo fetch -q
	@command -v tauri-driver >/dev/null || { echo "Installing tauri-driver (WebDriver for the desktop app)"; \
	  cargo install tauri-driver --locked --version '^2' -q; }

deps-npm:
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }
	@node -e 'const [M,m]=process.versions.node.split(".").map(Number); if (M<20||(M===20&&m<19)) { console.error("Node.js >= 20.19 is needed (found "+process.versions.node+")"); process.exit(1) }'
	@cd ui && npm install --no-audit --no-fund --loglevel=error
	@cd tests/fixture && npm install --no-audit --no-fund --loglevel=error

# Python `requests` is one of the unmodified clients the proxy tests use; a virtualenv holds
# mcp-atlassian and the official MCP client for the agent tests (pinned, from PyPI).
VENV := tests/fixture/.venv
deps-python: $(VENV)/.installed
	@python3 -c 'import requests' 2>/dev/null || python3 -m pip install -q requests 2>/dev/null \
	  || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-requests; }

$(VENV)/.installed: tests/fixture/requirements.txt tests/fixture/constraints.txt
	@echo "Installing mcp-atlassian and the MCP client into $(VENV)"
	@python3 -m venv $(VENV)
	@$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/fixture/requirements.txt -c tests/fixture/constraints.txt
	@touch $@

ui: deps-npm
	@cd ui && npm run --silent build

# Rewrites ui/src/ipc/generated.ts from the Rust types (the IPC test fails while it is stale).
ipc-types:
	LATCH_UPDATE_IPC=1 cargo test -p latch-desktop --locked the_generated_contract_is_current

# The Debian package (desktop app + CLI, man page, completions, systemd user unit), release build.
package: deps ui
	@scripts/package.sh

run: deps ui
	@if [ -z "$$DISPLAY" ] && [ -z "$$WAYLAND_DISPLAY" ]; then \
	  echo "No display: starting Latch under Xvfb (headless)."; \
	  xvfb-run -a cargo run -p latch-desktop; \
	else cargo run -p latch-desktop; fi

lint: deps ui
	cargo fmt --all -- --check
	cd ui && npm run --silent check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	scripts/check-architecture.sh

# UI unit tests (Vitest, mock host), the built UI in Chromium (Playwright, mock host), then every
# Rust test; the desktop binary is built first for the WebDriver test.
unit-and-e2e: deps ui
	cd ui && npm run --silent test
	cd ui && npm run --silent build:mock && npm run --silent e2e
	cargo build -p latch-desktop --locked
	scripts/with-keyring.sh cargo test --workspace --locked

test: lint unit-and-e2e

.PHONY: bench-token bench-proxy bench-desktop bench-intercept
# Benchmarks print figures; they are never part of `make test`.
bench-token: deps
	scripts/with-keyring.sh python3 bench/token.py

bench-proxy: deps
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends wrk; }
	scripts/with-keyring.sh python3 bench/proxy.py

bench-desktop: deps
	scripts/with-keyring.sh python3 bench/desktop.py

bench-intercept: deps
	scripts/with-keyring.sh python3 bench/intercept.py
