//! notes: a blob store from an actor. `PUT /NAME` stores the request's body as object NAME of
//! container `notes`; `GET /NAME` answers it (404 if there is none). What the provider refuses
//! (a name that would leave its directory, an object over its bound) is answered 400 with its
//! reason.

use weft_actor::contracts::httpserver::{HttpRequest, HttpResponse};
use weft_actor::{blobstore, http};

/// The container every note goes in.
const CONTAINER: &str = "notes";

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve(handle);
}

fn handle(request: &HttpRequest) -> HttpResponse {
    let name = request.path.trim_start_matches('/');
    let refused =
        |error: weft_actor::Error| http::response(400, "text/plain", format!("{error}\n"));
    match request.method.as_str() {
        "PUT" => match blobstore::create_container(CONTAINER)
            .and_then(|()| blobstore::put(CONTAINER, name, &request.body))
        {
            Ok(()) => http::response(201, "text/plain", "stored\n"),
            Err(error) => refused(error),
        },
        "GET" => match blobstore::get(CONTAINER, name) {
            Ok(Some(note)) => http::response(200, "text/plain", note),
            Ok(None) => http::response(404, "text/plain", format!("no note {name}\n")),
            Err(error) => refused(error),
        },
        _ => http::response(405, "text/plain", "PUT or GET /NAME\n"),
    }
}
