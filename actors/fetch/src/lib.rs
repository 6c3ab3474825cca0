//! fetch: outbound HTTP from an actor. `GET /?url=URL` asks the `wasmcloud:httpclient`
//! provider for URL and answers with its status and body; the provider's refusal (a host the
//! link does not allow, a timeout, a body over the bound) is answered 502 with its reason.

use weft_actor::contracts::httpserver::{HttpRequest, HttpResponse};
use weft_actor::{http, httpclient};

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve(handle);
}

fn handle(request: &HttpRequest) -> HttpResponse {
    let Some(url) = request
        .query_string
        .split('&')
        .find_map(|pair| pair.strip_prefix("url="))
    else {
        return http::response(400, "text/plain", "try GET /?url=http://HOST:PORT/PATH\n");
    };
    match httpclient::request("GET", url, &[]) {
        Ok(answer) => http::response(answer.status_code, "text/plain", answer.body),
        Err(error) => http::response(502, "text/plain", format!("{error}\n")),
    }
}
