//! # weft-http-server — `wasmcloud:httpserver` on hyper
//!
//! For each link, listens on the address in the link's values (`address = "127.0.0.1:8080"`)
//! and turns every request into the actor's `HttpServer.HandleRequest` call, its answer into
//! the response. Principal type: [`HttpServer`].
//!
//! - A request body over the limit (`max_body_bytes` in the link values, default
//!   [`DEFAULT_MAX_BODY_BYTES`]) is answered `413` without calling the actor.
//! - A call that fails is answered by its kind, with the reason in the body: `403` (the
//!   actor may not be called so), `404` (no such actor), `503` with `Retry-After` (the actor
//!   is saturated or unreachable for now), `504` (past its deadline), else `500` (it trapped,
//!   failed, or answered something that is not an `HttpResponse`). The listener keeps
//!   serving.
//! - Deleting the link closes its listener at once and drains its connections: each answers
//!   the request it is serving (and any that arrives within [`IDLE_GRACE`]) with
//!   `Connection: close`, so keep-alive clients reconnect instead of failing; idle ones are
//!   closed after the grace.
//! - A listener on an address this process already listens on shares that socket instead of
//!   binding a new one. That is how a replacement provider (or a link put again with changed
//!   values) takes over a port: it never closes, and connections waiting to be accepted go
//!   to the new listener instead of being reset.
//!
//! **What it is not:** TLS or HTTP/2 termination; put a proxy in front for those.
//!
//! ```no_run
//! # async fn example(host: std::sync::Arc<dyn weft_provider_sdk::ActorInvoker>) {
//! use weft_provider_sdk::{LinkDefinition, Provider};
//! let http = weft_http_server::HttpServer::new();
//! http.start(host).await.ok();
//! let link = LinkDefinition {
//!     actor_id: "MB…".into(),
//!     contract_id: "wasmcloud:httpserver".into(),
//!     link_name: "default".into(),
//!     provider_id: "http".into(),
//!     values: [("address".to_string(), "127.0.0.1:8080".to_string())].into(),
//! };
//! http.put_link(&link).await.ok();
//! # }
//! ```
#![deny(missing_docs)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use weft_contracts::httpserver::{self as contract, HeaderMap, HttpRequest, HttpResponse};
use weft_provider_sdk::{
    ActorInvoker, Failure, LinkDefinition, Provider, ProviderCall, ProviderError, async_trait,
};

/// Default cap on a request body, bytes (4 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;
/// `Retry-After` sent with a 503, seconds: a saturated actor frees instances within its call
/// deadline, so a client that waits about this long usually finds one.
const RETRY_AFTER_SECS: &str = "1";
/// Address listened on when a link names none.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";
/// How long a draining listener keeps an idle keep-alive connection open. A request that
/// arrives within it is answered (with `Connection: close`); closing sooner would race a
/// client that is just sending one, which it would see as an error.
pub const IDLE_GRACE: Duration = Duration::from_secs(2);
/// Longest a draining listener waits for its connections' requests to be answered.
const DRAIN_WITHIN: Duration = Duration::from_secs(30);
/// Connections the kernel queues for accepting (tokio's default for `TcpListener::bind`).
const BACKLOG: u32 = 1024;

/// An actor's link: what a listener serves.
type LinkKey = (String, String);

/// The sockets this process listens on, by address, with the link each serves: a listener
/// for the same link on the same address shares the socket, so a replacement takes over the
/// port without closing it. Another link on that address is refused, as the kernel would.
static SOCKETS: Mutex<BTreeMap<SocketAddr, (LinkKey, Weak<std::net::TcpListener>)>> =
    Mutex::new(BTreeMap::new());

/// Listens on `address` for `link`: shares the socket this process already has there for
/// the same link, else binds one. Port 0 always binds a fresh one.
async fn listen(
    address: &str,
    link: &LinkKey,
) -> std::io::Result<(Arc<std::net::TcpListener>, TcpListener)> {
    let mut last_error = None;
    for candidate in tokio::net::lookup_host(address).await? {
        let shared = (candidate.port() != 0)
            .then(|| {
                SOCKETS
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get(&candidate)
                    .filter(|(owner, _)| owner == link)
                    .and_then(|(_, open)| open.upgrade())
            })
            .flatten();
        let socket = match shared {
            Some(socket) => socket,
            None => match bind(candidate, link) {
                Ok(socket) => socket,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            },
        };
        let accepting = TcpListener::from_std(socket.try_clone()?)?;
        return Ok((socket, accepting));
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "it resolves to no address")
    }))
}

fn bind(address: SocketAddr, link: &LinkKey) -> std::io::Result<Arc<std::net::TcpListener>> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    let socket = Arc::new(socket.listen(BACKLOG)?.into_std()?);
    let mut sockets = SOCKETS.lock().unwrap_or_else(PoisonError::into_inner);
    sockets.retain(|_, (_, open)| open.strong_count() > 0);
    sockets.insert(
        socket.local_addr()?,
        (link.clone(), Arc::downgrade(&socket)),
    );
    Ok(socket)
}

struct Listener {
    address: SocketAddr,
    /// The link values it was started with: the same link put again (by each host of a
    /// lattice that runs the app) changes nothing.
    values: BTreeMap<String, String>,
    /// Keeps the socket open while this listener lives (another may share it).
    _socket: Arc<std::net::TcpListener>,
    /// Dropping it starts the drain.
    stop: watch::Sender<()>,
    /// Resolves once this listener no longer accepts.
    closed: oneshot::Receiver<()>,
    /// Ends once its connections are drained. Dropping the listener leaves it draining.
    task: JoinHandle<()>,
}

impl Listener {
    /// Stops accepting now; returns what to await for the connections to drain.
    async fn close(self) -> JoinHandle<()> {
        drop(self.stop);
        let _ = self.closed.await;
        self.task
    }
}

/// The HTTP server provider.
#[derive(Default)]
pub struct HttpServer {
    host: OnceLock<Arc<dyn ActorInvoker>>,
    listeners: Mutex<HashMap<LinkKey, Listener>>,
    /// One link change at a time, held across the bind: the same link put by two hosts at
    /// once must find the first one's listener, not race it for the port.
    link_changes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer").finish_non_exhaustive()
    }
}

impl HttpServer {
    /// A provider with no listeners yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the listener for an actor's link is bound (useful with port 0).
    pub fn bound_address(&self, actor_id: &str, link_name: &str) -> Option<SocketAddr> {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listeners
            .get(&(actor_id.to_string(), link_name.to_string()))
            .map(|l| l.address)
    }
}

fn link_error(link: &LinkDefinition, reason: String) -> ProviderError {
    ProviderError::Link {
        actor_id: link.actor_id.clone(),
        reason,
    }
}

#[async_trait]
impl Provider for HttpServer {
    fn contract_id(&self) -> &str {
        contract::CONTRACT_ID
    }

    async fn start(&self, host: Arc<dyn ActorInvoker>) -> Result<(), ProviderError> {
        self.host.set(host).map_err(|_| {
            ProviderError::Backend("the HTTP server provider was started twice".into())
        })
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let host = self.host.get().cloned().ok_or_else(|| {
            ProviderError::Backend("the HTTP server provider was not started".into())
        })?;
        let _one_at_a_time = self.link_changes.lock().await;
        let key = (link.actor_id.clone(), link.link_name.clone());
        let unchanged = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .is_some_and(|listener| listener.values == link.values);
        if unchanged {
            return Ok(());
        }
        let address = link
            .values
            .get("address")
            .map_or(DEFAULT_ADDRESS, String::as_str);
        let max_body_bytes = match link.values.get("max_body_bytes") {
            Some(v) => v
                .parse()
                .map_err(|_| link_error(link, format!("max_body_bytes {v:?} is not a number")))?,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        // On the same address, the new listener shares the old one's socket; then the old
        // one drains.
        let (socket, accepting) = listen(address, &key).await.map_err(|e| {
            link_error(
                link,
                format!("cannot listen on {address}: {e}; pick another `address` in the link"),
            )
        })?;
        let bound = socket
            .local_addr()
            .map_err(|e| link_error(link, e.to_string()))?;
        let route = Arc::new(Route {
            host,
            actor_id: link.actor_id.clone(),
            max_body_bytes,
        });
        let (stop, stopped) = watch::channel(());
        let (closed_tx, closed) = oneshot::channel();
        let task = tokio::spawn(accept_loop(accepting, route, stopped, closed_tx));
        tracing::info!(actor = %link.actor_id, %bound, "HTTP listener started");
        let replaced = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key,
                Listener {
                    address: bound,
                    values: link.values.clone(),
                    _socket: socket,
                    stop,
                    closed,
                    task,
                },
            );
        if let Some(replaced) = replaced {
            // Drains in the background: the link put need not wait for its clients.
            drop(replaced.close().await);
        }
        Ok(())
    }

    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let _one_at_a_time = self.link_changes.lock().await;
        let key = (link.actor_id.clone(), link.link_name.clone());
        let removed = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        if let Some(listener) = removed {
            let address = listener.address;
            drop(listener.close().await);
            tracing::info!(actor = %link.actor_id, %address, "HTTP listener closed");
        }
        Ok(())
    }

    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        // Actors do not call the HTTP server; it calls them.
        Err(ProviderError::unknown_operation(
            contract::CONTRACT_ID,
            &call.operation,
        ))
    }

    /// Closes every listener and waits for their connections to drain (a process exiting
    /// after this loses no answer).
    async fn shutdown(&self) {
        let listeners: Vec<Listener> = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, listener)| listener)
            .collect();
        let mut draining = Vec::new();
        for listener in listeners {
            draining.push(listener.close().await);
        }
        for drained in draining {
            let _ = drained.await;
        }
    }
}

struct Route {
    host: Arc<dyn ActorInvoker>,
    actor_id: String,
    max_body_bytes: usize,
}

/// Accepts and serves connections until `stop` is signalled (or dropped); then stops
/// accepting, says so on `closed`, and drains the connections.
async fn accept_loop(
    listener: TcpListener,
    route: Arc<Route>,
    mut stop: watch::Receiver<()>,
    closed: oneshot::Sender<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        connections.spawn(serve_connection(stream, route.clone(), stop.clone()));
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closed.send(());
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_WITHIN, drained).await.is_err() {
        tracing::warn!("HTTP connections still busy after draining for {DRAIN_WITHIN:?}; closed");
    }
}

/// Serves one connection; once its listener drains, answers with `Connection: close` and
/// closes it when idle for [`IDLE_GRACE`].
async fn serve_connection(
    stream: tokio::net::TcpStream,
    route: Arc<Route>,
    mut stop: watch::Receiver<()>,
) {
    let draining = stop.clone();
    let service = service_fn(move |request| {
        let (route, draining) = (route.clone(), draining.clone());
        async move {
            let mut response = route.serve(request).await;
            // `has_changed` fails once the listener's stop sender is gone.
            if draining.has_changed().is_err() {
                response.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => Some(ended),
        _ = stop.changed() => None,
    };
    let ended = match ended {
        Some(ended) => ended,
        None => tokio::select! {
            ended = connection.as_mut() => ended,
            () = tokio::time::sleep(IDLE_GRACE) => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        },
    };
    if let Err(error) = ended {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

impl Route {
    async fn serve(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, self.max_body_bytes).collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(_) => {
                return plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "request body over the limit of {} bytes\n",
                        self.max_body_bytes
                    ),
                );
            }
        };
        let mut header = HeaderMap::new();
        for (name, value) in &parts.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            header
                .entry(name.as_str().to_string())
                .or_default()
                .push(value);
        }
        let request = HttpRequest {
            method: parts.method.as_str().to_string(),
            path: parts.uri.path().to_string(),
            query_string: parts.uri.query().unwrap_or_default().to_string(),
            header,
            body,
        };
        let payload = match weft_contracts::encode(&request) {
            Ok(payload) => payload,
            Err(error) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
        };
        let answer = match self
            .host
            .invoke_actor(&self.actor_id, contract::HANDLE_REQUEST, payload)
            .await
        {
            Ok(answer) => answer,
            Err(failure) => return failed(&self.actor_id, &failure),
        };
        match weft_contracts::decode::<HttpResponse>(&answer) {
            Ok(answer) => into_response(answer),
            Err(error) => plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "actor {} answered something that is not an HttpResponse: {error}\n",
                    self.actor_id
                ),
            ),
        }
    }
}

/// What answers a request the actor did not: the status its failure's kind maps to (403,
/// 404, 503 with `Retry-After`, 504, else 500), and a body naming the failing part. The text
/// is the host's, which never carries link values.
fn failed(actor_id: &str, failure: &Failure) -> Response<Full<Bytes>> {
    tracing::warn!(actor = %actor_id, kind = ?failure.kind, error = %failure, "actor failed an HTTP request");
    let status = StatusCode::from_u16(failure.kind.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = plain(status, format!("{failure}\n"));
    if failure.kind.is_transient() {
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    response
}

fn into_response(answer: HttpResponse) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status_code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, values) in answer.header {
        let Ok(name) = hyper::header::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for value in values {
            if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
                headers.append(name.clone(), value);
            }
        }
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Answers every request with an empty 200 (what the actor says does not matter here).
    struct Answering;

    #[async_trait]
    impl ActorInvoker for Answering {
        async fn invoke_actor(&self, _: &str, _: &str, _: Vec<u8>) -> Result<Vec<u8>, Failure> {
            weft_contracts::encode(&HttpResponse {
                status_code: 200,
                ..HttpResponse::default()
            })
            .map_err(|e| Failure::new(weft_provider_sdk::FailureKind::ActorFailed, e.to_string()))
        }
    }

    async fn started() -> HttpServer {
        let server = HttpServer::new();
        server.start(Arc::new(Answering)).await.unwrap();
        server
    }

    fn link(actor: &str, address: &str, max_body_bytes: &str) -> LinkDefinition {
        LinkDefinition {
            actor_id: actor.into(),
            contract_id: contract::CONTRACT_ID.into(),
            link_name: "default".into(),
            provider_id: "http".into(),
            values: [
                ("address".to_string(), address.to_string()),
                ("max_body_bytes".to_string(), max_body_bytes.to_string()),
            ]
            .into(),
        }
    }

    /// A free loopback address (bound and released).
    fn free_address() -> String {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    }

    /// The socket sharing is for the same link only: a replacement (another instance, or the
    /// same link with changed values) takes over the port, while another actor's link on that
    /// address is refused as the kernel would refuse it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_same_link_takes_over_a_port() {
        let address = free_address();
        let old = started().await;
        old.put_link(&link("MA", &address, "100")).await.unwrap();

        let other = old
            .put_link(&link("MB", &address, "100"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            other.contains(&format!("cannot listen on {address}")),
            "{other}"
        );

        // Changed values, same link: the port stays the same and keeps accepting.
        old.put_link(&link("MA", &address, "200")).await.unwrap();
        assert_eq!(
            old.bound_address("MA", "default").unwrap().to_string(),
            address
        );

        // A replacement instance shares the socket; the old one's shutdown leaves it open.
        let new = started().await;
        new.put_link(&link("MA", &address, "200")).await.unwrap();
        old.shutdown().await;
        std::net::TcpStream::connect(&address).expect("the port stayed open");

        // The last listener gone, the port closes.
        new.delete_link(&link("MA", &address, "200")).await.unwrap();
        assert!(std::net::TcpStream::connect(&address).is_err());
    }
}
