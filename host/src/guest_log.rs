//! Guest log budgets: how many bytes of log an actor may write per call and per second,
//! through `__console_log` and the `wasmcloud:builtin:logging` capability alike.
//!
//! A guest's log lines go into the host's log, which an operator pays for in disk and in
//! attention; without a budget one request could write hundreds of megabytes. Past either
//! budget a line is dropped, not an error: the guest's call goes on. The host says so once
//! when an actor first goes over in a second, and once more when that second is over, with
//! how many lines and bytes were dropped: at most two lines of its own per actor per second.
//!
//! What this is not: a rate limit on calls (the concurrency layer bounds those), nor a bound
//! on one line (`crate::limits::MAX_LOG_LINE_BYTES`, checked before the line is copied).

use crate::clock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The length of the window the per-second budget counts in, milliseconds.
const WINDOW_MS: u64 = 1_000;

/// One actor's log budget, shared by all of its instances.
#[derive(Debug)]
pub struct LogBudget {
    per_call: usize,
    per_second: usize,
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    started_ms: u64,
    used: usize,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    /// A budget of `per_call` bytes in one call and `per_second` bytes a second over all calls.
    pub fn new(per_call: usize, per_second: usize) -> Arc<Self> {
        Arc::new(LogBudget {
            per_call,
            per_second,
            window: Mutex::new(Window {
                started_ms: clock::now_ms(),
                ..Window::default()
            }),
        })
    }
}

/// One instance's meter for the call it is running: what that call has written so far, and
/// the actor's budget. Shared (one reference count) with each host call the call makes.
#[derive(Debug)]
pub struct CallLog {
    used: AtomicUsize,
    budget: Arc<LogBudget>,
}

impl CallLog {
    /// A meter for one instance of an actor with `budget`.
    pub fn new(budget: Arc<LogBudget>) -> Arc<Self> {
        Arc::new(CallLog {
            used: AtomicUsize::new(0),
            budget,
        })
    }

    /// A new call starts: nothing written in it yet.
    pub(crate) fn start_call(&self) {
        self.used.store(0, Ordering::Relaxed);
    }

    /// Whether a line of `bytes` from `actor` may be written; if not, it is counted as
    /// dropped (and the first drop in a second is said in the host's log).
    pub fn admit(&self, actor: &str, bytes: usize) -> bool {
        let budget = &self.budget;
        let within_call =
            self.used.load(Ordering::Relaxed).saturating_add(bytes) <= budget.per_call;
        let mut window = budget.window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = clock::now_ms();
        if now.saturating_sub(window.started_ms) >= WINDOW_MS {
            if window.dropped_lines > 0 {
                tracing::warn!(
                    actor,
                    dropped_lines = window.dropped_lines,
                    dropped_bytes = window.dropped_bytes,
                    "actor {actor} went over its log budget: {} lines ({} bytes) of its log were dropped in {} ms",
                    window.dropped_lines,
                    window.dropped_bytes,
                    now.saturating_sub(window.started_ms),
                );
            }
            *window = Window {
                started_ms: now,
                ..Window::default()
            };
        }
        let within_second = window.used.saturating_add(bytes) <= budget.per_second;
        if within_call && within_second {
            window.used += bytes;
            self.used.fetch_add(bytes, Ordering::Relaxed);
            return true;
        }
        if window.dropped_lines == 0 {
            let which = if within_call {
                format!("{} bytes a second", budget.per_second)
            } else {
                format!("{} bytes in one call", budget.per_call)
            };
            tracing::warn!(
                actor,
                "actor {actor} went over its log budget of {which}: its log lines are dropped \
                 for the rest of this second (and of any call past its budget); how many \
                 follows. Raise max_log_bytes_per_call or max_log_bytes_per_second in its \
                 limits if it needs more"
            );
        }
        window.dropped_lines += 1;
        window.dropped_bytes = window.dropped_bytes.saturating_add(bytes as u64);
        false
    }
}
