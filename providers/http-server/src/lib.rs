//! # weft-http-server — `wasmcloud:httpserver` on hyper
//!
//! For each link, listens on the address in the link's values (`address = "127.0.0.1:8080"`)
//! and turns every request into the actor's `HttpServer.HandleRequest` call, its answer into
//! the response. Principal type: [`HttpServer`].
//!
//! - A request body over the limit (`max_body_bytes` in the link values, default
//!   [`DEFAULT_MAX_BODY_BYTES`], at most [`MAX_BODY_BYTES_CEILING`]) is answered `413` without
//!   calling the actor.
//! - Slow clients are bounded: a request's headers must arrive within `header_timeout_ms`
//!   (default [`DEFAULT_HEADER_TIMEOUT`]; else the connection is closed) and its body within
//!   `body_timeout_ms` (default [`DEFAULT_BODY_TIMEOUT`]; else `408`). A listener holds at most
//!   `max_connections` (default [`DEFAULT_MAX_CONNECTIONS`]) connections, and the provider
//!   at most [`DEFAULT_MAX_PROVIDER_CONNECTIONS`] over all its listeners
//!   ([`ServerLimits`]); past either a new one is answered `503` with `Retry-After` and
//!   closed. Bodies being received and served are held in memory, so the provider holds at
//!   most [`DEFAULT_MAX_BUFFERED_BODY_BYTES`] of them at once: each request reserves its
//!   `Content-Length` (or, sent chunked, its link's `max_body_bytes`) before a byte of it is
//!   read, and past the budget is answered `503` with `Retry-After`; a `Content-Length` over
//!   `max_body_bytes` is answered `413` before reading. A kept-alive connection idle between
//!   requests is closed after `header_timeout_ms` too: hyper's header-read timer starts as
//!   soon as the connection waits for a request. Link values past their ceilings are refused
//!   when the link is put.
//! - A call that fails is answered by its kind, with the reason in the body: `403` (the
//!   actor may not be called so), `404` (no such actor), `503` with `Retry-After` (the actor
//!   is saturated or unreachable for now), `504` (past its deadline), else `500` (it trapped,
//!   failed, or answered something that is not an `HttpResponse`, or one with more than
//!   [`MAX_ANSWER_HEADER_VALUES`] header values). The listener keeps serving.
//! - Deleting the link closes its listener at once and drains its connections: each answers
//!   the request it is serving (and any that arrives within [`IDLE_GRACE`]) with
//!   `Connection: close`, so keep-alive clients reconnect instead of failing; idle ones are
//!   closed after the grace.
//! - A listener on an address this process already listens on shares that socket instead of
//!   binding a new one. That is how a replacement provider (or a link put again with changed
//!   values) takes over a port: it never closes, and connections waiting to be accepted go
//!   to the new listener instead of being reset. A process that replaces another process
//!   gets the old one's socket the same way, over a Unix socket ([`share_sockets`]).
//!
//! - Started on a runtime of several workers, it serves each connection on one of its own
//!   single-threaded lanes (one per worker, at most one per core), from accept to close,
//!   instead of letting the connection move between the runtime's workers: see `lanes`.
//!   [`HttpServer::serving_on_lanes`]`(false)` serves on the runtime itself.
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

mod handover;
mod lanes;
mod wire;
pub use handover::share_sockets;
pub use wire::MAX_ANSWER_HEADER_VALUES;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use weft_contracts::httpserver as contract;
use weft_provider_sdk::{
    ActorInvoker, Failure, LinkDefinition, Provider, ProviderCall, ProviderError, async_trait,
    trace,
};

/// Default cap on a request body, bytes (4 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;
/// The largest `max_body_bytes` a link may set (32 MiB): a body is held whole in memory.
pub const MAX_BODY_BYTES_CEILING: usize = 32 << 20;
/// Default time a client has to send a request's headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send a request's body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `header_timeout_ms` or `body_timeout_ms` a link may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Default most connections one listener holds open.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default most connections one provider holds open over all its listeners (in a process
/// that runs one HTTP provider, as `weft up` and `weft provider run` do: per process).
pub const DEFAULT_MAX_PROVIDER_CONNECTIONS: usize = 8_192;
/// Default most bytes of request bodies one provider holds at once, over all its listeners.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: usize = 32 << 20;

/// What one HTTP provider holds at most, over all its listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Open connections.
    pub max_connections: usize,
    /// Bytes of request bodies being received or served.
    pub max_buffered_body_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: DEFAULT_MAX_PROVIDER_CONNECTIONS,
            max_buffered_body_bytes: DEFAULT_MAX_BUFFERED_BODY_BYTES,
        }
    }
}

/// Body bytes are reserved in units of this many (a semaphore counts in `u32`).
const BODY_UNIT: usize = 1024;

/// The most `max_connections` a link may set.
pub const MAX_CONNECTIONS_CEILING: usize = 65_536;
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
            .then(|| shared_socket(candidate, link))
            .flatten();
        let socket = match shared {
            Some(socket) => socket,
            None => match bind(candidate, link) {
                Ok(socket) => socket,
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                    // Taken: by the process this one replaces, which hands its socket over.
                    let fetched = {
                        let link = link.clone();
                        tokio::task::spawn_blocking(move || handover::fetch(candidate, &link))
                            .await
                            .ok()
                            .flatten()
                    };
                    match fetched {
                        Some(socket) => register(Arc::new(socket), link)?,
                        None => {
                            last_error = Some(error);
                            continue;
                        }
                    }
                }
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
    register(Arc::new(socket.listen(BACKLOG)?.into_std()?), link)
}

/// Records `socket` as this process's listener for `link` on its address.
fn register(
    socket: Arc<std::net::TcpListener>,
    link: &LinkKey,
) -> std::io::Result<Arc<std::net::TcpListener>> {
    let mut sockets = SOCKETS.lock().unwrap_or_else(PoisonError::into_inner);
    sockets.retain(|_, (_, open)| open.strong_count() > 0);
    sockets.insert(
        socket.local_addr()?,
        (link.clone(), Arc::downgrade(&socket)),
    );
    Ok(socket)
}

/// The socket this process listens on at `address` for `link`, if it has one.
fn shared_socket(address: SocketAddr, link: &LinkKey) -> Option<Arc<std::net::TcpListener>> {
    SOCKETS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&address)
        .filter(|(owner, _)| owner == link)
        .and_then(|(_, open)| open.upgrade())
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
pub struct HttpServer {
    host: OnceLock<Arc<dyn ActorInvoker>>,
    listeners: Mutex<HashMap<LinkKey, Listener>>,
    /// One link change at a time, held across the bind: the same link put by two hosts at
    /// once must find the first one's listener, not race it for the port.
    link_changes: tokio::sync::Mutex<()>,
    /// Connections open over all its listeners, against its most.
    slots: Arc<Semaphore>,
    /// Request body bytes held over all its listeners, in [`BODY_UNIT`]s, against its most.
    bodies: Arc<Semaphore>,
    limits: ServerLimits,
    /// Whether connections are served on lanes (see `lanes`) when the runtime has them.
    lanes: bool,
}

impl Default for HttpServer {
    fn default() -> Self {
        Self::with_limits(ServerLimits::default())
    }
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

    /// A provider that holds at most `limits` over all its listeners (each listener also
    /// keeps to its link's `max_connections`).
    pub fn with_limits(limits: ServerLimits) -> Self {
        let units = limits.max_buffered_body_bytes / BODY_UNIT;
        HttpServer {
            host: OnceLock::new(),
            listeners: Mutex::default(),
            link_changes: tokio::sync::Mutex::default(),
            slots: Arc::new(Semaphore::new(
                limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            bodies: Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS))),
            limits,
            lanes: true,
        }
    }

    /// This provider serving its connections on lanes (`true`, the default: one thread per
    /// worker of the runtime it accepts on, a connection staying on one) or on that runtime
    /// itself (`false`: a host whose other work should share the runtime's workers with its
    /// HTTP connections rather than the cores with its lanes).
    pub fn serving_on_lanes(mut self, lanes: bool) -> Self {
        self.lanes = lanes;
        self
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
        let number = |key: &str, default: u64, ceiling: u64| match link.values.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n > 0 && n <= ceiling => Ok(n),
                _ => Err(link_error(
                    link,
                    format!("{key} {v:?} is not a number from 1 to {ceiling}"),
                )),
            },
        };
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let as_ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let max_body_bytes = number(
            "max_body_bytes",
            as_u64(DEFAULT_MAX_BODY_BYTES),
            as_u64(MAX_BODY_BYTES_CEILING),
        )?;
        let header_timeout = number(
            "header_timeout_ms",
            as_ms(DEFAULT_HEADER_TIMEOUT),
            as_ms(MAX_TIMEOUT),
        )?;
        let body_timeout = number(
            "body_timeout_ms",
            as_ms(DEFAULT_BODY_TIMEOUT),
            as_ms(MAX_TIMEOUT),
        )?;
        let max_connections = number(
            "max_connections",
            as_u64(DEFAULT_MAX_CONNECTIONS),
            as_u64(MAX_CONNECTIONS_CEILING),
        )?;
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
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            header_timeout: Duration::from_millis(header_timeout),
            body_timeout: Duration::from_millis(body_timeout),
            bodies: self.bodies.clone(),
            max_buffered_body_bytes: self.limits.max_buffered_body_bytes,
        });
        let (stop, stopped) = watch::channel(());
        let (closed_tx, closed) = oneshot::channel();
        let slots = Arc::new(Semaphore::new(
            usize::try_from(max_connections).unwrap_or(usize::MAX),
        ));
        let slots = Slots {
            listener: slots,
            provider: self.slots.clone(),
        };
        let task = tokio::spawn(accept_loop(
            accepting, route, slots, stopped, closed_tx, self.lanes,
        ));
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
    header_timeout: Duration,
    body_timeout: Duration,
    /// The provider's budget of body bytes, shared by its listeners.
    bodies: Arc<Semaphore>,
    max_buffered_body_bytes: usize,
}

/// A listener's bounds on open connections: its own, and its provider's over all listeners.
struct Slots {
    listener: Arc<Semaphore>,
    provider: Arc<Semaphore>,
}

impl Slots {
    /// Room for one more connection, held until it closes; `None` when either is full.
    fn take(&self) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let listener = self.listener.clone().try_acquire_owned().ok()?;
        let provider = self.provider.clone().try_acquire_owned().ok()?;
        Some((listener, provider))
    }
}

/// Accepts and serves connections (on lanes, if `on_lanes` and the runtime has them) until
/// `stop` is signalled (or dropped); then stops accepting, says so on `closed`, and drains
/// the connections.
async fn accept_loop(
    listener: TcpListener,
    route: Arc<Route>,
    slots: Slots,
    mut stop: watch::Receiver<()>,
    closed: oneshot::Sender<()>,
    on_lanes: bool,
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
        match slots.take() {
            Some(slot) => {
                let (route, stop) = (route.clone(), stop.clone());
                let serve = move |stream| async move {
                    serve_connection(stream, route, stop).await;
                    drop(slot);
                };
                if on_lanes {
                    lanes::spawn(&mut connections, stream, serve);
                } else {
                    connections.spawn(serve(stream));
                }
            }
            // Full: shed the connection with a 503, without reading it.
            None => {
                connections.spawn(shed(stream));
            }
        }
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

/// Answers a connection past the listener's limit with `503` and closes it.
async fn shed(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
        Connection: close\r\nContent-Length: 42\r\n\r\nthis listener has no free slot; try again\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(FULL)).await;
}

/// Serves one connection; once its listener drains, answers with `Connection: close` and
/// closes it when idle for [`IDLE_GRACE`].
async fn serve_connection(
    stream: tokio::net::TcpStream,
    route: Arc<Route>,
    mut stop: watch::Receiver<()>,
) {
    let header_timeout = route.header_timeout;
    // What each request's future holds, one per connection: a request takes a reference to
    // it, whose count only the connection's own task writes, rather than to the route and
    // the listener's stop channel, whose counts every connection's requests (on every core)
    // would write.
    let connection_state = Arc::new((route, stop.clone()));
    let service = service_fn(move |request| {
        let connection_state = connection_state.clone();
        async move {
            let (route, draining) = &*connection_state;
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
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(stream), service);
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

/// A request body, at most `max_bytes`, into one buffer sized for the `declared` length: each
/// frame is copied out as it arrives, so the connection's read buffer is reused and the body
/// takes what it reserved, not that and the frames it came in.
async fn read_body(
    body: Incoming,
    declared: usize,
    max_bytes: usize,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let mut collected = Vec::with_capacity(declared.min(max_bytes));
    let mut limited = Limited::new(body, max_bytes);
    while let Some(frame) = limited.frame().await {
        if let Ok(data) = frame?.into_data() {
            collected.extend_from_slice(&data);
        }
    }
    Ok(collected)
}

fn too_large(max_body_bytes: usize) -> Response<Full<Bytes>> {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body over the limit of {max_body_bytes} bytes\n"),
    )
}

impl Route {
    /// Room in the provider's body budget for `bytes`, held until dropped; `None` when full.
    fn reserve(&self, bytes: usize) -> Option<Option<OwnedSemaphorePermit>> {
        if bytes == 0 {
            return Some(None);
        }
        let units = u32::try_from(bytes.div_ceil(BODY_UNIT)).ok()?;
        self.bodies
            .clone()
            .try_acquire_many_owned(units)
            .ok()
            .map(Some)
    }

    async fn serve(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        // Known up front unless the body is sent chunked: its Content-Length, or none at all.
        let declared = hyper::body::Body::size_hint(&body)
            .upper()
            .map(|len| usize::try_from(len).unwrap_or(usize::MAX));
        if declared.is_some_and(|len| len > self.max_body_bytes) {
            return too_large(self.max_body_bytes);
        }
        // Most requests (a GET) say they have no body: nothing to reserve, wait for or time.
        if declared == Some(0) {
            return self.call_actor(parts, Vec::new()).await;
        }
        // Held until the answer is made: the body is in memory (and copied into the call)
        // until then.
        let Some(_reserved) = self.reserve(declared.unwrap_or(self.max_body_bytes)) else {
            return retry_later(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "this server holds as many request bodies as it may ({} bytes); try again\n",
                    self.max_buffered_body_bytes
                ),
            ));
        };
        let collected = tokio::time::timeout(
            self.body_timeout,
            read_body(body, declared.unwrap_or(0), self.max_body_bytes),
        )
        .await;
        let body = match collected {
            Ok(Ok(collected)) => collected,
            Err(_) => {
                return plain(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body did not arrive within {} ms\n",
                        self.body_timeout.as_millis()
                    ),
                );
            }
            Ok(Err(_)) => return too_large(self.max_body_bytes),
        };
        self.call_actor(parts, body).await
    }

    /// The request, its body read, as the actor's `HttpServer.HandleRequest`; its answer as
    /// the response.
    async fn call_actor(
        &self,
        parts: hyper::http::request::Parts,
        body: Vec<u8>,
    ) -> Response<Full<Bytes>> {
        let payload = match (wire::WireRequest {
            parts: &parts,
            body: &body,
        })
        .encode()
        {
            Ok(payload) => payload,
            Err(error) => return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
        };
        // A request is traced when this process records traces (`weft --otlp`): as a child
        // of the client's span when it sends a W3C `traceparent`.
        let span = tracing::trace_span!("http.request", method = %parts.method, path = %parts.uri.path(), actor = %self.actor_id);
        let invoked = self
            .host
            .invoke_actor(&self.actor_id, contract::HANDLE_REQUEST, payload);
        let answered = if span.is_disabled() {
            invoked.await
        } else {
            let traceparent = parts.headers.get(trace::TRACEPARENT);
            trace::follow(&span, traceparent.and_then(|t| t.to_str().ok()));
            tracing::Instrument::instrument(invoked, span).await
        };
        let answer = match answered {
            Ok(answer) => answer,
            Err(failure) => return failed(&self.actor_id, &failure),
        };
        match wire::into_response(answer) {
            Ok(response) => response,
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
    let response = plain(status, format!("{failure}\n"));
    if failure.kind.is_transient() {
        retry_later(response)
    } else {
        response
    }
}

/// `response` with `Retry-After`: what is refused for now is worth asking again.
fn retry_later(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use weft_contracts::httpserver::HttpResponse;

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

    /// An actor answering `/rogue` with more header values than hyper's header map holds, and
    /// everything else with a plain 200.
    struct Rogue;

    #[async_trait]
    impl ActorInvoker for Rogue {
        async fn invoke_actor(
            &self,
            _: &str,
            _: &str,
            request: Vec<u8>,
        ) -> Result<Vec<u8>, Failure> {
            let request: weft_contracts::httpserver::HttpRequest =
                weft_contracts::decode(&request).unwrap();
            let header = if request.path == "/rogue" {
                [("x-n".to_string(), vec!["1".to_string(); 40_000])].into()
            } else {
                HashMap::new()
            };
            Ok(weft_contracts::encode(&HttpResponse {
                status_code: 200,
                header,
                body: b"fine".to_vec(),
            })
            .unwrap())
        }
    }

    /// The actor's answer is input too: one with more header values than the bound is
    /// answered 500 naming the bound (not a panic in hyper's header map), and the listener
    /// keeps serving.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answer_with_too_many_header_values_is_refused_and_serving_goes_on() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let server = HttpServer::new();
        server.start(Arc::new(Rogue)).await.unwrap();
        let address = free_address();
        server.put_link(&link("MA", &address, "100")).await.unwrap();
        let get = |path: &'static str| {
            let address = address.clone();
            async move {
                let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                let request =
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                stream.write_all(request.as_bytes()).await.unwrap();
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).await.unwrap();
                String::from_utf8_lossy(&answer).into_owned()
            }
        };
        let refused = get("/rogue").await;
        assert!(refused.starts_with("HTTP/1.1 500"), "{refused}");
        assert!(
            refused.contains(&format!(
                "more than {MAX_ANSWER_HEADER_VALUES} header values"
            )),
            "{refused}"
        );
        let served = get("/").await;
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        assert!(served.ends_with("fine"), "{served}");
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

    /// Link values past their ceilings are refused when the link is put, naming the value;
    /// at the ceiling, taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn link_values_past_their_ceilings_are_refused() {
        let server = started().await;
        let address = free_address();
        for (key, value) in [
            ("max_body_bytes", "1073741824"),
            ("header_timeout_ms", "0"),
            ("body_timeout_ms", "9999999"),
            ("max_connections", "1000000"),
        ] {
            let mut too_much = link("MA", &address, "100");
            too_much.values.insert(key.into(), value.into());
            let refused = server.put_link(&too_much).await.unwrap_err().to_string();
            assert!(refused.contains(key), "{refused}");
        }
        server
            .put_link(&link("MA", &address, &MAX_BODY_BYTES_CEILING.to_string()))
            .await
            .unwrap();
    }

    /// Slow clients and crowds are bounded: headers not sent in time close the connection,
    /// a body not sent in time is answered 408, and connections past the listener's limit
    /// are answered 503 and closed; a request within every bound is served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_clients_and_crowds_are_bounded() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpStream;
        let server = started().await;
        let address = free_address();
        let mut bounded = link("MA", &address, "1000");
        for (key, value) in [
            ("header_timeout_ms", "300"),
            ("body_timeout_ms", "300"),
            ("max_connections", "2"),
        ] {
            bounded.values.insert(key.into(), value.into());
        }
        server.put_link(&bounded).await.unwrap();
        let read_all = |mut stream: TcpStream| async move {
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
            assert!(read.is_ok(), "the server held a stalled connection open");
            String::from_utf8_lossy(&answer).into_owned()
        };

        // Headers never finished: closed after the header timeout.
        let mut stalled = TcpStream::connect(&address).await.unwrap();
        stalled.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let since = std::time::Instant::now();
        read_all(stalled).await;
        assert!(
            since.elapsed() >= Duration::from_millis(250),
            "{:?}",
            since.elapsed()
        );

        // A body that never finishes: 408.
        let mut slow = TcpStream::connect(&address).await.unwrap();
        slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        let answer = read_all(slow).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

        // Two idle connections take both slots; a third is shed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _first = TcpStream::connect(&address).await.unwrap();
        let _second = TcpStream::connect(&address).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let third = TcpStream::connect(&address).await.unwrap();
        let answer = read_all(third).await;
        assert!(
            answer.starts_with("HTTP/1.1 503") && answer.contains("Retry-After: 1"),
            "{answer}"
        );

        // Once the idle ones time out, a prompt request is served.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut prompt = TcpStream::connect(&address).await.unwrap();
        prompt
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_all(prompt).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        // A kept-alive connection is served, then closed once idle for the header timeout.
        let mut kept = TcpStream::connect(&address).await.unwrap();
        kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        kept.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        let idle_since = std::time::Instant::now();
        read_all(kept).await;
        let idle = idle_since.elapsed();
        assert!(
            idle >= Duration::from_millis(250) && idle < Duration::from_secs(2),
            "an idle keep-alive connection was closed after {idle:?}, not about 300 ms"
        );
    }

    /// Request bodies held at once are bounded over the provider: each reserves its
    /// declared length before a byte is read; past the budget a request is answered 503, one
    /// declaring more than the link's limit 413 at once; a body within both is served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn buffered_body_bytes_obeyed_and_enforced() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpStream;
        let server = HttpServer::with_limits(ServerLimits {
            max_buffered_body_bytes: 8 << 10,
            ..ServerLimits::default()
        });
        server.start(Arc::new(Answering)).await.unwrap();
        let address = free_address();
        let mut bounded = link("MA", &address, "6000");
        bounded
            .values
            .insert("body_timeout_ms".into(), "500".into());
        server.put_link(&bounded).await.unwrap();
        let send = |length: usize, sent: usize| {
            let address = address.clone();
            async move {
                let mut stream = TcpStream::connect(&address).await.unwrap();
                let head = format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(&vec![b'x'; sent]).await.unwrap();
                stream
            }
        };
        let answer = |mut stream: TcpStream| async move {
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
            String::from_utf8_lossy(&answer).into_owned()
        };
        // Declared past the link's limit: refused before the body is read.
        let refused = answer(send(1 << 30, 0).await).await;
        assert!(refused.starts_with("HTTP/1.1 413"), "{refused}");
        // A stalled 6,000-byte body holds 6 KiB of the 8: another of 4,000 finds no room.
        let stalled = send(6000, 10).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let shed = answer(send(4000, 4000).await).await;
        assert!(
            shed.starts_with("HTTP/1.1 503") && shed.contains("retry-after: 1"),
            "{shed}"
        );
        // A small one fits beside it.
        let small = answer(send(1000, 1000).await).await;
        assert!(small.starts_with("HTTP/1.1 200"), "{small}");
        // Once the stalled body times out, its room is free again.
        let timed_out = answer(stalled).await;
        assert!(timed_out.starts_with("HTTP/1.1 408"), "{timed_out}");
        let served = answer(send(4000, 4000).await).await;
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    }

    /// The provider's own bound holds over all its listeners: with room for 3, two on one
    /// listener and one on another fill it, though each listener alone has room left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_per_provider_obeyed_and_enforced() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::TcpStream;
        let server = HttpServer::with_limits(ServerLimits {
            max_connections: 3,
            ..ServerLimits::default()
        });
        server.start(Arc::new(Answering)).await.unwrap();
        let (a, b) = (free_address(), free_address());
        server.put_link(&link("MA", &a, "1000")).await.unwrap();
        server.put_link(&link("MB", &b, "1000")).await.unwrap();
        let _held = [
            TcpStream::connect(&a).await.unwrap(),
            TcpStream::connect(&a).await.unwrap(),
            TcpStream::connect(&b).await.unwrap(),
        ];
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ask = |address: String| async move {
            let mut stream = TcpStream::connect(&address).await.unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
            String::from_utf8_lossy(&answer).into_owned()
        };
        let shed = ask(b.clone()).await;
        assert!(shed.starts_with("HTTP/1.1 503"), "{shed}");
        drop(_held);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let served = ask(b).await;
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    }
}
