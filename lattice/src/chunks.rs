//! Bodies larger than the server's `max_payload` (1 MiB by default) travel in chunks: the
//! sender subscribes to a fresh inbox that hands out chunk N for a request carrying N, and
//! sends a small message with the header `Weft-Chunked: {inbox} {total bytes} {chunk bytes}`
//! in place of the body; the receiver pulls the chunks in order ([`send`], [`receive`]).
//!
//! Every body is sealed by the member sending it and opened by the member receiving it
//! ([`crate::member`]). A chunked body's seal covers its offer, `{inbox} {total bytes} {chunk
//! bytes} {SHA-256 of the body}`, so a receiver checks who offers before it pulls anything, and
//! the body's hash once pulled. Pulls are bounded before memory is committed: a total over the
//! receiver's limit is refused, an inbox that is not an inbox (`_INBOX.…`) is never asked, the
//! whole reassembly has one deadline, and a member reassembles at most
//! [`crate::member::REASSEMBLIES_AT_ONCE`] bodies at once.

use crate::LatticeError;
use crate::member::{Member, Refusal};
use crate::wire::{Answer, encode};
use std::time::Duration;
use weft_contracts::invocation::{Failure, FailureKind};

/// The header that marks a chunked body.
pub const CHUNKED_HEADER: &str = "Weft-Chunked";
/// Room left in each chunk for the message's own framing and headers.
const CHUNK_HEADROOM_BYTES: usize = 8 << 10;
/// How long a sender keeps a chunked body on offer for the receiver to pull.
const OFFER_FOR: Duration = Duration::from_secs(30);
/// The largest body a receiver takes unless it says otherwise ([`receive_at_most`]): a module
/// at the largest module limit, with room for its request around it.
pub const MAX_BODY_BYTES: usize = 40 << 20;
/// The largest body of a small kind of message (a link put or delete, a health check, a ping,
/// a link request, an event).
pub const MAX_SMALL_BODY_BYTES: usize = 1 << 20;
/// The prefix of the inboxes chunks are offered on (async-nats's).
const INBOX_PREFIX: &str = "_INBOX.";

/// Largest body sent in one message on this connection.
fn largest_single_body(client: &async_nats::Client) -> usize {
    // `max_payload` is an atomic read; `server_info()` would clone the whole INFO (a dozen
    // allocations) on every message.
    client
        .max_payload()
        .saturating_sub(CHUNK_HEADROOM_BYTES)
        .max(1024)
}

/// A body as it goes on the wire: itself, or, when too large, a chunked offer; sealed.
pub struct Outgoing {
    /// The message's payload.
    pub payload: bytes::Bytes,
    /// Its headers: the seal, and the chunked marker if chunked.
    pub headers: async_nats::HeaderMap,
}

/// Prepares `body` for sending on `subject` as `member`: sealed, and as it is when it fits
/// one message, else offered in chunks on a fresh inbox (served for [`OFFER_FOR`], or until
/// the last chunk is taken).
pub async fn send(member: &Member, subject: &str, body: Vec<u8>) -> Result<Outgoing, LatticeError> {
    let client = member.client();
    let mut headers = async_nats::HeaderMap::new();
    let chunk = largest_single_body(client);
    if body.len() <= chunk {
        member.seal(subject, &body, &mut headers);
        return Ok(Outgoing {
            payload: body.into(),
            headers,
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
    let body_hash = ring::digest::digest(&ring::digest::SHA256, &body);
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
                if index.saturating_add(1) >= chunks {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(OFFER_FOR, serve).await;
    });
    let offer = format!("{inbox} {total} {chunk} {}", hash_of(&body_hash));
    member.seal(subject, offer.as_bytes(), &mut headers);
    headers.insert(CHUNKED_HEADER, offer.as_str());
    Ok(Outgoing {
        payload: bytes::Bytes::new(),
        headers,
    })
}

/// Why a received body is not handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// Not sealed by a member (counted and logged already): drop it, answer nothing.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// Its chunks could not be pulled, or do not add up.
    #[error(transparent)]
    Failed(Failure),
}

impl From<ReceiveError> for Failure {
    fn from(error: ReceiveError) -> Self {
        match error {
            ReceiveError::Refused(refusal) => Failure::new(
                FailureKind::Denied,
                format!("an answer was refused: {refusal}"),
            ),
            ReceiveError::Failed(failure) => failure,
        }
    }
}

/// The body of `message` if a member sealed it, pulled chunk by chunk if it was sent chunked
/// (the whole reassembly within `deadline`), at most [`MAX_BODY_BYTES`].
pub async fn receive(
    member: &Member,
    message: &async_nats::Message,
    deadline: Duration,
) -> Result<Vec<u8>, ReceiveError> {
    receive_at_most(member, message, deadline, MAX_BODY_BYTES).await
}

/// [`receive`], for a kind of message whose bodies are at most `max_bytes`.
pub async fn receive_at_most(
    member: &Member,
    message: &async_nats::Message,
    deadline: Duration,
    max_bytes: usize,
) -> Result<Vec<u8>, ReceiveError> {
    let subject = message.subject.as_str();
    let Some(offer) = message.headers.as_ref().and_then(|h| h.get(CHUNKED_HEADER)) else {
        if message.payload.len() > max_bytes {
            return Err(ReceiveError::Failed(too_large(
                subject,
                message.payload.len(),
                max_bytes,
            )));
        }
        member
            .open(subject, message.headers.as_ref(), &message.payload)
            .await
            .map_err(ReceiveError::Refused)?;
        return Ok(message.payload.to_vec());
    };
    // Who offers is checked before anything is pulled.
    member
        .open(subject, message.headers.as_ref(), offer.as_str().as_bytes())
        .await
        .map_err(ReceiveError::Refused)?;
    let offer = Offer::parse(offer.as_str()).map_err(ReceiveError::Failed)?;
    if offer.total > max_bytes {
        return Err(ReceiveError::Failed(too_large(
            subject,
            offer.total,
            max_bytes,
        )));
    }
    let _slot = member.reassembly().ok_or_else(|| {
        ReceiveError::Failed(Failure::new(
            FailureKind::Busy,
            format!(
                "{} large bodies are being reassembled already; try again",
                crate::member::REASSEMBLIES_AT_ONCE
            ),
        ))
    })?;
    let body = tokio::time::timeout(deadline, pull(member.client(), &offer))
        .await
        .map_err(|_| {
            ReceiveError::Failed(Failure::new(
                FailureKind::Deadline,
                format!(
                    "a large body on {subject} did not arrive within {} ms",
                    deadline.as_millis()
                ),
            ))
        })?
        .map_err(ReceiveError::Failed)?;
    if hash_of(&ring::digest::digest(&ring::digest::SHA256, &body)) != offer.hash {
        return Err(ReceiveError::Failed(Failure::new(
            FailureKind::BadRequest,
            format!("a large body on {subject} does not match the hash its sender sealed"),
        )));
    }
    Ok(body)
}

fn too_large(subject: &str, bytes: usize, max_bytes: usize) -> Failure {
    Failure::new(
        FailureKind::BadRequest,
        format!("a body of {bytes} bytes on {subject} is over the {max_bytes} bytes taken there"),
    )
}

fn hash_of(digest: &ring::digest::Digest) -> String {
    data_encoding::HEXLOWER.encode(digest.as_ref())
}

/// A chunked body on offer: where, how large, in what pieces, and its hash.
pub(crate) struct Offer {
    inbox: String,
    total: usize,
    chunk: usize,
    hash: String,
}

impl Offer {
    pub(crate) fn parse(offer: &str) -> Result<Self, Failure> {
        let malformed = || {
            Failure::new(
                FailureKind::BadRequest,
                format!("malformed {CHUNKED_HEADER} header {offer:?}"),
            )
        };
        let mut parts = offer.split(' ');
        let (Some(inbox), Some(total), Some(chunk), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed());
        };
        let (Ok(total), Ok(chunk)) = (total.parse::<usize>(), chunk.parse::<usize>()) else {
            return Err(malformed());
        };
        // Pulls go to an inbox only: a header naming another subject would make the
        // receiver send requests wherever the sender liked.
        if chunk == 0 || !inbox.starts_with(INBOX_PREFIX) || inbox.contains(['*', '>']) {
            return Err(malformed());
        }
        Ok(Offer {
            inbox: inbox.to_string(),
            total,
            chunk,
            hash: hash.to_string(),
        })
    }
}

/// The body `offer` describes, pulled chunk by chunk; never more than its total.
async fn pull(client: &async_nats::Client, offer: &Offer) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::with_capacity(offer.total.min(offer.chunk));
    for index in 0..offer.total.div_ceil(offer.chunk) {
        let piece = client
            .request(offer.inbox.clone(), index.to_string().into())
            .await
            .map_err(|error| {
                Failure::new(
                    FailureKind::Unavailable,
                    format!("pulling chunk {index} of a large body: {error}"),
                )
            })?;
        if body.len().saturating_add(piece.payload.len()) > offer.total {
            break;
        }
        body.extend_from_slice(&piece.payload);
    }
    if body.len() == offer.total {
        Ok(body)
    } else {
        Err(Failure::new(
            FailureKind::BadRequest,
            format!(
                "a large body came with {} bytes, not {}",
                body.len(),
                offer.total
            ),
        ))
    }
}

/// Publishes `body` on `subject` as `member` (asking for answers on `reply`, if given),
/// sealed, chunked if large ([`send`]).
pub async fn publish(
    member: &Member,
    subject: async_nats::Subject,
    reply: Option<async_nats::Subject>,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let Outgoing { payload, headers } = send(member, subject.as_str(), body).await?;
    let client = member.client();
    let published = match reply {
        Some(reply) => {
            client
                .publish_with_reply_and_headers(subject, reply, headers, payload)
                .await
        }
        None => client.publish_with_headers(subject, headers, payload).await,
    };
    published.map_err(|e| Failure::new(FailureKind::Unavailable, e.to_string()))
}

/// Answers `message` with `answer`, chunked if large. Failures are logged: the caller's
/// request then fails at its deadline.
pub async fn respond(member: &Member, message: &async_nats::Message, answer: &Answer) {
    let Some(reply) = message.reply.clone() else {
        return;
    };
    let subject = message.subject.as_str();
    let sent = match encode(subject, answer) {
        Ok(body) => publish(member, reply, None, body).await,
        Err(error) => Err(error.into()),
    };
    if let Err(error) = sent {
        tracing::warn!(%subject, %error, "could not answer");
    }
}
