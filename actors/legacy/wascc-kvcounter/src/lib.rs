//! waSCC's kvcounter, as its SDK wrote actors: each HTTP request adds one to the counter
//! named by its path (`/` becoming `:`) through `wascc:keyvalue` and answers
//! `{"counter": N}`.

extern crate wascc_actor as actor;

use actor::prelude::*;

actor_handlers! {
    codec::http::OP_HANDLE_REQUEST => increment,
    codec::core::OP_HEALTH_REQUEST => health
}

fn increment(request: codec::http::Request) -> HandlerResult<codec::http::Response> {
    let key = request.path.trim_start_matches('/').replace('/', ":");
    let value = keyvalue::default().atomic_add(&key, 1)?;
    Ok(codec::http::Response::json(
        serde_json::json!({ "counter": value }),
        200,
        "OK",
    ))
}

fn health(_: codec::core::HealthRequest) -> HandlerResult<()> {
    Ok(())
}
