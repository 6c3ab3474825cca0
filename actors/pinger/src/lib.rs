//! pinger: for each HTTP request, calls another actor's `Ping` with the request's body and
//! answers with what it said. `GET /` calls ponger by its call alias (`weft/examples/ponger`);
//! `GET /to/TARGET` calls TARGET, a call alias or a module key. A failed call (no such actor,
//! refused) is answered 502 with the host's reason.

use weft_actor::contracts::httpserver::{HttpRequest, HttpResponse};
use weft_actor::http;

/// ponger's call alias.
const PONGER: &str = "weft/examples/ponger";

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve(handle);
}

fn handle(request: &HttpRequest) -> HttpResponse {
    let target = request.path.strip_prefix("/to/").unwrap_or(PONGER);
    match weft_actor::actor::call(target, "Ping", &request.body) {
        Ok(answer) => http::response(200, "text/plain", answer),
        Err(error) => http::response(502, "text/plain", format!("{target}: {error}")),
    }
}
