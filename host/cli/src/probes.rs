//! The HTTP endpoint of `weft up` / `weft host` for operators' tools: health probes
//! (`--health ADDR`), what a load balancer, a Kubernetes probe or a circuit breaker asks, and
//! Prometheus metrics (`--metrics ADDR`); one listener serves both when the addresses match.
//!
//! - `GET /livez`: 200 while the host's runtime turns: its rounds of health checks keep
//!   coming (a stalled runtime stops them); 503 naming how long since the last one otherwise.
//! - `GET /readyz`: 200 when the last round found every actor, provider and (on a lattice)
//!   the NATS connection healthy, else 503; either way a JSON body naming each part, whether
//!   it is healthy, since when, and what is wrong (`weft_host::health`).
//! - `GET /readyz/ACTOR` (name, module key or call alias): the same for one actor: 404 when
//!   none runs here.
//! - `GET /metrics`: every metric in Prometheus' text format (`weft_host::metrics`).
//!
//! Probes and scrapes hold no key, so the endpoint is read-only and says no more than
//! `weft actors` and `weft ctl inventory` do (names, ids, counts, what is unhealthy); it
//! listens on loopback unless given another address. A probe is answered from what the last
//! round of checks found: it never causes a check, however often it comes. Bounded like every
//! input: at most [`MAX_CONNECTIONS`] connections (more are closed unread), a request head of
//! at most [`MAX_HEAD_BYTES`] read within [`HEAD_TIMEOUT`], no request body, each connection
//! closed after [`CONNECTION_LIFETIME`].

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use weft_host::Host;
use weft_host::clock::unix_ms;
use weft_host::control::Control;
use weft_host::health::HealthConfig;

/// Connections served at once; more are closed without being read.
pub const MAX_CONNECTIONS: usize = 64;
/// The most a request's head (request line and headers) may take: hyper's smallest buffer.
pub const MAX_HEAD_BYTES: usize = 8192;
/// How long a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one connection is kept, however busy: a client holding one does not hold it long.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// The address `--health` names: `HOST:PORT`, or a bare port on loopback.
pub fn address(given: &str) -> String {
    if given.parse::<u16>().is_ok() {
        format!("127.0.0.1:{given}")
    } else {
        given.to_string()
    }
}

/// Listens on `address` (see [`address`]).
pub async fn bind(given: &str) -> Result<TcpListener> {
    let address = address(given);
    TcpListener::bind(&address).await.with_context(|| {
        format!("cannot listen for health probes on {address}; give --health a free HOST:PORT")
    })
}

/// What one listener serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Serves {
    /// `/livez`, `/readyz`, `/readyz/ACTOR`.
    pub health: bool,
    /// `/metrics`.
    pub metrics: bool,
}

/// The listeners `--health` and `--metrics` ask for: one per distinct address.
pub fn listeners(health: Option<&str>, metrics: Option<&str>) -> Vec<(String, Serves)> {
    let (health, metrics) = (health.map(address), metrics.map(address));
    if health.is_some() && health == metrics {
        return health
            .map(|at| {
                (
                    at,
                    Serves {
                        health: true,
                        metrics: true,
                    },
                )
            })
            .into_iter()
            .collect();
    }
    let health = health.map(|at| {
        (
            at,
            Serves {
                health: true,
                metrics: false,
            },
        )
    });
    let metrics = metrics.map(|at| {
        (
            at,
            Serves {
                health: false,
                metrics: true,
            },
        )
    });
    health.into_iter().chain(metrics).collect()
}

/// What the endpoint answers from.
struct Probes {
    host: Host,
    control: Arc<Control>,
    config: HealthConfig,
    serves: Serves,
    started: Instant,
}

/// Serves `serves` on `listener` until the task is aborted.
pub async fn serve(
    listener: TcpListener,
    control: Arc<Control>,
    config: HealthConfig,
    serves: Serves,
) {
    let probes = Arc::new(Probes {
        host: control.host().clone(),
        control,
        config,
        serves,
        started: Instant::now(),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "health endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Full: the connection is dropped unread (a probe retries; a flood gains nothing).
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let probes = probes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let probes = probes.clone();
                async move { Ok::<_, std::convert::Infallible>(probes.answer(&request)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(slot);
        });
    }
}

impl Probes {
    fn answer<B: hyper::body::Body>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint answers GET and HEAD only\n",
            );
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            return response;
        }
        // A body is not read: say so rather than leave it unread on a kept connection.
        if request.body().size_hint().lower() > 0 || request.body().size_hint().upper().is_none() {
            let mut response = text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "this endpoint takes no request body\n",
            );
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            return response;
        }
        let path = request.uri().path();
        match (path, self.serves) {
            ("/metrics", Serves { metrics: true, .. }) => self.metrics(),
            ("/livez", Serves { health: true, .. }) => self.livez(),
            ("/readyz", Serves { health: true, .. }) => readiness(&self.host.readiness()),
            (path, Serves { health: true, .. }) if path.starts_with("/readyz/") => {
                self.actor_readiness(path.trim_start_matches("/readyz/"))
            }
            _ => text(StatusCode::NOT_FOUND, &self.paths()),
        }
    }

    /// What this listener serves, for a path it does not.
    fn paths(&self) -> String {
        let mut paths = Vec::new();
        if self.serves.health {
            paths.extend(["/livez", "/readyz", "/readyz/ACTOR"]);
        }
        if self.serves.metrics {
            paths.push("/metrics");
        }
        format!("this endpoint serves {}\n", paths.join(", "))
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        let Some(body) = self.control.metrics_text() else {
            return text(StatusCode::NOT_FOUND, "this host keeps no metrics\n");
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    }

    /// Alive while rounds of checks keep coming: a round starts at least every interval
    /// (plus jitter) and lasts at most about two check timeouts.
    fn livez(&self) -> Response<Full<Bytes>> {
        let stalled_after = self.config.interval * 2 + self.config.timeout * 3;
        let checked = self.host.readiness().checked_unix_ms;
        let since = if checked == 0 {
            self.started.elapsed()
        } else {
            Duration::from_millis(unix_ms().saturating_sub(checked))
        };
        if since <= stalled_after {
            text(StatusCode::OK, "alive\n")
        } else {
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "no round of health checks for {} ms (one is due every {} ms): the host's \
                     runtime is stalled; restart it\n",
                    since.as_millis(),
                    self.config.interval.as_millis()
                ),
            )
        }
    }

    fn actor_readiness(&self, actor: &str) -> Response<Full<Bytes>> {
        let found = self.host.actors().into_iter().find(|identity| {
            identity.id == actor || identity.name == actor || identity.call_alias() == Some(actor)
        });
        let report = found.and_then(|identity| self.host.readiness().of_actor(&identity.id));
        match report {
            Some(report) => readiness(&report),
            None => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({
                    "error": format!(
                        "no actor named, keyed or aliased {actor:?} runs on this host (or the \
                         health checks have not seen it yet); `weft actors` lists them"
                    )
                }),
            ),
        }
    }
}

fn readiness(report: &weft_host::health::Readiness) -> Response<Full<Bytes>> {
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, report)
}

fn json(status: StatusCode, body: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let mut bytes = serde_json::to_vec_pretty(body).unwrap_or_default();
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listener_per_distinct_address() {
        let both = Serves {
            health: true,
            metrics: true,
        };
        assert_eq!(
            listeners(Some("9090"), Some("127.0.0.1:9090")),
            [("127.0.0.1:9090".to_string(), both)]
        );
        let apart = listeners(Some("9090"), Some("9091"));
        assert_eq!(apart.len(), 2);
        assert!(
            apart[0].1.health && !apart[0].1.metrics && apart[1].1.metrics && !apart[1].1.health
        );
        assert!(listeners(None, None).is_empty());
    }
}
