#!/usr/bin/env bash
# The quickstart: on a Debian machine with Rust, installs what is missing, builds `weft`, builds
# and signs the app's actors, and runs the app (default: examples/kvcounter) until Ctrl-C.
# No NATS, no Redis: providers run in process.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
weft_setup_rust
cargo build --locked -q -p weft-cli --bin weft
exec target/debug/weft up --build "${1:-examples/kvcounter/app.toml}"
