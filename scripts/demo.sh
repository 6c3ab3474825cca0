#!/usr/bin/env bash
# The quickstart: builds Weft and the echo actor, signs the actor, shows its verified claims,
# then shows that a copy changed by one byte is refused. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
weft_setup

cargo build --locked -q -p weft-cli --bin weft
weft=target/debug/weft

echo "==> weft build: compile actors/echo to wasm32 and sign it"
"$weft" build --workspace actors

echo
echo "==> weft claims inspect target/actors/echo.wasm"
"$weft" claims inspect target/actors/echo.wasm

echo
echo "==> the same module with one byte changed"
tampered=$(mktemp --suffix=.wasm)
trap 'rm -f "$tampered"' EXIT
cp target/actors/echo.wasm "$tampered"
size=$(stat -c %s "$tampered")
printf '\x00' | dd of="$tampered" bs=1 seek=$((size / 2)) conv=notrunc status=none
if "$weft" claims inspect "$tampered"; then
  echo "demo: a tampered module verified; this is a bug" >&2
  exit 1
fi
echo "(refused, as it should be)"
