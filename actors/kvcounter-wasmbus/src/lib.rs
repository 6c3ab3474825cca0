//! kvcounter, as a wasmCloud 0.x actor: built with `wasmbus-rpc` and the published
//! `wasmcloud-interface-httpserver` / `wasmcloud-interface-keyvalue` crates, with nothing
//! Weft-specific in it. It imports the waPC functions from `wasmbus`, speaks MessagePack, and
//! answers `Actor.HealthRequest` through the SDK. Weft's tests run it next to the Weft-SDK
//! kvcounter and expect the same answers.

use wasmbus_rpc::actor::prelude::*;
use wasmcloud_interface_httpserver::{HttpRequest, HttpResponse, HttpServer, HttpServerReceiver};
use wasmcloud_interface_keyvalue::{IncrementRequest, KeyValue, KeyValueSender};

#[derive(Debug, Default, Actor, HealthResponder)]
#[services(Actor, HttpServer)]
struct KvCounterActor {}

fn text(status_code: u16, body: String) -> HttpResponse {
    HttpResponse {
        status_code,
        header: Default::default(),
        body: body.into_bytes(),
    }
}

#[async_trait]
impl HttpServer for KvCounterActor {
    async fn handle_request(&self, ctx: &Context, req: &HttpRequest) -> RpcResult<HttpResponse> {
        let Some(name) = req.path.strip_prefix("/counter/") else {
            return Ok(text(404, "try GET /counter/NAME\n".into()));
        };
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Ok(text(
                400,
                "a counter name is 1-64 of [A-Za-z0-9_-]\n".into(),
            ));
        }
        let request = IncrementRequest {
            key: format!("counter:{name}"),
            value: 1,
        };
        match KeyValueSender::new().increment(ctx, &request).await {
            Ok(count) => {
                let mut response =
                    text(200, format!("{{\"counter\":\"{name}\",\"count\":{count}}}"));
                response
                    .header
                    .insert("content-type".into(), vec!["application/json".into()]);
                Ok(response)
            }
            Err(error) => Ok(text(503, format!("key-value store unavailable: {error}\n"))),
        }
    }
}
