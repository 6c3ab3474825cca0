//! Request-reply on the lattice, with every failure typed: nothing serves the subject, no
//! answer in time, NATS down, a malformed answer. Calls made while the connection is down fail
//! at once, saying so; a call whose answer is lost fails at its deadline, never later.

use crate::LatticeError;
use crate::chunks::{receive, send};
use crate::member::Member;
use crate::wire::{ActorInvocation, Answer, decode, encode};
use std::time::Duration;
use weft_contracts::invocation::{Failure, FailureKind};

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

/// Invokes `actor_id` over the lattice (any host running it answers), as `member`.
pub async fn invoke_actor(
    member: &Member,
    actor_id: &str,
    invocation: ActorInvocation,
    deadline: Duration,
) -> Result<Vec<u8>, Failure> {
    let subject = member.subjects().actor(actor_id);
    let body = encode(&subject, &invocation)?;
    request(member, subject, body, deadline).await
}

/// Fails a call to `subject` at once while `client` reconnects: sent now, it would sit in the
/// client's buffer until its deadline.
pub fn refuse_while_disconnected(
    client: &async_nats::Client,
    subject: &str,
) -> Result<(), Failure> {
    if client.connection_state() == async_nats::connection::State::Disconnected {
        return Err(Failure::new(
            FailureKind::Unavailable,
            format!("NATS is unreachable (reconnecting), so {subject} cannot be called"),
        ));
    }
    Ok(())
}

/// Sends `request` to `subject` and waits up to `deadline` for the [`Answer`]. Every failure
/// names the subject: nothing serves it or NATS is down ([`FailureKind::Unavailable`]), no
/// answer in time ([`FailureKind::Deadline`]), a request over the server's `max_payload` or a
/// malformed answer, an answer not sealed by a member ([`FailureKind::Denied`]); a failure
/// the other side answered keeps its kind. The request is sealed by `member`.
pub async fn request(
    member: &Member,
    subject: String,
    request: Vec<u8>,
    deadline: Duration,
) -> Result<Vec<u8>, Failure> {
    request_from(member, subject, request, deadline)
        .await
        .map(|(body, _)| body)
}

/// [`request()`], and which member sealed the answer (its seal was checked; empty for an
/// answer that came chunked): for a request whose answer counts only from one member.
pub async fn request_from(
    member: &Member,
    subject: String,
    request: Vec<u8>,
    deadline: Duration,
) -> Result<(Vec<u8>, String), Failure> {
    use crate::member::Unanswered;
    let client = member.client();
    refuse_while_disconnected(client, &subject)?;
    let outgoing = send(member, &subject, request).await?;
    let asked = member
        .ask(&subject, outgoing.headers, outgoing.payload, deadline)
        .await;
    let message = match asked {
        Ok(message) => message,
        Err(Unanswered::NoResponders) => {
            return Err(Failure::new(
                FailureKind::Unavailable,
                format!("nothing serves {subject} on the lattice (no responders)"),
            ));
        }
        Err(Unanswered::TimedOut) => {
            return Err(Failure::new(
                FailureKind::Deadline,
                format!("no answer on {subject} within {} ms", deadline.as_millis()),
            ));
        }
        Err(Unanswered::Failed(error)) => {
            return Err(Failure::new(
                FailureKind::Unavailable,
                format!("request on {subject} failed: {error}"),
            ));
        }
    };
    let chunked = message
        .headers
        .as_ref()
        .is_some_and(|h| h.get(crate::chunks::CHUNKED_HEADER).is_some());
    // An answer in one message was opened as it arrived ([`Member::ask`]), so its sender is
    // known; a chunked one is opened chunk by chunk as it is pulled, and names none here.
    let from = message
        .headers
        .as_ref()
        .filter(|_| !chunked)
        .and_then(|h| h.get(crate::member::FROM_HEADER))
        .map(|from| from.as_str().to_string())
        .unwrap_or_default();
    let body = if chunked {
        receive(member, &message, deadline).await?
    } else {
        message.payload.to_vec()
    };
    let answer: Answer = decode(&subject, &body)?;
    Result::<Vec<u8>, Failure>::from(answer).map(|body| (body, from))
}

/// Publishes `request` (sealed) on `subject`, which several members serve, and collects what
/// they answer within `wait`: each answer's bytes and the member that sealed it. An answer no
/// member sealed, one over `max_bytes`, or one that failed is left out (and a failure logged);
/// so is the server's "no responders". Bounded: at most `most` answers are kept.
pub async fn gather(
    member: &Member,
    subject: String,
    request: Vec<u8>,
    wait: Duration,
    max_bytes: usize,
    most: usize,
) -> Result<Vec<(Vec<u8>, String)>, Failure> {
    use futures_util::StreamExt;
    let client = member.client();
    refuse_while_disconnected(client, &subject)?;
    let unreachable = |e: &dyn std::fmt::Display| {
        Failure::new(
            FailureKind::Unavailable,
            format!("request on {subject}: {e}"),
        )
    };
    let inbox = client.new_inbox();
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| unreachable(&e))?;
    crate::chunks::publish(member, subject.clone().into(), Some(inbox.into()), request).await?;
    let until = tokio::time::Instant::now() + wait;
    let mut gathered = Vec::new();
    while gathered.len() < most {
        let Ok(Some(message)) = tokio::time::timeout_at(until, answers.next()).await else {
            break;
        };
        if message.status.is_some() {
            continue;
        }
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        let Ok(body) = crate::chunks::receive_at_most(member, &message, left, max_bytes).await
        else {
            continue;
        };
        let from = message
            .headers
            .as_ref()
            .and_then(|h| h.get(crate::member::FROM_HEADER))
            .map(|from| from.as_str().to_string())
            .unwrap_or_default();
        let answered = decode::<Answer>(&subject, &body)
            .map_err(Failure::from)
            .and_then(Result::<Vec<u8>, Failure>::from);
        match answered {
            Ok(bytes) => gathered.push((bytes, from)),
            Err(error) => tracing::warn!(%subject, %from, %error, "an answer was a failure"),
        }
    }
    Ok(gathered)
}
