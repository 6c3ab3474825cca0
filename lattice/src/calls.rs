//! Provider calls over the lattice, coalesced: the calls a host makes to one provider id at
//! the same moment travel as one NATS message, and the answers a provider has ready at the
//! same moment travel back as one.
//!
//! Why: every NATS message costs a syscall or two at each end and a routing step in
//! nats-server, and on a small machine those, not the provider, bound how many calls a
//! second an out-of-process provider serves. Nothing waits to fill a batch: a batch is
//! whatever queued while the previous one was being sent, so an idle lattice sends each call
//! alone, at once, and a busy one sends fewer, larger messages. An answer is sent as soon as
//! its call is done, never held back for the rest of its batch.
//!
//! The wire, on the subject of one instance of the provider
//! (`Subjects::provider_instance_calls`):
//! - a request is a MessagePack array of `[call id, encoded ProviderInvocation]`, with the
//!   reply subject `{caller's inbox}.{batch number}`;
//! - an answer is a MessagePack array of `[call id, Answer]` sent to that reply subject, once
//!   or in several parts;
//! - a request the provider cannot read at all is answered with the header
//!   [`BATCH_ERROR_HEADER`] and no body: every call in it fails with that text;
//! - either body, when too large for one message, travels chunked ([`crate::chunks::send`]).
//!
//! This is not a general RPC layer: actor invocations, link puts and health checks stay
//! plain request-reply ([`crate::request()`]); they are rare or already one per message.

use crate::chunks::ReceiveError;
use crate::member::Member;
use crate::wire::{Answer, ProviderInvocation};
use crate::{LatticeError, chunks};
use futures_util::StreamExt;
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use weft_contracts::invocation::{Failure, FailureKind};

/// The header of an answer saying the whole request could not be read; its value says why.
pub const BATCH_ERROR_HEADER: &str = "Weft-Batch-Error";

/// Most calls in one request, and most answers in one reply: past this, a batch saves
/// little and makes its message large.
const MOST_PER_MESSAGE: usize = 64;

/// Past this many batches still awaiting a first answer, the ones nobody waits for any more
/// (their provider died holding them) are forgotten.
const BATCHES_BEFORE_PRUNING: usize = 1024;

type Outcome = Result<Vec<u8>, Failure>;

/// The calls awaiting answers, and which calls each batch sent holds (to fail them together
/// when nothing serves the subject, or the provider could not read the batch).
#[derive(Default)]
struct Waiting {
    calls: HashMap<u64, oneshot::Sender<Outcome>>,
    batches: HashMap<u64, Vec<u64>>,
    /// The server said nothing subscribes to the subject: the instance it names is gone.
    nothing_serves: bool,
}

type Shared = Arc<Mutex<Waiting>>;

fn lock(waiting: &Shared) -> std::sync::MutexGuard<'_, Waiting> {
    waiting.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `items` as one message's body, sized up front for their `sizes` (the bytes each carries)
/// and the ids, markers and names around them.
fn to_message<T: serde::Serialize>(
    items: &[T],
    sizes: impl Iterator<Item = usize>,
) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut body = Vec::with_capacity(sizes.map(|size| size + 32).sum::<usize>() + 8);
    rmp_serde::encode::write(&mut body, items)?;
    Ok(body)
}

/// Fails every call of `ids` still waiting with `error`.
fn fail(waiting: &Shared, ids: &[u64], error: &Failure) {
    let mut waiting = lock(waiting);
    for id in ids {
        if let Some(answer) = waiting.calls.remove(id) {
            let _ = answer.send(Err(error.clone()));
        }
    }
}

/// Removes a call's entry however its caller stops waiting: answered, timed out or dropped.
struct Forget<'a> {
    waiting: &'a Shared,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(self.waiting).calls.remove(&self.id);
    }
}

/// Calls one provider id over the lattice. One per host and provider id; cheap to share.
/// Dropping it stops its two tasks (calls still waiting fail as if the connection closed).
pub struct ProviderCaller {
    member: Arc<Member>,
    subject: String,
    queue: mpsc::UnboundedSender<(u64, Vec<u8>)>,
    waiting: Shared,
    next_id: AtomicU64,
    tasks: [AbortHandle; 2],
}

impl Drop for ProviderCaller {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl ProviderCaller {
    /// Calls the provider serving `subject` (a `provider_instance_calls` subject) as `member`, once
    /// its answer inbox is subscribed. A chunked answer's chunks may each take up to
    /// `chunk_deadline` to pull.
    pub async fn start(
        member: Arc<Member>,
        subject: String,
        chunk_deadline: Duration,
    ) -> Result<Self, LatticeError> {
        let client = member.client().clone();
        let inbox = client.new_inbox();
        let answers =
            client
                .subscribe(format!("{inbox}.*"))
                .await
                .map_err(|e| LatticeError::Subscribe {
                    subject: format!("{inbox}.*"),
                    reason: e.to_string(),
                })?;
        let waiting = Shared::default();
        let (queue, queued) = mpsc::unbounded_channel();
        let sending = tokio::spawn(send_batches(
            member.clone(),
            subject.clone(),
            inbox,
            queued,
            waiting.clone(),
        ));
        let dispatching = tokio::spawn(dispatch_answers(
            member.clone(),
            subject.clone(),
            answers,
            waiting.clone(),
            chunk_deadline,
        ));
        Ok(ProviderCaller {
            member,
            subject,
            queue,
            waiting,
            next_id: AtomicU64::new(1),
            tasks: [sending.abort_handle(), dispatching.abort_handle()],
        })
    }

    /// Makes `invocation` and waits up to `deadline` for its answer. Every failure (nothing
    /// serves the subject, no answer in time, NATS down, a malformed answer) comes back as an
    /// error text naming the subject, as [`crate::request()`]'s do.
    pub async fn call(&self, invocation: &ProviderInvocation, deadline: Duration) -> Outcome {
        let subject = &self.subject;
        crate::refuse_while_disconnected(self.member.client(), subject)?;
        let body = crate::encode(subject, invocation)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        lock(&self.waiting).calls.insert(id, answer);
        let _forget = Forget {
            waiting: &self.waiting,
            id,
        };
        let closed = || {
            Failure::new(
                FailureKind::Unavailable,
                format!("the lattice connection calling {subject} has closed"),
            )
        };
        self.queue.send((id, body)).map_err(|_| closed())?;
        match tokio::time::timeout(deadline, answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(closed()),
            Err(_) => Err(Failure::new(
                FailureKind::Deadline,
                format!("no answer on {subject} within {} ms", deadline.as_millis()),
            )),
        }
    }
}

/// The instance of `provider_id` that answers first that it serves (a member id), asked as
/// `member` within `within`; the answer counts only sealed by the instance it names. Calls to
/// that instance go to `Subjects::provider_instance_calls`.
pub async fn find_instance(
    member: &Member,
    provider_id: &str,
    within: Duration,
) -> Result<String, Failure> {
    let subject = member.subjects().provider_instances(provider_id);
    let (body, from) = crate::request_from(member, subject.clone(), Vec::new(), within).await?;
    let found: crate::ProviderInstance = crate::decode(&subject, &body)?;
    if found.instance != from || found.provider_id != provider_id {
        return Err(Failure::new(
            FailureKind::Denied,
            format!(
                "member {from} answered for provider {provider_id} as instance {} of {}",
                found.instance, found.provider_id
            ),
        ));
    }
    Ok(found.instance)
}

impl ProviderCaller {
    /// Whether the server said that nothing subscribes to this caller's subject. A call that
    /// failed so reached no one: it is safe to make again elsewhere.
    pub fn nothing_serves(&self) -> bool {
        lock(&self.waiting).nothing_serves
    }

    /// Waits until no call made through this caller awaits its answer, or `within` passes;
    /// `false` if some still do then.
    pub async fn settled(&self, within: Duration) -> bool {
        let until = tokio::time::Instant::now() + within;
        loop {
            if lock(&self.waiting).calls.is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Waits for something in `queue`, lets the tasks that are ready to run add to it, and
/// takes up to [`MOST_PER_MESSAGE`] of it into `batch`; `false` once the queue is closed and
/// empty. The yield is what makes batches: without it this task, woken by the first item,
/// would often run before the others were queued and send each alone.
async fn take_batch<T>(queue: &mut mpsc::UnboundedReceiver<T>, batch: &mut Vec<T>) -> bool {
    if queue.recv_many(batch, MOST_PER_MESSAGE).await == 0 {
        return false;
    }
    tokio::task::yield_now().await;
    while batch.len() < MOST_PER_MESSAGE {
        match queue.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    true
}

/// Sends what has queued as one request per [`MOST_PER_MESSAGE`] calls, until the caller
/// is dropped.
async fn send_batches(
    member: Arc<Member>,
    subject: String,
    inbox: String,
    mut queue: mpsc::UnboundedReceiver<(u64, Vec<u8>)>,
    waiting: Shared,
) {
    let to = async_nats::Subject::from(subject.as_str());
    let mut queued = Vec::with_capacity(MOST_PER_MESSAGE);
    let mut batch = 0u64;
    while take_batch(&mut queue, &mut queued).await {
        batch += 1;
        let ids: Vec<u64> = queued.iter().map(|(id, _)| *id).collect();
        let calls: Vec<(u64, ByteBuf)> = queued
            .drain(..)
            .map(|(id, body)| (id, ByteBuf::from(body)))
            .collect();
        {
            let mut waiting = lock(&waiting);
            if waiting.batches.len() >= BATCHES_BEFORE_PRUNING {
                let Waiting { calls, batches, .. } = &mut *waiting;
                batches.retain(|_, ids| ids.iter().any(|id| calls.contains_key(id)));
            }
            waiting.batches.insert(batch, ids);
        }
        let reply = format!("{inbox}.{batch}");
        let sent = match to_message(&calls, calls.iter().map(|(_, body)| body.len())) {
            Ok(body) => chunks::publish(&member, to.clone(), Some(reply.into()), body).await,
            Err(error) => Err(Failure::new(FailureKind::BadRequest, error.to_string())),
        };
        if let Err(error) = sent {
            // Nothing went out, so nothing answers: the batch's record is ours to take back.
            let ids = lock(&waiting).batches.remove(&batch).unwrap_or_default();
            let error = Failure::new(error.kind, format!("request on {subject} failed: {error}"));
            fail(&waiting, &ids, &error);
        }
    }
}

/// Hands each answer that comes to the inbox to its caller; drops what no member sealed.
async fn dispatch_answers(
    member: Arc<Member>,
    subject: String,
    mut answers: async_nats::Subscriber,
    waiting: Shared,
    chunk_deadline: Duration,
) {
    while let Some(message) = answers.next().await {
        // From the server itself, so unsealed.
        if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            let error = Failure::new(
                FailureKind::Unavailable,
                format!("nothing serves {subject} on the lattice (no responders)"),
            );
            lock(&waiting).nothing_serves = true;
            fail(&waiting, &batch_of_in(&waiting, &message), &error);
            continue;
        }
        let chunked = message
            .headers
            .as_ref()
            .is_some_and(|h| h.get(chunks::CHUNKED_HEADER).is_some());
        if chunked {
            // Pulling chunks takes round trips: not on the path of every other answer.
            let (member, subject, waiting) = (member.clone(), subject.clone(), waiting.clone());
            let ids = batch_of_in(&waiting, &message);
            tokio::spawn(async move {
                match chunks::receive(&member, &message, chunk_deadline).await {
                    Ok(body) => hand_out(&waiting, &subject, &body, &ids),
                    Err(ReceiveError::Refused(_)) => {}
                    Err(ReceiveError::Failed(error)) => fail(&waiting, &ids, &error),
                }
            });
            continue;
        }
        if member.may_wait(message.headers.as_ref()) {
            // A sender not known yet: its key is asked for off this task's path.
            let (member, subject, waiting) = (member.clone(), subject.clone(), waiting.clone());
            tokio::spawn(async move {
                if member
                    .open(&message.subject, message.headers.as_ref(), &message.payload)
                    .await
                    .is_ok()
                {
                    let ids = batch_of_in(&waiting, &message);
                    answered(&waiting, &subject, &message, &ids);
                }
            });
            continue;
        }
        let opened = member
            .open(
                message.subject.as_str(),
                message.headers.as_ref(),
                &message.payload,
            )
            .await;
        if opened.is_err() {
            continue;
        }
        let ids = batch_of_in(&waiting, &message);
        answered(&waiting, &subject, &message, &ids);
    }
}

/// The calls of the batch `message` answers, if it is the batch's first answer: the first
/// answer shows that a provider took the batch, so its record is no longer needed (from there
/// on each answer names its call).
fn batch_of_in(waiting: &Shared, message: &async_nats::Message) -> Vec<u64> {
    message
        .subject
        .rsplit('.')
        .next()
        .and_then(|batch| batch.parse::<u64>().ok())
        .and_then(|batch| lock(waiting).batches.remove(&batch))
        .unwrap_or_default()
}

/// Hands out an opened answer message: its answers, or its batch error to every call of
/// `ids`.
fn answered(waiting: &Shared, subject: &str, message: &async_nats::Message, ids: &[u64]) {
    match message
        .headers
        .as_ref()
        .and_then(|h| h.get(BATCH_ERROR_HEADER))
    {
        Some(error) => fail(
            waiting,
            ids,
            &Failure::new(FailureKind::BadRequest, error.as_str()),
        ),
        None => hand_out(waiting, subject, &message.payload, ids),
    }
}

/// Gives each answer in `body` to its caller; if `body` cannot be read, fails `ids` (the
/// batch's calls, when this was its first answer) saying so.
fn hand_out(waiting: &Shared, subject: &str, body: &[u8], ids: &[u64]) {
    match rmp_serde::from_slice::<Vec<(u64, Answer)>>(body) {
        Ok(answers) => {
            let mut waiting = lock(waiting);
            for (id, answer) in answers {
                if let Some(caller) = waiting.calls.remove(&id) {
                    let _ = caller.send(answer.into());
                }
            }
        }
        Err(error) => {
            let error = Failure::new(
                FailureKind::Unavailable,
                format!("malformed answer on {subject}: {error}"),
            );
            tracing::warn!(%error);
            fail(waiting, ids, &error);
        }
    }
}

/// Where a provider sends its answers: they queue here and go out, those for one caller
/// together, as soon as the sending task gets to them.
#[derive(Clone)]
pub struct AnswerQueue {
    queue: mpsc::UnboundedSender<(async_nats::Subject, u64, Answer)>,
}

impl AnswerQueue {
    /// The queue, and the task sending what it holds as `member`; the task ends once every
    /// clone of the queue is dropped and all it held is sent.
    pub fn start(member: Arc<Member>) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, queued) = mpsc::unbounded_channel();
        let sending = tokio::spawn(send_answers(member, queued));
        (AnswerQueue { queue }, sending)
    }

    fn answer(&self, reply: async_nats::Subject, id: u64, answer: Answer) {
        if self.queue.send((reply, id, answer)).is_err() {
            tracing::warn!("an answer was ready after the provider stopped answering");
        }
    }
}

async fn send_answers(
    member: Arc<Member>,
    mut queued: mpsc::UnboundedReceiver<(async_nats::Subject, u64, Answer)>,
) {
    let mut ready = Vec::with_capacity(MOST_PER_MESSAGE);
    while take_batch(&mut queued, &mut ready).await {
        let mut by_caller: Vec<(async_nats::Subject, Vec<(u64, Answer)>)> = Vec::new();
        let taken = ready.len();
        for (reply, id, answer) in ready.drain(..) {
            match by_caller.iter_mut().find(|(to, _)| *to == reply) {
                Some((_, answers)) => answers.push((id, answer)),
                None => {
                    // Room for the whole take: most takes answer one caller, and a list
                    // grown an answer at a time reallocates past 1 KiB, where glibc first
                    // consolidates its free lists (`malloc_consolidate` was 3.6% of a busy
                    // provider process's samples, most of it from here).
                    let mut answers = Vec::with_capacity(taken);
                    answers.push((id, answer));
                    by_caller.push((reply, answers));
                }
            }
        }
        for (reply, answers) in by_caller {
            let sizes = answers.iter().map(|(_, answer)| match answer {
                Answer::Ok(bytes) => bytes.len(),
                Answer::Err(failure) => failure.message.len(),
            });
            let sent = match to_message(&answers, sizes) {
                Ok(body) => chunks::publish(&member, reply.clone(), None, body).await,
                Err(error) => Err(Failure::new(FailureKind::BadRequest, error.to_string())),
            };
            if let Err(error) = sent {
                tracing::warn!(%reply, %error, "could not answer; the callers will time out");
            }
        }
    }
}

/// Serves one request of calls with `serve` (`None`: nothing serves them here any more),
/// each call in a task of its own so that calls of one batch run in parallel and each answer
/// leaves as soon as it is ready; returns once every call is answered. A request no member
/// sealed is dropped unanswered.
pub async fn serve_batch<S, F>(
    member: &Member,
    serve: Option<S>,
    message: async_nats::Message,
    deadline: Duration,
    answers: &AnswerQueue,
) where
    S: Fn(ProviderInvocation) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Answer> + Send + 'static,
{
    let subject = message.subject.to_string();
    let Some(reply) = message.reply.clone() else {
        tracing::warn!(%subject, "a provider call came without a reply subject; dropped");
        return;
    };
    let calls = match chunks::receive(member, &message, deadline).await {
        Ok(body) => rmp_serde::from_slice::<Vec<(u64, ByteBuf)>>(&body)
            .map_err(|e| format!("malformed provider calls on {subject}: {e}")),
        Err(ReceiveError::Refused(_)) => return,
        Err(ReceiveError::Failed(error)) => Err(error.message),
    };
    let calls = match calls {
        Ok(calls) => calls,
        Err(error) => {
            let mut headers = async_nats::HeaderMap::new();
            member.seal(reply.as_str(), &[], &mut headers);
            headers.insert(BATCH_ERROR_HEADER, error.as_str());
            if let Err(e) = member
                .client()
                .publish_with_headers(reply, headers, Default::default())
                .await
            {
                tracing::warn!(%subject, error = %e, "could not answer");
            }
            return;
        }
    };
    let one = move |id: u64, invocation: ByteBuf| {
        let (serve, subject, reply, answers) = (
            serve.clone(),
            subject.clone(),
            reply.clone(),
            answers.clone(),
        );
        async move {
            let answer = match serve {
                None => Answer::failed(
                    FailureKind::Unavailable,
                    format!("nothing serves {subject} here any more; try again"),
                ),
                Some(serve) => match crate::decode::<ProviderInvocation>(&subject, &invocation) {
                    Ok(invocation) => {
                        let span = tracing::trace_span!(
                            "provider.serve",
                            subject = %subject,
                            contract = %invocation.link.contract_id,
                            operation = %invocation.operation
                        );
                        crate::trace::follow(&span, invocation.traceparent.as_deref());
                        tracing::Instrument::instrument(serve(invocation), span).await
                    }
                    Err(error) => Answer::Err(error.into()),
                },
            };
            answers.answer(reply, id, answer);
        }
    };
    let mut calls = calls.into_iter();
    match (calls.next(), calls.len()) {
        (None, _) => {}
        // One call (an idle lattice) is served in this task: no spawn for it.
        (Some((id, invocation)), 0) => one(id, invocation).await,
        (Some(first), _) => {
            let mut running = JoinSet::new();
            for (id, invocation) in std::iter::once(first).chain(calls) {
                // Boxed: a call's future is kilobytes, which spawning and finishing a task
                // would otherwise copy several times (11% of a busy provider process).
                running.spawn(Box::pin(one(id, invocation)));
            }
            while running.join_next().await.is_some() {}
        }
    }
}
