//! wasmCloud 0.15–0.18's echo, as its SDK wrote actors: handlers registered in
//! `#[actor::init]` (`wapc_init`), `HandleRequest` answered with the request itself as JSON,
//! each request logged through `wasmcloud:logging`.

extern crate wasmcloud_actor_core as actor;
extern crate wasmcloud_actor_http_server as http;
extern crate wasmcloud_actor_logging as logging;

use wapc_guest::HandlerResult;

#[actor::init]
pub fn init() {
    http::Handlers::register_handle_request(echo);
}

fn echo(request: http::Request) -> HandlerResult<http::Response> {
    logging::default().write_log(
        "",
        "info",
        &format!("echo {} {}", request.method, request.path),
    )?;
    let body = serde_json::json!({
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "header": request.header,
        "body": String::from_utf8_lossy(&request.body),
    });
    Ok(http::Response::json(body, 200, "OK"))
}
