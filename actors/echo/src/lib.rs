//! The echo actor: operation `echo` returns its payload unchanged (an empty one included).
//! It calls no capability, so it is signed with none. Weft's tests and benchmarks use it as
//! the cheapest real actor.

use wapc_guest::prelude::*;

/// Registers the operations; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    register_function("echo", echo);
    register_function("Actor.HealthRequest", healthy);
}

/// Marks the module as speaking the wasmbus-rpc ABI (operations `Interface.Method`), so the
/// host tells its generation as it tells wasmbus-rpc's own actors'.
// The host looks the export up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn __wasmbus_rpc_version() -> u32 {
    1
}

fn echo(payload: &[u8]) -> CallResult {
    Ok(payload.to_vec())
}

/// MessagePack of `{"healthy": true}`, the answer to `Actor.HealthRequest` (written out rather
/// than encoded, to keep echo free of dependencies).
const HEALTHY: [u8; 10] = [0x81, 0xa7, b'h', b'e', b'a', b'l', b't', b'h', b'y', 0xc3];

fn healthy(_: &[u8]) -> CallResult {
    Ok(HEALTHY.to_vec())
}
