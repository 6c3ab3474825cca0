//! The lattice: hosts and out-of-process providers on one NATS, and the wire between them.
//!
//! Every subject starts with `weft.{lattice}`, so lattices share a NATS server without
//! seeing each other:
//!
//! | subject | who subscribes | request → reply |
//! |---|---|---|
//! | `weft.{lattice}.actor.{actor_id}` | every host running the actor, one queue group | [`ActorInvocation`] → [`Answer`] |
//! | `weft.{lattice}.provider.{provider_id}.call` | every instance of the provider, one queue group | a batch of `[call id, ProviderInvocation]` → batches of `[call id, Answer]` ([`crate::calls`]) |
//! | `weft.{lattice}.provider.{provider_id}.link.put` / `.link.del` | every instance | [`LinkDefinition`] → [`Answer`] (empty) |
//! | `weft.{lattice}.provider.{provider_id}.health` | every instance | nothing → [`Answer`] holding a [`crate::Health`] |
//!
//! Bodies are MessagePack (named maps), as actor payloads are. Queue groups spread calls over
//! the hosts (or provider instances) that serve the same subject. A provider call carries its
//! link, so a provider instance that restarted serves it without having been told the link.
//!
//! Bodies larger than the server's `max_payload` (1 MiB by default) travel in chunks: the
//! sender subscribes to a fresh inbox that hands out chunk N for a request carrying N, and
//! sends a small message with the header `Weft-Chunked: {inbox} {total bytes} {chunk bytes}`
//! in place of the body; the receiver pulls the chunks in order ([`send`], [`receive`]).
//!
//! Decisions:
//! - **Core NATS request-reply, not JetStream.** Calls are answered or fail; nothing is
//!   queued for later, so a lattice needs nothing but `nats-server`.
//! - **Reconnect quickly.** A client retries every 100 ms, rising to 1 s, forever: a restarted
//!   NATS server is back in use within about a second of accepting connections. Calls made
//!   while the connection is down fail at once, saying so; a call whose answer is lost fails
//!   at its deadline, never later.

use crate::LinkDefinition;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// How a process connects to a lattice's NATS.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// `nats://host:port` (or several, comma-separated).
    pub url: String,
    /// A `.creds` file (JWT and nkey seed).
    pub credentials_file: Option<PathBuf>,
    /// An nkey seed (`SU…`).
    pub nkey_seed: Option<String>,
    /// User and password.
    pub user_password: Option<(String, String)>,
    /// A CA certificate (PEM) to trust for TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// Refuse to connect without TLS.
    pub require_tls: bool,
    /// How this connection names itself to the server (shows in its monitoring).
    pub name: Option<String>,
}

/// Errors joining or using the lattice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LatticeError {
    /// The NATS connection could not be made.
    #[error(
        "cannot connect to NATS at {url}: {reason}; is nats-server running there (and are the credentials right)?"
    )]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// Subscribing failed.
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// A message could not be encoded or decoded.
    #[error("malformed lattice message on {subject}: {reason}")]
    Malformed {
        /// The subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
}

/// The delay before reconnect attempt `attempts`: 100 ms, rising by 100 ms to 1 s.
fn reconnect_delay(attempts: usize) -> Duration {
    Duration::from_millis(100 * attempts.clamp(1, 10) as u64)
}

/// Connects with `options`: auth and TLS passed through to async-nats, quick reconnects.
pub async fn connect(options: &NatsOptions) -> Result<async_nats::Client, LatticeError> {
    let failed = |reason: String| LatticeError::Connect {
        url: options.url.clone(),
        reason,
    };
    let mut connect = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(reconnect_delay)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .require_tls(options.require_tls);
    if let Some(path) = &options.credentials_file {
        connect = connect
            .credentials_file(path)
            .await
            .map_err(|e| failed(format!("credentials file {}: {e}", path.display())))?;
    }
    if let Some(seed) = &options.nkey_seed {
        connect = connect.nkey(seed.clone());
    }
    if let Some((user, password)) = &options.user_password {
        connect = connect.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &options.tls_ca_file {
        connect = connect.add_root_certificates(ca.clone());
    }
    if let Some(name) = &options.name {
        connect = connect.name(name);
    }
    connect
        .connect(options.url.as_str())
        .await
        .map_err(|e| failed(e.to_string()))
}

/// The subjects of one lattice.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The subjects of lattice `lattice`.
    pub fn new(lattice: &str) -> Self {
        Subjects {
            prefix: format!("weft.{lattice}"),
        }
    }

    /// Where an actor is invoked (and the queue group of the hosts running it).
    pub fn actor(&self, actor_id: &str) -> String {
        format!("{}.actor.{actor_id}", self.prefix)
    }

    /// Where a provider serves actors' calls (and its instances' queue group).
    pub fn provider_calls(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.call", self.prefix)
    }

    /// Where a provider is told of a new link.
    pub fn provider_link_put(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.link.put", self.prefix)
    }

    /// Where a provider is told a link is gone.
    pub fn provider_link_del(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.link.del", self.prefix)
    }

    /// Where a provider answers health checks.
    pub fn provider_health(&self, provider_id: &str) -> String {
        format!("{}.provider.{provider_id}.health", self.prefix)
    }
}

/// A call to an actor over the lattice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorInvocation {
    /// `Interface.Method`.
    pub operation: String,
    /// The request.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Who calls: a provider id or an actor id, for logs.
    pub origin: String,
}

/// An actor's call to a provider over the lattice, with the link it went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInvocation {
    /// The calling actor.
    pub actor_id: String,
    /// The link it called through.
    pub link: LinkDefinition,
    /// `Interface.Method`.
    pub operation: String,
    /// The request as the actor encoded it.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// The answer to any lattice request: the reply's bytes, or what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// It worked.
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
    /// It failed; the text names what and why.
    Err(String),
}

impl From<Answer> for Result<Vec<u8>, String> {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Ok(bytes) => Ok(bytes),
            Answer::Err(error) => Err(error),
        }
    }
}

impl<E: std::fmt::Display> From<Result<Vec<u8>, E>> for Answer {
    fn from(result: Result<Vec<u8>, E>) -> Self {
        match result {
            Ok(bytes) => Answer::Ok(bytes),
            Err(error) => Answer::Err(error.to_string()),
        }
    }
}

/// MessagePack with field names, as everything on the lattice.
pub fn encode<T: Serialize>(subject: &str, value: &T) -> Result<Vec<u8>, LatticeError> {
    rmp_serde::to_vec_named(value).map_err(|e| LatticeError::Malformed {
        subject: subject.to_string(),
        reason: e.to_string(),
    })
}

/// The inverse of [`encode`].
pub fn decode<T: serde::de::DeserializeOwned>(
    subject: &str,
    bytes: &[u8],
) -> Result<T, LatticeError> {
    rmp_serde::from_slice(bytes).map_err(|e| LatticeError::Malformed {
        subject: subject.to_string(),
        reason: e.to_string(),
    })
}

/// Waits until the server has processed everything this client sent before (subscriptions
/// included): a message to a fresh inbox of our own comes back only after them, since a
/// server handles one connection's messages in order. Subscribe, then call this, and the
/// subscription is live for every other client.
pub async fn round_trip(client: &async_nats::Client, within: Duration) -> Result<(), LatticeError> {
    use futures_util::StreamExt;
    let inbox = client.new_inbox();
    let failed = |reason: String| LatticeError::Subscribe {
        subject: inbox.clone(),
        reason,
    };
    let mut echo = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| failed(e.to_string()))?;
    client
        .publish(inbox.clone(), Vec::new().into())
        .await
        .map_err(|e| failed(e.to_string()))?;
    match tokio::time::timeout(within, echo.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(failed("the connection closed".into())),
        Err(_) => Err(failed(format!(
            "the server did not echo within {} ms",
            within.as_millis()
        ))),
    }
}

/// Invokes `actor_id` over the lattice (any host running it answers), as `origin`.
pub async fn invoke_actor(
    client: &async_nats::Client,
    subjects: &Subjects,
    actor_id: &str,
    invocation: ActorInvocation,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let subject = subjects.actor(actor_id);
    let body = encode(&subject, &invocation).map_err(|e| e.to_string())?;
    request(client, subject, body, deadline).await
}

/// The header that marks a chunked body.
pub const CHUNKED_HEADER: &str = "Weft-Chunked";
/// Room left in each chunk for the message's own framing and headers.
const CHUNK_HEADROOM_BYTES: usize = 8 << 10;
/// How long a sender keeps a chunked body on offer for the receiver to pull.
const OFFER_FOR: Duration = Duration::from_secs(30);

/// Largest body sent in one message on this connection.
fn largest_single_body(client: &async_nats::Client) -> usize {
    // `max_payload` is an atomic read; `server_info()` would clone the whole INFO (a dozen
    // allocations) on every message.
    client
        .max_payload()
        .saturating_sub(CHUNK_HEADROOM_BYTES)
        .max(1024)
}

/// A body as it goes on the wire: itself, or, when too large, a chunked offer.
pub struct Outgoing {
    /// The message's payload.
    pub payload: bytes::Bytes,
    /// Headers (the chunked marker), if any.
    pub headers: Option<async_nats::HeaderMap>,
}

/// Prepares `body` for sending on `client`: as it is when it fits one message, else offered in
/// chunks on a fresh inbox (served for [`OFFER_FOR`], or until the last chunk is taken).
pub async fn send(client: &async_nats::Client, body: Vec<u8>) -> Result<Outgoing, LatticeError> {
    let chunk = largest_single_body(client);
    if body.len() <= chunk {
        return Ok(Outgoing {
            payload: body.into(),
            headers: None,
        });
    }
    let inbox = client.new_inbox();
    let mut pulls = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| LatticeError::Subscribe {
            subject: inbox.clone(),
            reason: e.to_string(),
        })?;
    let total = body.len();
    let server = client.clone();
    tokio::spawn(async move {
        use futures_util::StreamExt;
        let chunks = total.div_ceil(chunk);
        let serve = async {
            while let Some(pull) = pulls.next().await {
                let index = std::str::from_utf8(&pull.payload)
                    .ok()
                    .and_then(|i| i.parse::<usize>().ok());
                let (Some(index), Some(reply)) = (index, pull.reply) else {
                    continue;
                };
                let start = index.saturating_mul(chunk);
                let piece = body
                    .get(start..start.saturating_add(chunk).min(total))
                    .unwrap_or_default();
                let _ = server
                    .publish(reply, bytes::Bytes::copy_from_slice(piece))
                    .await;
                if index + 1 >= chunks {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(OFFER_FOR, serve).await;
    });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(CHUNKED_HEADER, format!("{inbox} {total} {chunk}").as_str());
    Ok(Outgoing {
        payload: bytes::Bytes::new(),
        headers: Some(headers),
    })
}

/// The body of `message`, pulled chunk by chunk if it was sent chunked; each pull may take
/// up to `deadline`.
pub async fn receive(
    client: &async_nats::Client,
    message: &async_nats::Message,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let Some(offer) = message.headers.as_ref().and_then(|h| h.get(CHUNKED_HEADER)) else {
        return Ok(message.payload.to_vec());
    };
    let malformed = || format!("malformed {CHUNKED_HEADER} header {:?}", offer.as_str());
    let mut parts = offer.as_str().split(' ');
    let (Some(inbox), Some(total), Some(chunk)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed());
    };
    let (Ok(total), Ok(chunk)) = (total.parse::<usize>(), chunk.parse::<usize>()) else {
        return Err(malformed());
    };
    if chunk == 0 {
        return Err(malformed());
    }
    let mut body = Vec::new();
    for index in 0..total.div_ceil(chunk) {
        let pulled = tokio::time::timeout(
            deadline,
            client.request(inbox.to_string(), index.to_string().into()),
        )
        .await;
        match pulled {
            Ok(Ok(piece)) => body.extend_from_slice(&piece.payload),
            Ok(Err(error)) => {
                return Err(format!("pulling chunk {index} of a large body: {error}"));
            }
            Err(_) => {
                return Err(format!(
                    "chunk {index} of a large body did not come in time"
                ));
            }
        }
        if body.len() > total {
            break;
        }
    }
    if body.len() == total {
        Ok(body)
    } else {
        Err(format!(
            "a large body came with {} bytes, not {total}",
            body.len()
        ))
    }
}

/// Publishes `body` on `subject` (asking for answers on `reply`, if given), chunked if large
/// ([`send`]).
pub async fn publish(
    client: &async_nats::Client,
    subject: async_nats::Subject,
    reply: Option<async_nats::Subject>,
    body: Vec<u8>,
) -> Result<(), String> {
    let Outgoing { payload, headers } = send(client, body).await.map_err(|e| e.to_string())?;
    let published = match (reply, headers) {
        (Some(reply), Some(headers)) => {
            client
                .publish_with_reply_and_headers(subject, reply, headers, payload)
                .await
        }
        (Some(reply), None) => client.publish_with_reply(subject, reply, payload).await,
        (None, Some(headers)) => client.publish_with_headers(subject, headers, payload).await,
        (None, None) => client.publish(subject, payload).await,
    };
    published.map_err(|e| e.to_string())
}

/// Answers `message` with `answer`, chunked if large. Failures are logged: the caller's
/// request then fails at its deadline.
pub async fn respond(client: &async_nats::Client, message: &async_nats::Message, answer: &Answer) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let subject = message.subject.as_str();
    let sent = match encode(subject, answer) {
        Ok(body) => publish(client, reply, None, body).await,
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = sent {
        tracing::warn!(%subject, %error, "could not answer");
    }
}

/// Fails a call to `subject` at once while `client` reconnects: sent now, it would sit in the
/// client's buffer until its deadline.
pub fn refuse_while_disconnected(client: &async_nats::Client, subject: &str) -> Result<(), String> {
    if client.connection_state() == async_nats::connection::State::Disconnected {
        return Err(format!(
            "NATS is unreachable (reconnecting), so {subject} cannot be called"
        ));
    }
    Ok(())
}

/// Sends `request` to `subject` and waits up to `deadline` for the [`Answer`]. Every failure
/// (nobody serves the subject, no answer in time, NATS down, a malformed answer) comes back
/// as an error text naming the subject.
pub async fn request(
    client: &async_nats::Client,
    subject: String,
    request: Vec<u8>,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    use async_nats::RequestErrorKind;
    refuse_while_disconnected(client, &subject)?;
    let outgoing = send(client, request).await.map_err(|e| e.to_string())?;
    let call = async {
        match outgoing.headers {
            Some(headers) => {
                client
                    .request_with_headers(subject.clone(), headers, outgoing.payload)
                    .await
            }
            None => client.request(subject.clone(), outgoing.payload).await,
        }
    };
    let sent = tokio::time::timeout(deadline, call).await;
    let message = match sent {
        Err(_) => {
            return Err(format!(
                "no answer on {subject} within {} ms",
                deadline.as_millis()
            ));
        }
        Ok(Err(error)) => {
            return Err(match error.kind() {
                RequestErrorKind::NoResponders => {
                    format!("nothing serves {subject} on the lattice (no responders)")
                }
                RequestErrorKind::TimedOut => format!("no answer on {subject} in time"),
                RequestErrorKind::MaxPayloadExceeded => {
                    format!("the request on {subject} is larger than the NATS server's max_payload")
                }
                _ => format!("request on {subject} failed: {error}"),
            });
        }
        Ok(Ok(message)) => message,
    };
    let body = receive(client, &message, deadline).await?;
    let answer: Answer = decode(&subject, &body).map_err(|e| e.to_string())?;
    answer.into()
}
