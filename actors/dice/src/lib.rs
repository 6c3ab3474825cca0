//! dice: the host's built-in number generator (`wasmcloud:builtin:numbergen`) from an actor,
//! which has no randomness of its own. `GET /` answers `{"guid":"…","roll":N}` with N from 1
//! to 6; `GET /sides/S` rolls an S-sided die. A die with no sides is answered 400.

use weft_actor::contracts::httpserver::{HttpRequest, HttpResponse};
use weft_actor::{http, numbergen};

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve(handle);
}

fn handle(request: &HttpRequest) -> HttpResponse {
    let sides = match request.path.strip_prefix("/sides/") {
        None => 6,
        Some(sides) => match sides.parse::<u32>() {
            Ok(sides) if sides > 0 => sides,
            _ => return http::response(400, "text/plain", "a die has 1 or more sides\n"),
        },
    };
    let rolled = numbergen::generate_guid()
        .and_then(|guid| numbergen::random_in_range(1, sides).map(|roll| (guid, roll)));
    match rolled {
        Ok((guid, roll)) => http::response(
            200,
            "application/json",
            format!("{{\"guid\":\"{guid}\",\"roll\":{roll}}}"),
        ),
        Err(error) => http::response(503, "text/plain", format!("{error}\n")),
    }
}
