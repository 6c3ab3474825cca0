//! flaky: a broken build of hello, as a bad release would be. It answers `Hello, world!` like
//! hello, but fails one call in five of each instance with an error (which the http-server
//! provider answers 500). Canary updates are tested, and shown, rolling it back.

use std::sync::atomic::{AtomicU32, Ordering};
use weft_actor::contracts::httpserver::{HANDLE_REQUEST, HttpRequest};
use weft_actor::wapc::{self, CallResult};
use weft_actor::{contracts, health, http};

/// Calls this instance took.
static CALLS: AtomicU32 = AtomicU32::new(0);

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    wapc::register_function(HANDLE_REQUEST, handle);
    health::serve();
}

fn handle(payload: &[u8]) -> CallResult {
    let _request: HttpRequest = contracts::decode(payload)?;
    if CALLS.fetch_add(1, Ordering::Relaxed) % 5 == 4 {
        return Err("flaky fails one call in five".into());
    }
    Ok(contracts::encode(&http::response(
        200,
        "text/plain",
        "Hello, world!\n",
    ))?)
}
