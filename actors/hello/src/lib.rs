//! hello: answers every HTTP request with `Hello, world!`, the same bytes the native hyper
//! baseline of the HTTP benchmark answers, so the two measure the same work. Written with the
//! SDK's borrowed request and direct answer (`http::serve_borrowed`), as a handler on a hot
//! path would be: the native baseline builds no owned copy of the request either.

use weft_actor::http::{self, Request, Response};

/// Registers the HTTP handler; the host calls `wapc_init` once after instantiation.
// The waPC host looks the function up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub fn wapc_init() {
    http::serve_borrowed(hello);
}

fn hello<'a>(_: &Request<'a>) -> Response<'a> {
    Response::new(200)
        .header("content-type", "text/plain")
        .body("Hello, world!\n".as_bytes())
}
