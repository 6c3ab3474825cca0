//! hello: answers every HTTP request with `Hello, world!`, the same bytes the native hyper
//! baseline of the HTTP benchmark answers, so the two measure the same work.

use weft_actor::contracts::httpserver::{HttpRequest, HttpResponse};
use weft_actor::http;

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve(hello);
}

fn hello(_: &HttpRequest) -> HttpResponse {
    http::response(200, "text/plain", "Hello, world!\n")
}
