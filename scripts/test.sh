#!/usr/bin/env bash
# The one test command (README, .ci/run): on a fresh Debian machine with Rust it installs what
# is missing, builds the example actors to wasm and signs them, then runs every test, clippy
# (-D warnings) and rustfmt --check, for the host workspace and the actors workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
weft_setup

step() { printf '\n==> %s\n' "$*"; }

# One build profile (dev, with optimised dependencies: see Cargo.toml) for the CLI and the tests.
step "building weft"
cargo build --locked -p weft-host --bin weft

step "building and signing the example actors (weft build)"
# A key store of its own, so a test run never writes keys into ~/.weft.
WEFT_HOME="$PWD/target/weft-home" target/debug/weft build --workspace actors

step "running the tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
  cargo test --locked --workspace --doc
else
  cargo test --locked --workspace --no-fail-fast
fi

step "clippy and rustfmt"
cargo clippy --locked --all-targets -- -D warnings
cargo fmt --check
(cd actors && cargo clippy --locked -- -D warnings && cargo fmt --check)

step "all checks passed"
