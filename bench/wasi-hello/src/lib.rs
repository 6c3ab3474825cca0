//! wasi-hello: answers every HTTP request with `Hello, world!`, the bytes hello (the Weft
//! actor) and the native hyper baseline answer, as a wasi:http component that `wasmtime
//! serve` runs. What it is not: a Weft actor (it has no claims and speaks no waPC).

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Hello);

const HELLO: &[u8] = b"Hello, world!\n";

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        // The hello actor's answer exactly: its status (200, the default), headers and body
        // (with its length, as the others send it, rather than chunked).
        let headers = Fields::new();
        let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
        let _ = headers.set("content-length", &[HELLO.len().to_string().into_bytes()]);
        let response = OutgoingResponse::new(headers);
        // A fresh response's body is there to take once. Returning without a response makes
        // `wasmtime serve` answer 500, which the benchmark's wrk run reports as a failure.
        let Ok(body) = response.body() else { return };
        ResponseOutparam::set(response_out, Ok(response));
        if let Ok(out) = body.write() {
            let _ = out.blocking_write_and_flush(HELLO);
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
