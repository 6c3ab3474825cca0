//! waSCC's hello: every HTTP request is answered `Hello, world!`, the same work as Weft's
//! `hello` actor, so bench (j) measures what serving an older generation costs.

extern crate wascc_actor as actor;

use actor::prelude::*;

actor_handlers! {
    codec::http::OP_HANDLE_REQUEST => hello,
    codec::core::OP_HEALTH_REQUEST => health
}

fn hello(_: codec::http::Request) -> HandlerResult<codec::http::Response> {
    Ok(codec::http::Response {
        status_code: 200,
        status: "OK".to_string(),
        header: [("content-type".to_string(), "text/plain".to_string())].into(),
        body: b"Hello, world!\n".to_vec(),
    })
}

fn health(_: codec::core::HealthRequest) -> HandlerResult<()> {
    Ok(())
}
