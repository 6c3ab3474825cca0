#!/usr/bin/env bash
# Installs what Weft's build and tests need on a Debian machine that has Rust (rustup):
# the wasm32 target for actors, clippy and rustfmt, the real servers the integration tests
# start (nats-server, redis-server), and the headless browser the dashboard's test drives
# (Debian's chromium and its chromedriver), and wrk for the benchmarks. Safe to run again: it
# only installs what is missing.
# Sourced by scripts/test.sh (everything) and scripts/run.sh (Rust only: `weft up` needs no
# servers); runnable on its own.
set -euo pipefail

# What building and running needs: the wasm32 target, clippy and rustfmt.
weft_setup_rust() {
  if ! command -v rustup >/dev/null 2>&1; then
    echo "setup: rustup not found; install Rust with rustup first (https://rustup.rs)" >&2
    return 1
  fi
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  local component
  for component in clippy rustfmt; do
    if ! rustup component list --installed | grep -q "^${component}"; then
      rustup component add "$component"
    fi
  done
}

# What the tests also need: the real servers they start, and a real browser.
weft_setup_servers() {
  local missing=()
  command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  # The load generator of the benchmarks' external HTTP runs (`cargo bench --bench cores`).
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  if ((${#missing[@]})); then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]} with apt-get"
    $sudo apt-get update -qq
    # The packages' own services are not used: tests start their servers on free ports.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

weft_setup() {
  weft_setup_rust
  weft_setup_servers
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  weft_setup
fi
