//! wasmCloud 0.15–0.18's hello: every HTTP request is answered `Hello, world!`, the same work
//! as Weft's `hello` actor, so bench (j) measures what serving an older generation costs.

extern crate wasmcloud_actor_core as actor;
extern crate wasmcloud_actor_http_server as http;

use wapc_guest::HandlerResult;

#[actor::init]
pub fn init() {
    http::Handlers::register_handle_request(hello);
}

fn hello(_: http::Request) -> HandlerResult<http::Response> {
    Ok(http::Response {
        status_code: 200,
        status: "OK".to_string(),
        header: [("content-type".to_string(), "text/plain".to_string())].into(),
        body: b"Hello, world!\n".to_vec(),
    })
}
