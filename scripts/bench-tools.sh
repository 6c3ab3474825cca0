#!/usr/bin/env bash
# Installs what only the benchmarks need beyond scripts/setup.sh (which the tests use):
# - the `wasmtime` CLI, the third server of bench `cores` (m) (`wasmtime serve`), built from
#   crates.io at the wasmtime release the host links, 48 (a long build: about 20 minutes on 2 cores);
# - the wasm32-wasip2 target its hello component builds for.
# Safe to run again: what is there already is kept.
set -euo pipefail

WASMTIME_VERSION=48.0.8

rustup target add wasm32-wasip2
if wasmtime --version 2>/dev/null | grep -q "^wasmtime ${WASMTIME_VERSION} "; then
  echo "wasmtime ${WASMTIME_VERSION} is installed"
else
  cargo install wasmtime-cli --version "${WASMTIME_VERSION}" --locked
fi
