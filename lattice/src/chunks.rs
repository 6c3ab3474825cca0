//! Bodies larger than the server's `max_payload` (1 MiB by default) travel in chunks: the
//! sender subscribes to a fresh inbox that hands out chunk N for a request carrying N, and
//! sends a small message with the header `Weft-Chunked: {inbox} {total bytes} {chunk bytes}`
//! in place of the body; the receiver pulls the chunks in order ([`send`], [`receive`]).

use crate::LatticeError;
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

/// Publishes `body` on `subject` (asking for answers on `reply`, if given), chunked if large
/// ([`send`]).
pub async fn publish(
    client: &async_nats::Client,
    subject: async_nats::Subject,
    reply: Option<async_nats::Subject>,
    body: Vec<u8>,
) -> Result<(), Failure> {
    let Outgoing { payload, headers } = send(client, body).await?;
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
    published.map_err(|e| Failure::new(FailureKind::Unavailable, e.to_string()))
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
        Err(error) => Err(error.into()),
    };
    if let Err(error) = sent {
        tracing::warn!(%subject, %error, "could not answer");
    }
}
