//! wasmCloud 0.15–0.18's kvcounter, as its SDK wrote actors: each HTTP request adds one to
//! the counter named by its path (`/` becoming `:`) through `wasmcloud:keyvalue` and answers
//! `{"counter": N}`.

extern crate wasmcloud_actor_core as actor;
extern crate wasmcloud_actor_http_server as http;
extern crate wasmcloud_actor_keyvalue as kv;

use wapc_guest::HandlerResult;

#[actor::init]
pub fn init() {
    http::Handlers::register_handle_request(increment);
}

fn increment(request: http::Request) -> HandlerResult<http::Response> {
    let key = request.path.trim_start_matches('/').replace('/', ":");
    let value = kv::default().add(key, 1)?.value;
    Ok(http::Response::json(
        serde_json::json!({ "counter": value }),
        200,
        "OK",
    ))
}
