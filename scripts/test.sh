#!/usr/bin/env bash
# The one test command (README, .ci/run): on a fresh Debian machine with Rust it installs what
# is missing, builds the example actors to wasm and signs them, then runs every test, clippy
# (-D warnings) and rustfmt --check, for the host workspace and the actors workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
weft_setup

step() { printf '\n==> %s\n' "$*"; }

if cargo nextest --version >/dev/null 2>&1; then
  build_tests() { cargo nextest run --locked --workspace --no-run; }
  run_tests() { cargo nextest run --locked --workspace --no-fail-fast; }
else
  build_tests() { cargo test --locked --workspace --no-run; }
  run_tests() { cargo test --locked --workspace --no-fail-fast; }
fi

# One build, one profile (dev, dependencies optimised: see Cargo.toml). Building the tests
# builds the `weft` binary too, with the same features: a separate `cargo build -p weft-host`
# would resolve features differently and compile shared dependencies twice.
step "building weft and the tests"
build_tests

step "building and signing the example actors (weft build)"
# A key store of its own, so a test run never writes keys into ~/.weft.
WEFT_HOME="$PWD/target/weft-home" target/debug/weft build --workspace actors
# Actors of the older ABI generations, from the SDK crates of their time (a workspace of its
# own: see actors/legacy/Cargo.toml).
WEFT_HOME="$PWD/target/weft-home" target/debug/weft build --workspace actors/legacy

step "running the tests"
run_tests
# The actor SDK's unit tests run natively (its HTTP request reader and answer writer are plain
# Rust over MessagePack); the actors workspace otherwise builds for wasm32 only.
host_triple="$(rustc -vV | sed -n 's/^host: //p')"
(cd actors && cargo test --locked -p weft-actor --target "$host_triple")
if cargo nextest --version >/dev/null 2>&1; then
  cargo test --locked --workspace --doc # nextest does not run doctests
fi

step "clippy and rustfmt"
cargo clippy --locked --all-targets -- -D warnings
cargo fmt --check
(cd actors && cargo clippy --locked -- -D warnings && cargo fmt --check)
(cd actors && cargo clippy --locked -p weft-actor --all-targets --target "$host_triple" -- -D warnings)
(cd actors/legacy && cargo clippy --locked -- -D warnings && cargo fmt --check)
# The benchmarks are a workspace of their own (see bench/Cargo.toml): formatted here, built
# and run only by `cargo bench`, never in CI.
(cd bench && cargo fmt --check)
# (m)'s wasi:http hello, a workspace of its own built only by the cores benchmark.
(cd bench/wasi-hello && cargo fmt --check)

step "all checks passed"
