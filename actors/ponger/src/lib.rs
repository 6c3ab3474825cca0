//! ponger: answers `Ping` with `pong: ` and what it was sent. It holds no capability and is
//! reached only by other actors (pinger calls it by its call alias, `weft/examples/ponger`).

/// Registers `Ping`; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    weft_actor::wapc::register_function("Ping", ping);
    weft_actor::health::serve();
}

fn ping(payload: &[u8]) -> weft_actor::wapc::CallResult {
    let mut answer = b"pong: ".to_vec();
    answer.extend_from_slice(payload);
    Ok(answer)
}
