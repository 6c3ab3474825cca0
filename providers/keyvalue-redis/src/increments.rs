//! Increments to one Redis server, sent in batches: the increments that arrive while one batch
//! is at Redis go together as the next, in one script call that applies each as the
//! single-increment script would (within `i32`, refused before anything changes) and answers
//! each. Redis runs one command for the batch instead of one per increment, which is most of
//! its work for an increment; the provider receives its calls in batches from the lattice, so
//! under load they arrive together.
//!
//! Nothing waits to fill a batch, an increment's answer is its own (one refused leaves the
//! others applied), and a batch whose answer is lost fails every increment in it: none is sent
//! again, so none is applied twice.

use redis::aio::ConnectionManager;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Most increments in one script call.
pub const MOST_PER_BATCH: usize = 128;
/// Increments queued for a server before callers wait for room.
const QUEUED: usize = 1024;

/// The increments of `KEYS[i]` by `ARGV[i]`, each kept within `i32`; a refused one answers
/// its error's text (a string) where the others answer their new value (a number). `pcall`,
/// so that a key of the wrong type or not holding an integer refuses its own increment, not
/// the batch. Each is applied first and taken back if it left `i32`: one Redis command an
/// increment instead of a read and a write, and nobody sees the value in between, as a
/// script runs whole.
const INCREMENT_EACH_I32: &str = r"
local answers = {}
for i = 1, #KEYS do
  local value = redis.pcall('INCRBY', KEYS[i], ARGV[i])
  if type(value) == 'table' and value.err then
    answers[i] = value.err
  elseif value > 2147483647 or value < -2147483648 then
    redis.call('DECRBY', KEYS[i], ARGV[i])
    answers[i] = 'ERR increment would overflow i32'
  else
    answers[i] = value
  end
end
return answers
";

/// What an increment comes back as: its new value, Redis's refusal of it (the caller's bad
/// request), or the batch's failure (the backend's).
pub enum Answer {
    /// Applied; the key's new value.
    Applied(i32),
    /// Refused by Redis, with its reason; nothing changed.
    Refused(String),
    /// The batch failed (connection, timeout): not known to be applied, not sent again.
    Failed(redis::RedisError),
}

struct Increment {
    key: String,
    by: i32,
    answer: oneshot::Sender<Answer>,
}

/// The queue of increments to one Redis server; its batches are sent by a task that ends when
/// the last handle is dropped.
#[derive(Clone)]
pub struct Increments {
    queue: mpsc::Sender<Increment>,
}

impl Increments {
    /// Starts the task sending batches on `redis`.
    pub fn start(redis: ConnectionManager) -> Self {
        let (queue, queued) = mpsc::channel(QUEUED);
        tokio::spawn(send_batches(redis, queued));
        Increments { queue }
    }

    /// Increments `key` by `by` in the next batch.
    pub async fn increment(&self, key: String, by: i32) -> Answer {
        let (answer, answered) = oneshot::channel();
        let gone = || {
            Answer::Failed(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the provider's Redis connection closed",
            )))
        };
        if self
            .queue
            .send(Increment { key, by, answer })
            .await
            .is_err()
        {
            return gone();
        }
        answered.await.unwrap_or_else(|_| gone())
    }
}

async fn send_batches(mut redis: ConnectionManager, mut queued: mpsc::Receiver<Increment>) {
    let script = Arc::new(redis::Script::new(INCREMENT_EACH_I32));
    let mut batch = Vec::with_capacity(MOST_PER_BATCH);
    while queued.recv_many(&mut batch, MOST_PER_BATCH).await > 0 {
        let mut invocation = script.prepare_invoke();
        for increment in &batch {
            invocation.key(&increment.key).arg(increment.by);
        }
        let answers: Result<Vec<redis::Value>, _> = invocation.invoke_async(&mut redis).await;
        match answers {
            Ok(answers) if answers.len() == batch.len() => {
                for (increment, answer) in batch.drain(..).zip(answers) {
                    let _ = increment.answer.send(read(answer));
                }
            }
            Ok(answers) => {
                let error = redis::RedisError::from((
                    redis::ErrorKind::Parse,
                    "Redis answered a batch of increments with the wrong number of answers",
                    format!("{} for {}", answers.len(), batch.len()),
                ));
                fail(&mut batch, &error);
            }
            Err(error) => fail(&mut batch, &error),
        }
    }
}

fn fail(batch: &mut Vec<Increment>, error: &redis::RedisError) {
    for increment in batch.drain(..) {
        let _ = increment.answer.send(Answer::Failed(error.clone()));
    }
}

/// One answer of the batch script.
fn read(answer: redis::Value) -> Answer {
    match answer {
        redis::Value::Int(value) => match i32::try_from(value) {
            Ok(value) => Answer::Applied(value),
            Err(_) => Answer::Refused(format!("{value} is outside i32")),
        },
        redis::Value::BulkString(text) => Answer::Refused(String::from_utf8_lossy(&text).into()),
        redis::Value::SimpleString(text) => Answer::Refused(text),
        redis::Value::ServerError(error) => Answer::Refused(format!("{error:?}")),
        other => Answer::Refused(format!("unexpected answer {other:?}")),
    }
}
