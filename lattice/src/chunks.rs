//! Bodies larger than the server's `max_payload` (1 MiB by default) travel in chunks: the
//! sender subscribes to a fresh inbox that hands out chunk N for a request carrying N, and
//! sends a small message with the header `Weft-Chunked: {inbox} {total bytes} {chunk bytes}`
//! in place of the body; the receiver pulls the chunks in order ([`send`], [`receive`]).
//!
//! Every body is sealed by the member sending it and opened by the member receiving it
//! ([`crate::member`]); a chunked body's seal covers the whole body, checked once it is
//! pulled.

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
    member.seal(subject, &body, &mut headers);
    let chunk = largest_single_body(client);
    if body.len() <= chunk {
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
    headers.insert(CHUNKED_HEADER, format!("{inbox} {total} {chunk}").as_str());
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
/// (each pull may take up to `deadline`); returns it with the sender's name.
pub async fn receive(
    member: &Member,
    message: &async_nats::Message,
    deadline: Duration,
) -> Result<Vec<u8>, ReceiveError> {
    let body = pull(member.client(), message, deadline)
        .await
        .map_err(ReceiveError::Failed)?;
    member
        .open(message.subject.as_str(), message.headers.as_ref(), &body)
        .await
        .map_err(ReceiveError::Refused)?;
    Ok(body)
}

/// The body of `message`, pulled chunk by chunk if it was sent chunked.
async fn pull(
    client: &async_nats::Client,
    message: &async_nats::Message,
    deadline: Duration,
) -> Result<Vec<u8>, Failure> {
    let Some(offer) = message.headers.as_ref().and_then(|h| h.get(CHUNKED_HEADER)) else {
        return Ok(message.payload.to_vec());
    };
    let malformed = || {
        Failure::new(
            FailureKind::BadRequest,
            format!("malformed {CHUNKED_HEADER} header {:?}", offer.as_str()),
        )
    };
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
                return Err(Failure::new(
                    FailureKind::Unavailable,
                    format!("pulling chunk {index} of a large body: {error}"),
                ));
            }
            Err(_) => {
                return Err(Failure::new(
                    FailureKind::Deadline,
                    format!("chunk {index} of a large body did not come in time"),
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
        Err(Failure::new(
            FailureKind::BadRequest,
            format!("a large body came with {} bytes, not {total}", body.len()),
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
