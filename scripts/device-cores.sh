#!/usr/bin/env bash
# (m) on a machine with more cores than this one (#19 item 4: N = 1, 2, 4, 8), where nothing
# can be built or installed: the lent device machine reaches no registry and may lack wrk.
#
#   scripts/device-cores.sh pack   here: builds the cores benchmark and the actors, and puts
#                                  what a run needs under target/device/ (the bench binary,
#                                  wrk and the libraries it links that a bare machine may
#                                  lack, the unsigned hello and hello-owned; where wasmtime
#                                  48 is installed (scripts/bench-tools.sh), it stripped and
#                                  gzipped and the wasi:http hello component, so that
#                                  `wasmtime serve` is the third server there too)
#   scripts/device-cores.sh run    there, from the repository root, with target/device
#                                  carried: (m) for WEFT_CORES (default 1,2,4,8), each N
#                                  against native hyper (and wasmtime serve) in the same run
#
# The rounds and seconds are WEFT_CORES_ROUNDS (default 3) and WEFT_CORES_SECS (default 5):
# about 35 s an N. Nothing here runs in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
device=target/device

case "${1:-}" in
pack)
    command -v wrk >/dev/null || { echo "wrk is not installed: run scripts/setup.sh" >&2; exit 1; }
    cargo build --locked -p weft-cli
    WEFT_HOME="$PWD/target/weft-home" target/debug/weft build --workspace actors
    built=$(cd bench && cargo bench --locked --bench cores --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
    [ -x "$built" ] || { echo "could not find the built cores benchmark" >&2; exit 1; }
    rm -rf "$device"
    mkdir -p "$device/bin" "$device/lib" "$device/target/wasm32-unknown-unknown/release"
    cp "$built" "$device/bin/cores"
    cp "$(command -v wrk)" "$device/bin/wrk"
    # wrk's libraries but the C library's own, which the other machine has.
    ldd "$(command -v wrk)" | awk '/=> \// { print $3 }' |
        grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so' |
        xargs -r -I{} cp -L {} "$device/lib/"
    cp target/wasm32-unknown-unknown/release/hello.wasm \
        target/wasm32-unknown-unknown/release/hello_owned.wasm \
        "$device/target/wasm32-unknown-unknown/release/"
    if wasmtime --version 2>/dev/null | grep -q "^wasmtime 48\."; then
        # Gzipped: the binary alone is 50 MB stripped, and what is carried is 64 MiB at most.
        strip -o "$device/bin/wasmtime" "$(command -v wasmtime)"
        gzip -9 "$device/bin/wasmtime"
        (cd bench/wasi-hello && cargo build --release --locked --target wasm32-wasip2 --target-dir ../../target)
        cp target/wasm32-wasip2/release/wasi_hello.wasm "$device/"
    else
        echo "wasmtime 48 is not installed (scripts/bench-tools.sh): (m) there will run without wasmtime serve"
    fi
    du -sh "$device"
    echo "carry target/device, and run: bash scripts/device-cores.sh run"
    ;;
run)
    [ -x "$device/bin/cores" ] || { echo "no $device/bin/cores: run 'scripts/device-cores.sh pack' first and carry target/device" >&2; exit 1; }
    command -v taskset >/dev/null || { echo "taskset is missing (Debian package util-linux)" >&2; exit 1; }
    nproc
    if [ -f "$device/bin/wasmtime.gz" ]; then
        gunzip -c "$device/bin/wasmtime.gz" > "$device/bin/wasmtime"
        chmod +x "$device/bin/wasmtime"
        export WEFT_WASMTIME="$PWD/$device/bin/wasmtime" WEFT_WASI_HELLO="$PWD/$device/wasi_hello.wasm"
    fi
    WEFT_TARGET_DIR="$PWD/$device/target" \
        PATH="$PWD/$device/bin:$PATH" \
        LD_LIBRARY_PATH="$PWD/$device/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        WEFT_CORES="${WEFT_CORES:-1,2,4,8}" \
        WEFT_CORES_ROUNDS="${WEFT_CORES_ROUNDS:-3}" \
        WEFT_CORES_SECS="${WEFT_CORES_SECS:-5}" \
        "$device/bin/cores" --bench
    ;;
*)
    echo "usage: scripts/device-cores.sh pack|run" >&2
    exit 2
    ;;
esac
