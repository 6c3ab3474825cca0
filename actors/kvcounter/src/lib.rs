//! kvcounter: `GET /counter/NAME` adds one to the counter NAME in the key-value store and
//! answers `{"counter":"NAME","count":N}`. Names are letters, digits, `-` and `_` (so they
//! need no JSON escaping); anything else is a 400, other paths a 404. On the SDK's borrowed
//! request (`http::serve_borrowed`): the path is read where it lies in the call's payload.

use std::borrow::Cow;
use weft_actor::http::{self, Request, Response};
use weft_actor::{keyvalue, logging};

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve_borrowed(handle);
}

fn handle<'a>(request: &Request<'a>) -> Response<'a> {
    let Some(name) = request.path().strip_prefix("/counter/") else {
        return text(404, "try GET /counter/NAME\n".as_bytes());
    };
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return text(400, "a counter name is 1-64 of [A-Za-z0-9_-]\n".as_bytes());
    }
    match keyvalue::increment(&format!("counter:{name}"), 1) {
        Ok(count) => Response::new(200)
            .header("content-type", "application/json")
            .body(format!("{{\"counter\":\"{name}\",\"count\":{count}}}").into_bytes()),
        Err(error) => {
            logging::log("error", &format!("counter {name}: {error}"));
            text(
                503,
                format!("key-value store unavailable: {error}\n").into_bytes(),
            )
        }
    }
}

fn text<'a>(status: u16, body: impl Into<Cow<'a, [u8]>>) -> Response<'a> {
    Response::new(status)
        .header("content-type", "text/plain")
        .body(body)
}
