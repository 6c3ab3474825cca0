//! `wasmcloud:httpserver`: the actor's side, two ways to write a handler.
//!
//! - [`serve`]: the handler gets the contract's owned [`HttpRequest`] (a `String` for each
//!   part, a map of the headers) and returns an owned [`HttpResponse`]. Simplest to write.
//! - [`serve_borrowed`]: the handler gets a [`Request`] read in place from the call's payload
//!   (nothing copied, nothing allocated) and returns a [`Response`] written straight into the
//!   answer's bytes. The same contract on the wire; for handlers on a hot path, where the
//!   owned types cost more than the handler's own work (a hello world's invoke 1.19 → 0.72
//!   µs, `bench/benches/runtime.rs` (j′)).

mod request;
mod response;

pub use request::{HeaderValues, Headers, Request};
pub use response::Response;

use weft_contracts::httpserver::{HANDLE_REQUEST, HeaderMap, HttpRequest, HttpResponse};

/// An actor's HTTP handler, on the owned contract types.
pub type Handler = fn(&HttpRequest) -> HttpResponse;

/// An actor's HTTP handler on the borrowed ones: its answer may borrow from the request.
pub type BorrowedHandler = for<'a> fn(&Request<'a>) -> Response<'a>;

/// Registers `handler` for `HttpServer.HandleRequest`, and the health check. Call it from
/// `wapc_init`.
pub fn serve(handler: Handler) {
    HANDLER.with(|h| h.set(Some(handler)));
    crate::wapc::register_function(HANDLE_REQUEST, dispatch);
    super::health::serve();
}

/// As [`serve`], for a handler of [`Request`] and [`Response`].
pub fn serve_borrowed(handler: BorrowedHandler) {
    BORROWED_HANDLER.with(|h| h.set(Some(handler)));
    crate::wapc::register_writer(HANDLE_REQUEST, dispatch_borrowed);
    super::health::serve();
}

thread_local! {
    static HANDLER: std::cell::Cell<Option<Handler>> = const { std::cell::Cell::new(None) };
    static BORROWED_HANDLER: std::cell::Cell<Option<BorrowedHandler>> =
        const { std::cell::Cell::new(None) };
}

fn dispatch(payload: &[u8]) -> crate::wapc::CallResult {
    let request: HttpRequest = weft_contracts::decode(payload)?;
    let handler = HANDLER
        .with(|h| h.get())
        .ok_or("no HTTP handler registered")?;
    let response = handler(&request);
    // Sized for the answer once: the body, the headers, and the fields' names and
    // markers (under 64 bytes).
    let headers: usize = response
        .header
        .iter()
        .map(|(name, values)| name.len() + values.iter().map(|v| v.len() + 5).sum::<usize>() + 10)
        .sum();
    let mut answer = Vec::with_capacity(response.body.len() + headers + 64);
    weft_contracts::encode_into(&mut answer, &response)?;
    Ok(answer)
}

fn dispatch_borrowed(
    payload: &[u8],
    answer: &mut Vec<u8>,
) -> Result<(), Box<dyn std::error::Error + Sync + Send>> {
    let handler = BORROWED_HANDLER
        .with(|h| h.get())
        .ok_or("no HTTP handler registered")?;
    // The form Weft's http-server provider sends is read where it lies; any other form the
    // contract type reads (positional, a body as a list of numbers) is decoded, written
    // again in that form, and read from there.
    let rewritten;
    let request = match Request::parse(payload) {
        Some(request) => request,
        None => {
            let owned: HttpRequest = weft_contracts::decode(payload)?;
            rewritten = weft_contracts::encode(&owned)?;
            Request::parse(&rewritten).ok_or("the HTTP request did not read back")?
        }
    };
    Ok(handler(&request).encode_into(answer)?)
}

/// A response with `status`, a content type and a body.
pub fn response(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> HttpResponse {
    let mut header = HeaderMap::new();
    header.insert("content-type".into(), vec![content_type.into()]);
    HttpResponse {
        status_code: status,
        header,
        body: body.into(),
    }
}
