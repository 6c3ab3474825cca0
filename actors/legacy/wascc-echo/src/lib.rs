//! waSCC's echo, as its SDK wrote actors: `actor_handlers!` maps `HandleRequest` and
//! `HealthRequest`; the answer is the request itself as JSON with a GUID and a random number
//! from `wascc:extras`, and each request is logged through `wascc:logging`.

extern crate wascc_actor as actor;

use actor::prelude::*;

actor_handlers! {
    codec::http::OP_HANDLE_REQUEST => echo,
    codec::core::OP_HEALTH_REQUEST => health
}

fn echo(request: codec::http::Request) -> HandlerResult<codec::http::Response> {
    logger::default().info(&format!("echo {} {}", request.method, request.path))?;
    let body = serde_json::json!({
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "header": request.header,
        "body": String::from_utf8_lossy(&request.body),
        "guid": extras::default().get_guid()?,
        "random": extras::default().get_random(1, 6)?,
    });
    Ok(codec::http::Response::json(body, 200, "OK"))
}

fn health(_: codec::core::HealthRequest) -> HandlerResult<()> {
    Ok(())
}
