//! # weft-http-server — `wasmcloud:httpserver` on hyper
//!
//! For each link, listens on the address in the link's values (`address = "127.0.0.1:8080"`)
//! and turns every request into the actor's `HttpServer.HandleRequest` call, its answer into
//! the response. Principal type: [`HttpServer`].
//!
//! - A request body over the limit (`max_body_bytes` in the link values, default
//!   [`DEFAULT_MAX_BODY_BYTES`]) is answered `413` without calling the actor.
//! - An actor that fails or answers something undecodable is answered `500` with the reason;
//!   the listener keeps serving.
//! - Deleting the link closes its listener and its connections.
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
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use weft_contracts::httpserver::{self as contract, HeaderMap, HttpRequest, HttpResponse};
use weft_provider_sdk::{
    ActorInvoker, LinkDefinition, Provider, ProviderCall, ProviderError, async_trait,
};

/// Default cap on a request body, bytes (4 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;
/// Address listened on when a link names none.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:8080";

struct Listener {
    address: SocketAddr,
    /// The link values it was started with: the same link put again (by each host of a
    /// lattice that runs the app) changes nothing.
    values: std::collections::BTreeMap<String, String>,
    // Dropping the set aborts the accept loop, and with it every connection it spawned.
    _tasks: JoinSet<()>,
}

/// The HTTP server provider.
#[derive(Default)]
pub struct HttpServer {
    host: OnceLock<Arc<dyn ActorInvoker>>,
    listeners: Mutex<HashMap<(String, String), Listener>>,
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
        {
            let mut listeners = self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match listeners.get(&key) {
                Some(listener) if listener.values == link.values => return Ok(()),
                // Changed values: the old listener goes first, so the new one may take its port.
                Some(_) => drop(listeners.remove(&key)),
                None => {}
            }
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
        let listener = TcpListener::bind(address).await.map_err(|e| {
            link_error(
                link,
                format!("cannot listen on {address}: {e}; pick another `address` in the link"),
            )
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| link_error(link, e.to_string()))?;
        let route = Arc::new(Route {
            host,
            actor_id: link.actor_id.clone(),
            max_body_bytes,
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, route));
        tracing::info!(actor = %link.actor_id, %bound, "HTTP listener started");
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                key,
                Listener {
                    address: bound,
                    values: link.values.clone(),
                    _tasks: tasks,
                },
            );
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
            tracing::info!(actor = %link.actor_id, address = %listener.address, "HTTP listener closed");
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

    async fn shutdown(&self) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

struct Route {
    host: Arc<dyn ActorInvoker>,
    actor_id: String,
    max_body_bytes: usize,
}

async fn accept_loop(listener: TcpListener, route: Arc<Route>) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "HTTP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let route = route.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let route = route.clone();
                async move { Ok::<_, std::convert::Infallible>(route.serve(request).await) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
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
            Err(error) => {
                tracing::warn!(actor = %self.actor_id, %error, "actor failed an HTTP request");
                return plain(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n"));
            }
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
