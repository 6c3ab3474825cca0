//! hello-owned: the `hello` actor written on the owned contract types (`http::serve`: the
//! request decoded into an `HttpRequest`, the answer an `HttpResponse`), as the older
//! generations' hellos are. The runtime benchmark compares them with it, and it with `hello`
//! (the same answer from a request read in place).

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
