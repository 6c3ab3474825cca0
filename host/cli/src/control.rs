//! The local control endpoint of `weft up`: HTTP with JSON bodies on a loopback address, so
//! that `weft link put|del|list` and `weft actors` change and read a running app without a
//! restart. It binds to loopback by default and has no authentication: anyone who can run
//! programs on this machine can relink its actors (the lattice control interface over NATS is
//! the one for shared machines).
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | `/v0/links` | | `[LinkDefinition]` |
//! | PUT | `/v0/links` | `LinkEntry` (actor by name or key) | the `LinkDefinition` put |
//! | DELETE | `/v0/links` | `{actor, contract, link_name?}` | `{}` |
//! | GET | `/v0/actors` | | `[{id, name, capabilities, revision}]` |
//! | POST | `/v0/actors/update` | `{actor, path, allow_new_capabilities?}` | the new `{id, name, capabilities, revision}` |
//!
//! Errors answer 4xx with `{"error": "…"}`.

use crate::manifest::LinkEntry;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use weft_host::{Host, UpdateOptions};
use weft_provider_sdk::{DEFAULT_LINK_NAME, LinkDefinition};

/// Default address of the control endpoint.
pub const DEFAULT_CONTROL_ADDRESS: &str = "127.0.0.1:7070";
/// Largest control request body, bytes.
const MAX_CONTROL_BODY_BYTES: usize = 64 << 10;

#[derive(Debug, Serialize, Deserialize)]
pub struct LinkRef {
    pub actor: String,
    pub contract: String,
    #[serde(default)]
    pub link_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ActorInfo {
    pub id: String,
    pub name: String,
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub revision: Option<i32>,
}

impl From<weft_host::actor::ActorIdentity> for ActorInfo {
    fn from(a: weft_host::actor::ActorIdentity) -> Self {
        ActorInfo {
            id: a.id,
            name: a.name,
            capabilities: a.capabilities,
            revision: a.revision,
        }
    }
}

/// Body of `POST /v0/actors/update`: a new version of a running actor, from a file on this
/// machine.
#[derive(Debug, Serialize, Deserialize)]
pub struct UpdateRequest {
    pub actor: String,
    pub path: std::path::PathBuf,
    #[serde(default)]
    pub allow_new_capabilities: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct ErrorBody {
    error: String,
}

/// The actor's module key for a name or key, among the actors running on `host`.
pub fn resolve_actor(host: &Host, name_or_id: &str) -> Result<String> {
    let actors = host.actors();
    if let Some(actor) = actors.iter().find(|a| a.id == name_or_id) {
        return Ok(actor.id.clone());
    }
    let named: Vec<_> = actors.iter().filter(|a| a.name == name_or_id).collect();
    match named.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => bail!(
            "no running actor is named or keyed {name_or_id:?}; running: {}",
            actors
                .iter()
                .map(|a| format!("{} ({})", a.name, a.id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => bail!("several running actors are named {name_or_id:?}; give its module key instead"),
    }
}

/// Turns a link as written (actor by name) into a link definition.
pub fn to_definition(host: &Host, entry: &LinkEntry) -> Result<LinkDefinition> {
    Ok(LinkDefinition {
        actor_id: resolve_actor(host, &entry.actor)?,
        contract_id: entry.contract.clone(),
        link_name: entry
            .link_name
            .clone()
            .unwrap_or_else(|| DEFAULT_LINK_NAME.to_string()),
        provider_id: entry.provider.clone(),
        values: entry.values.clone(),
    })
}

pub async fn serve(listener: TcpListener, host: Host) {
    let host = Arc::new(host);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let host = host.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let host = host.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&host, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

fn failure(status: StatusCode, error: impl std::fmt::Display) -> Response<Full<Bytes>> {
    json(
        status,
        &ErrorBody {
            error: format!("{error:#}"),
        },
    )
}

async fn body<T: for<'de> Deserialize<'de>>(request: Request<Incoming>) -> Result<T> {
    let bytes = Limited::new(request.into_body(), MAX_CONTROL_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("unreadable request body: {e}"))?
        .to_bytes();
    serde_json::from_slice(&bytes).context("request body is not the JSON expected")
}

async fn answer(host: &Host, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let route = (request.method().clone(), request.uri().path().to_string());
    match (route.0, route.1.as_str()) {
        (Method::GET, "/v0/links") => json(StatusCode::OK, &host.links()),
        (Method::GET, "/v0/actors") => {
            let actors: Vec<ActorInfo> = host.actors().into_iter().map(ActorInfo::from).collect();
            json(StatusCode::OK, &actors)
        }
        (Method::PUT, "/v0/links") => {
            let entry: LinkEntry = match body(request).await {
                Ok(entry) => entry,
                Err(e) => return failure(StatusCode::BAD_REQUEST, e),
            };
            let link = match to_definition(host, &entry) {
                Ok(link) => link,
                Err(e) => return failure(StatusCode::NOT_FOUND, e),
            };
            match host.put_link(link.clone()).await {
                Ok(()) => json(StatusCode::OK, &link),
                Err(e) => failure(StatusCode::CONFLICT, e),
            }
        }
        (Method::DELETE, "/v0/links") => {
            let link: LinkRef = match body(request).await {
                Ok(link) => link,
                Err(e) => return failure(StatusCode::BAD_REQUEST, e),
            };
            let actor = match resolve_actor(host, &link.actor) {
                Ok(actor) => actor,
                Err(e) => return failure(StatusCode::NOT_FOUND, e),
            };
            let name = link.link_name.as_deref().unwrap_or(DEFAULT_LINK_NAME);
            match host.delete_link(&actor, &link.contract, name).await {
                Ok(()) => json(StatusCode::OK, &serde_json::json!({})),
                Err(e) => failure(StatusCode::NOT_FOUND, e),
            }
        }
        (Method::POST, "/v0/actors/update") => {
            let update: UpdateRequest = match body(request).await {
                Ok(update) => update,
                Err(e) => return failure(StatusCode::BAD_REQUEST, e),
            };
            let actor = match resolve_actor(host, &update.actor) {
                Ok(actor) => actor,
                Err(e) => return failure(StatusCode::NOT_FOUND, e),
            };
            let bytes = match tokio::fs::read(&update.path).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let path = update.path.display();
                    return failure(StatusCode::NOT_FOUND, format!("cannot read {path}: {e}"));
                }
            };
            let options = UpdateOptions {
                allow_new_capabilities: update.allow_new_capabilities,
                ..UpdateOptions::default()
            };
            match host.update_actor(&actor, &bytes, options).await {
                Ok(identity) => json(StatusCode::OK, &ActorInfo::from(identity)),
                Err(e) => failure(StatusCode::CONFLICT, e),
            }
        }
        (_, path) => failure(StatusCode::NOT_FOUND, format!("no control endpoint {path}")),
    }
}

/// Sends one request to a control endpoint and returns the decoded answer, or the error it
/// reported.
pub async fn request<T: for<'de> Deserialize<'de>>(
    address: &str,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<T> {
    let stream = TcpStream::connect(address).await.with_context(|| {
        format!(
            "cannot reach a running `weft up` at {address}; is it running (its --control address)?"
        )
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("control connection failed")?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", address)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .context("invalid control request")?;
    let response = sender
        .send_request(request)
        .await
        .context("control request failed")?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .context("control answer unreadable")?
        .to_bytes();
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        bail!("{message}");
    }
    serde_json::from_slice(&bytes).context("control answer is not the JSON expected")
}
