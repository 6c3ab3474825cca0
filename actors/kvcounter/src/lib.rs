//! kvcounter: `GET /counter/NAME` adds one to the counter NAME in the key-value store and
//! answers `{"counter":"NAME","count":N}`. Names are letters, digits, `-` and `_` (so they
//! need no JSON escaping); anything else is a 400, other paths a 404.

use weft_actor::contracts::httpserver::{HttpRequest, HttpResponse};
use weft_actor::{http, keyvalue, logging};

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve(handle);
}

fn handle(request: &HttpRequest) -> HttpResponse {
    let Some(name) = request.path.strip_prefix("/counter/") else {
        return http::response(404, "text/plain", "try GET /counter/NAME\n");
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return http::response(
            400,
            "text/plain",
            "a counter name is 1-64 of [A-Za-z0-9_-]\n",
        );
    }
    match keyvalue::increment(&format!("counter:{name}"), 1) {
        Ok(count) => http::response(
            200,
            "application/json",
            format!("{{\"counter\":\"{name}\",\"count\":{count}}}"),
        ),
        Err(error) => {
            logging::log("error", &format!("counter {name}: {error}"));
            http::response(
                503,
                "text/plain",
                format!("key-value store unavailable: {error}\n"),
            )
        }
    }
}
