//! The outermost layer: when a call must be over.
//!
//! A call's [`Deadline`] is fixed once, where the call enters the host: the caller's remaining
//! time when it says (a call from another host carries it over the lattice), else the actor's
//! call deadline from now. Everything below runs inside it: the wait for an instance
//! (`concurrency`), the guest's run (checked at epoch ticks, `crate::instance`), and each
//! provider it calls (`route`). So a call never runs after its caller has given up, and a
//! saturated actor answers "busy" within the deadline instead of queueing without bound.
//!
//! Deadlines are on the host's coarse clock (`crate::clock`, 5 ms ticks): fixing one costs an
//! atomic load, not a read of the system clock, on every call.

use crate::clock;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

/// When a call must be over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    at_ms: u64,
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Deadline {
    /// `within` from now.
    pub fn after(within: Duration) -> Self {
        Deadline {
            at_ms: clock::now_ms().saturating_add(millis(within)),
        }
    }

    /// The earlier of `within` from now and the caller's own remaining time, when it gave one.
    pub fn after_at_most(within: Duration, caller: Option<Duration>) -> Self {
        Deadline::after(caller.map_or(within, |caller| caller.min(within)))
    }

    /// The deadline at `at_ms` on the coarse clock (what [`Deadline::at_ms`] gave).
    pub(crate) fn at_ms_of(at_ms: u64) -> Self {
        Deadline { at_ms }
    }

    /// Where it falls on the coarse clock, milliseconds.
    pub(crate) fn at_ms(self) -> u64 {
        self.at_ms
    }

    /// The tokio instant it falls at (for waiting on it).
    pub fn instant(self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.remaining()
    }

    /// What remains of it (zero once passed).
    pub fn remaining(self) -> Duration {
        Duration::from_millis(self.at_ms.saturating_sub(clock::now_ms()))
    }

    /// Whether it has passed.
    pub fn passed(self) -> bool {
        clock::now_ms() >= self.at_ms
    }

    /// A deadline `margin` earlier (but not before now): what a callee gets, so the caller
    /// has time left to handle its answer or its error.
    pub fn less(self, margin: Duration) -> Self {
        Deadline {
            at_ms: self
                .at_ms
                .saturating_sub(millis(margin))
                .max(clock::now_ms()),
        }
    }
}

/// `future`'s output, or `Elapsed` if it takes longer than `after`. One that is ready when
/// first polled (a provider in this process answering at once) takes no timer: a timer reads
/// the clock and counts a reference to the runtime's handle, a write to a line that every
/// core's calls write (bench (n′)).
pub(crate) async fn cut_off<F: Future>(
    after: Duration,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut future = std::pin::pin!(future);
    match std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => tokio::time::timeout(after, future).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_s_deadline_wins_when_earlier() {
        let own = Duration::from_secs(5);
        let caller = Deadline::after_at_most(own, Some(Duration::from_millis(100)));
        assert!(caller.remaining() <= Duration::from_millis(100));
        let late_caller = Deadline::after_at_most(own, Some(Duration::from_secs(60)));
        assert!(late_caller.remaining() <= own);
        assert!(late_caller.remaining() > Duration::from_secs(4));
        assert!(!late_caller.passed());
        assert!(Deadline::after(Duration::ZERO).passed());
        let margin = late_caller.less(Duration::from_secs(1));
        assert!(margin < late_caller);
    }

    /// Ready at once: no timer made, so it works on a runtime without one (where making a
    /// timer panics).
    #[test]
    fn a_future_ready_at_once_takes_no_timer() {
        let no_timers = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let output = no_timers.block_on(cut_off(Duration::from_millis(1), async { 7 }));
        assert_eq!(output.ok(), Some(7));
    }

    /// Pending at first: cut off past `after`, answered within it.
    #[test]
    fn a_pending_future_is_cut_off_after_its_time() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let never = runtime.block_on(cut_off(
            Duration::from_millis(20),
            std::future::pending::<()>(),
        ));
        assert!(never.is_err());
        let later = runtime.block_on(cut_off(Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            8
        }));
        assert_eq!(later.ok(), Some(8));
    }
}
