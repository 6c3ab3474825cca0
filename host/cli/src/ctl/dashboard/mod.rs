//! `weft ctl dashboard`: the lattice as a live web page, served on loopback by the operator's
//! own `weft ctl`, which speaks the control interface with the operator's key. The page shows
//! the hosts with their labels, each actor on each host (revision, canary, instances, calls
//! per second, error rate, p99, health), the providers, the links and the lattice's events as
//! they come; its actions (scale, update, canary, promote or roll back a canary) are the same
//! signed control requests `weft ctl` sends.
//!
//! What it is not: a server for anyone but the operator at this machine. It listens on
//! loopback only, and since any web page the operator's browser opens could send requests to
//! a loopback port, it answers only requests addressed to its own address (a `Host` header
//! naming another is refused: no DNS rebinding) and carries out an action only with the
//! token that is in its page (which another site's page cannot read). Bounded like every
//! input: [`MAX_CONNECTIONS`] connections, [`MAX_STREAMS`] event streams, a head of
//! [`MAX_HEAD_BYTES`] within [`HEAD_TIMEOUT`], a request body of [`MAX_JSON_BYTES`] (a module
//! up to the module limit for an update) within [`BODY_TIMEOUT`].

mod view;

use super::canary::share_ppm;
use super::{Lattice, each, opened, running};
use crate::output::Out;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast};
use weft_host::canary::CanaryPlan;
use weft_host::control::{ControlRequest, Done, HostInventory};
use weft_host::limits::DEFAULT_MAX_MODULE_BYTES;

/// Connections served at once; more are closed unread.
pub const MAX_CONNECTIONS: usize = 64;
/// Event streams open at once (each holds a connection until the page closes).
pub const MAX_STREAMS: usize = 16;
/// The most a request head may take.
pub const MAX_HEAD_BYTES: usize = 8192;
/// How long a client has to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest action body but an update's (which is a module).
pub const MAX_JSON_BYTES: usize = 4096;
/// How long an action's body may take to arrive (a module of the largest size takes
/// milliseconds over loopback): a client trickling one does not hold a connection for long.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Events a page gets when it opens: the latest ones.
const RECENT_EVENTS: usize = 100;

const PAGE: &str = include_str!("page.html");

#[derive(clap::Args)]
pub struct DashboardArgs {
    /// Where to serve it: a loopback HOST:PORT, or a bare PORT
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: String,
    /// How often the page's figures are read from the hosts, milliseconds
    #[arg(long, default_value_t = 2000)]
    refresh_ms: u64,
}

/// The dashboard's state: the lattice connection, the latest view, the latest events.
struct Board {
    lattice: Lattice,
    /// Its own address: the only `Host` it answers.
    bound: SocketAddr,
    /// What an action must carry (it is in the page).
    token: String,
    refresh: Duration,
    view: Mutex<Arc<String>>,
    recent: Mutex<VecDeque<String>>,
    events: broadcast::Sender<String>,
    streams: Arc<Semaphore>,
}

type Body = BoxBody<Bytes, Infallible>;

/// Serves the dashboard until Ctrl-C.
pub async fn run(lattice: Lattice, out: &mut Out, args: DashboardArgs) -> Result<()> {
    let address = loopback(&args.listen)?;
    let listener = TcpListener::bind(address).await.with_context(|| {
        format!("cannot serve the dashboard on {address}; give --listen a free port")
    })?;
    let bound = listener.local_addr()?;
    let board = Arc::new(Board {
        lattice,
        bound,
        token: token()?,
        refresh: Duration::from_millis(args.refresh_ms.max(200)),
        view: Mutex::new(Arc::new("{}".into())),
        recent: Mutex::default(),
        events: broadcast::channel(RECENT_EVENTS).0,
        streams: Arc::new(Semaphore::new(MAX_STREAMS)),
    });
    // Subscribed before the page is offered, so it misses nothing from then on.
    let events = board.lattice.events().await?;
    let follow = tokio::spawn(follow_events(board.clone(), events));
    let poll = tokio::spawn(poll(board.clone()));
    writeln!(out, "dashboard http://{bound}/ (Ctrl-C stops)")?;
    out.flush()?;

    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "dashboard: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            stopped = &mut stop => {
                follow.abort();
                poll.abort();
                return stopped;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let board = board.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let board = board.clone();
                async move { Ok::<_, Infallible>(board.answer(request).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(slot);
        });
    }
}

/// `--listen` as an address, refused unless it is loopback: the page acts with the
/// operator's key.
fn loopback(given: &str) -> Result<SocketAddr> {
    let given = match given.parse::<u16>() {
        Ok(port) => format!("127.0.0.1:{port}"),
        Err(_) => given.to_string(),
    };
    let address: SocketAddr = given
        .parse()
        .with_context(|| format!("--listen {given:?} is not HOST:PORT (e.g. 127.0.0.1:7070)"))?;
    if !address.ip().is_loopback() {
        bail!(
            "the dashboard acts with your operator key, so it listens on loopback only (asked: \
             {address}); reach it from elsewhere through an SSH tunnel"
        );
    }
    Ok(address)
}

/// A token no other page can guess: 128 random bits from the OS.
fn token() -> Result<String> {
    let mut bytes = [0u8; 16];
    rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut bytes)
        .context("cannot draw random bytes for the dashboard's token")?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}

/// Reads every host's inventory each refresh and makes the view of it.
async fn poll(board: Arc<Board>) {
    let mut before: (Vec<HostInventory>, Option<Instant>) = (Vec::new(), None);
    loop {
        match board.lattice.inventories().await {
            Ok(now) => {
                let taken = Instant::now();
                let over = before.1.map(|at| taken.duration_since(at).as_secs_f64());
                let view = view::view(&now, &before.0, over, weft_host::clock::unix_ms());
                let json = serde_json::to_string(&view).unwrap_or_else(|_| "{}".into());
                *board.view.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(json);
                before = (now, Some(taken));
            }
            Err(error) => tracing::warn!(%error, "dashboard: no inventory"),
        }
        tokio::time::sleep(board.refresh).await;
    }
}

/// Keeps the latest events and passes each on to the open pages.
async fn follow_events(board: Arc<Board>, mut events: async_nats::Subscriber) {
    while let Some(message) = events.next().await {
        let Some(event) = opened(&board.lattice, &message).await else {
            continue;
        };
        let Ok(json) = serde_json::to_string(&event) else {
            continue;
        };
        {
            let mut recent = board.recent.lock().unwrap_or_else(PoisonError::into_inner);
            if recent.len() >= RECENT_EVENTS {
                recent.pop_front();
            }
            recent.push_back(json.clone());
        }
        // No page open is no error.
        let _ = board.events.send(json);
    }
}

impl Board {
    async fn answer(&self, request: Request<Incoming>) -> Response<Body> {
        if !self.addressed_to_me(&request) {
            return text(
                StatusCode::MISDIRECTED_REQUEST,
                &format!("this dashboard answers at http://{}/ only\n", self.bound),
            );
        }
        let path = request.uri().path().to_string();
        match (request.method().clone(), path.as_str()) {
            (Method::GET, "/") => {
                let page = PAGE
                    .replace("__TOKEN__", &self.token)
                    .replace("__REFRESH_MS__", &self.refresh.as_millis().to_string());
                let mut response = full(StatusCode::OK, page.into_bytes());
                set(&mut response, "content-type", "text/html; charset=utf-8");
                // The page runs only its own inline script, and nothing may frame it.
                set(
                    &mut response,
                    "content-security-policy",
                    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                );
                response
            }
            (Method::GET, "/api/state") => {
                let view = self
                    .view
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                json_response(StatusCode::OK, view.as_bytes().to_vec())
            }
            (Method::GET, "/api/events") => self.event_stream(),
            (Method::POST, action) => {
                let allowed = request
                    .headers()
                    .get("x-weft-token")
                    .is_some_and(|given| given.as_bytes() == self.token.as_bytes());
                if !allowed {
                    return text(
                        StatusCode::FORBIDDEN,
                        "an action needs the token of the dashboard's own page\n",
                    );
                }
                match self.act(action, request).await {
                    Ok(results) => json_response(StatusCode::OK, results),
                    Err(error) => json_response(
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({"error": format!("{error:#}")})
                            .to_string()
                            .into_bytes(),
                    ),
                }
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "the dashboard serves /, /api/state, /api/events and POSTs to /api/scale, \
                 /api/update, /api/decide\n",
            ),
        }
    }

    /// Whether the request names this dashboard's own address (`127.0.0.1:PORT` or
    /// `localhost:PORT`) as its host.
    fn addressed_to_me(&self, request: &Request<Incoming>) -> bool {
        let Some(host) = request
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
        else {
            return false;
        };
        let port = self.bound.port();
        host == self.bound.to_string() || host == format!("localhost:{port}")
    }

    /// The latest events, then each one as it comes, as server-sent events.
    fn event_stream(&self) -> Response<Body> {
        let Ok(slot) = self.streams.clone().try_acquire_owned() else {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("at most {MAX_STREAMS} pages follow the events at once\n"),
            );
        };
        let recent: Vec<String> = self
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let live = futures_util::stream::unfold(
            (self.events.subscribe(), slot),
            |(mut events, slot)| async move {
                loop {
                    match events.recv().await {
                        Ok(event) => return Some((event, (events, slot))),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        );
        let frames = futures_util::stream::iter(recent).chain(live).map(|event| {
            Ok::<_, Infallible>(Frame::data(Bytes::from(format!("data: {event}\n\n"))))
        });
        let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
        set(&mut response, "content-type", "text/event-stream");
        set(&mut response, "cache-control", "no-store");
        response
    }

    /// Carries out an action through the control interface; each host's result as JSON.
    async fn act(&self, path: &str, request: Request<Incoming>) -> Result<Vec<u8>> {
        // Known before the body is read: an unknown action reads none.
        let action = Action::of(path)?;
        let limit = action.max_body_bytes();
        let query = request.uri().query().unwrap_or_default().to_string();
        let collected = tokio::time::timeout(
            BODY_TIMEOUT,
            Limited::new(request.into_body(), limit).collect(),
        )
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            )
        })?;
        let body = collected
            .map_err(|error| anyhow::anyhow!("the request body was not read: {error}"))?
            .to_bytes();
        let hosts = self.lattice.inventories().await?;
        let (actor_id, on, request) = match action {
            Action::Scale => {
                let asked: Scale = serde_json::from_slice(&body)
                    .context("a scale is {\"actor\": NAME, \"max_instances\": N}")?;
                if asked.max_instances == 0 {
                    bail!("an actor needs at least 1 instance; stop it instead");
                }
                let (actor_id, on) = running(&hosts, &asked.actor)?;
                let request = ControlRequest::ScaleActor {
                    actor_id: actor_id.clone(),
                    max_instances: asked.max_instances,
                };
                (actor_id, on, request)
            }
            Action::Decide => {
                let asked: Decide = serde_json::from_slice(&body)
                    .context("a decision is {\"actor\": NAME, \"promote\": true|false}")?;
                let (actor_id, on) = running(&hosts, &asked.actor)?;
                let request = ControlRequest::DecideCanary {
                    actor_id: actor_id.clone(),
                    promote: asked.promote,
                };
                (actor_id, on, request)
            }
            Action::Update => {
                let asked: Update = serde_json::from_value(query_json(&query))
                    .context("an update is POSTed to /api/update?actor=NAME[&canary=10%&watch_for=60s] with the module as its body")?;
                let plan = match &asked.canary {
                    Some(share) if !share.is_empty() => {
                        let watch_for =
                            humantime::parse_duration(asked.watch_for.as_deref().unwrap_or("60s"))
                                .context("watch_for is a duration such as 60s")?;
                        let plan = CanaryPlan::new(
                            share_ppm(share).map_err(anyhow::Error::msg)?,
                            watch_for,
                        );
                        if let Some(problem) = plan.problem() {
                            bail!("{problem}");
                        }
                        Some(plan)
                    }
                    _ => None,
                };
                let (actor_id, on) = running(&hosts, &asked.actor)?;
                let request = ControlRequest::UpdateActor {
                    actor_id: actor_id.clone(),
                    module: body.to_vec(),
                    allow_new_capabilities: false,
                    allow_new_issuer: false,
                    canary: plan,
                };
                (actor_id, on, request)
            }
        };
        let results: Vec<serde_json::Value> = each(&self.lattice, on, request)
            .await
            .into_iter()
            .map(|(host, result)| match result {
                Ok(done) => serde_json::json!({"host": host, "done": said(&done)}),
                Err(error) => serde_json::json!({"host": host, "error": format!("{error:#}")}),
            })
            .collect();
        tracing::info!(actor = %actor_id, action = path, "dashboard action carried out");
        Ok(serde_json::json!({"results": results})
            .to_string()
            .into_bytes())
    }
}

/// What a POST to the dashboard asks for, by its path.
#[derive(Debug, Clone, Copy)]
enum Action {
    Scale,
    Decide,
    Update,
}

impl Action {
    fn of(path: &str) -> Result<Self> {
        match path {
            "/api/scale" => Ok(Action::Scale),
            "/api/decide" => Ok(Action::Decide),
            "/api/update" => Ok(Action::Update),
            other => bail!(
                "no action {other}: the dashboard takes /api/scale, /api/update and /api/decide"
            ),
        }
    }

    /// The largest body it takes: JSON, or for an update the module.
    fn max_body_bytes(self) -> usize {
        match self {
            Action::Update => DEFAULT_MAX_MODULE_BYTES,
            Action::Scale | Action::Decide => MAX_JSON_BYTES,
        }
    }
}

#[derive(serde::Deserialize)]
struct Scale {
    actor: String,
    max_instances: usize,
}

#[derive(serde::Deserialize)]
struct Decide {
    actor: String,
    promote: bool,
}

#[derive(serde::Deserialize)]
struct Update {
    actor: String,
    canary: Option<String>,
    watch_for: Option<String>,
}

/// A query string's pairs as a JSON object of strings (percent-decoded).
fn query_json(query: &str) -> serde_json::Value {
    let pairs: serde_json::Map<String, serde_json::Value> =
        form_urlencoded::parse(query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned().into()))
            .collect();
    serde_json::Value::Object(pairs)
}

/// What a host did, in a few words.
fn said(done: &Done) -> String {
    match done {
        Done::Actor(actor) => match &actor.canary {
            Some(canary) => format!(
                "canary of revision {} started",
                weft_host::control::revision(canary.revision)
            ),
            None => format!(
                "{} revision {}, max {} instance(s)",
                actor.name,
                weft_host::control::revision(actor.revision),
                actor.max_instances
            ),
        },
        Done::Canary(verdict) => verdict.to_string(),
        other => format!("{other:?}"),
    }
}

fn full(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(BodyExt::boxed(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = full(status, body);
    set(&mut response, "content-type", "application/json");
    response
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    full(status, body.as_bytes().to_vec())
}

fn set(response: &mut Response<Body>, name: &'static str, value: &'static str) {
    response
        .headers_mut()
        .insert(name, hyper::header::HeaderValue::from_static(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_listens_on_loopback_only() {
        assert_eq!(loopback("7070").unwrap().to_string(), "127.0.0.1:7070");
        assert!(loopback("[::1]:7070").is_ok());
        let refused = loopback("0.0.0.0:7070").unwrap_err().to_string();
        assert!(refused.contains("loopback only"), "{refused}");
        assert!(loopback("dashboard").is_err());
    }

    #[test]
    fn query_strings_decode_to_json() {
        let query = query_json("actor=hello&canary=10%25&watch_for=1m+30s");
        assert_eq!(query["actor"], "hello");
        assert_eq!(query["canary"], "10%");
        assert_eq!(query["watch_for"], "1m 30s");
    }

    #[test]
    fn tokens_differ() {
        let (a, b) = (token().unwrap(), token().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
