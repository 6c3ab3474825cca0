#!/usr/bin/env bash
# Re-pins one edge of Cargo.lock that cargo's resolver gets wrong: nuid 0.4.1 (a dependency of
# the wascap 0.13 used by the interop tests) declares `rand >= 0.8` but is written against the
# rand 0.8 API, and cargo resolves it to the newest rand in the tree. Run this after any change
# to the dependencies (cargo add, cargo update, a new crate); CI builds with --locked.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 >/dev/null # bring the lockfile up to date first
rand08=$(awk '/^name = "rand"$/ { getline; if ($3 ~ /^"0\.8\./) { gsub(/"/, "", $3); print $3 } }' Cargo.lock)
if [ -z "$rand08" ]; then
  echo "pin-lockfile: no rand 0.8 in Cargo.lock (nkeys brings it); nothing to pin" >&2
  exit 1
fi
awk -v want="rand $rand08" '
  /^name = "nuid"$/ { in_nuid = 1 }
  /^version = / && in_nuid == 1 { in_nuid = ($3 == "\"0.4.1\"") ? 2 : 0 }
  /^\[\[package\]\]$/ { in_nuid = 0 }
  in_nuid == 2 && /^ "rand / { print " \"" want "\","; next }
  { print }
' Cargo.lock > Cargo.lock.pinned
mv Cargo.lock.pinned Cargo.lock
cargo metadata --format-version 1 >/dev/null # let cargo normalise what depended on it
echo "pin-lockfile: nuid 0.4.1 -> rand $rand08"
