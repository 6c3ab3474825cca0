//! wasmCloud 0.15–0.18's echo, as its SDK wrote actors: handlers registered in
//! `#[actor::init]` (`wapc_init`), `HandleRequest` answered with the request itself as JSON
//! with a GUID and a random number from `wasmcloud:extras`, each request logged through
//! `wasmcloud:logging`.

extern crate wasmcloud_actor_core as actor;
extern crate wasmcloud_actor_extras as extras;
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
        "guid": extras::default()
            .request_guid(extras::GeneratorRequest {
                guid: true,
                ..Default::default()
            })?
            .guid,
        "random": extras::default()
            .request_random(extras::GeneratorRequest {
                random: true,
                min: 1,
                max: 6,
                ..Default::default()
            })?
            .random_number,
    });
    Ok(http::Response::json(body, 200, "OK"))
}
