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
}

fn echo(payload: &[u8]) -> CallResult {
    Ok(payload.to_vec())
}
