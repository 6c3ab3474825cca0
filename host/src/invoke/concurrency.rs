//! The second layer: admission to an actor's instances.
//!
//! At most `max_instances` calls of one actor run at once. A call that finds them all busy
//! waits in a queue of at most `max_queued_calls`, and only until its deadline less
//! [`MIN_CALL_TIME_MS`] (admitted later, it could not complete a provider call); past either
//! bound it is refused at once with "busy" (HTTP 503 with `Retry-After`), so a saturated
//! actor sheds load instead of holding an unbounded queue of requests (and their bodies).
//!
//! Admission also hands out the actor's idle instances (`T`): a call admitted takes one with
//! its place, if one is idle, and puts it back as it ends when it is fit for reuse. So one
//! lock guards the counts and the idle instances, taken once as a call is admitted and once as
//! it ends; a waiter is woken by the call that frees a place (`Notify::notify_one`, whose
//! wake-up passes to another waiter if the woken one has given up meanwhile).

use super::Deadline;
use crate::limits::MIN_CALL_TIME_MS;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Why a call was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The actor takes no new calls (stopping).
    Closed,
    /// Every instance is busy and the wait queue is full.
    QueueFull {
        /// Instances running.
        running: usize,
        /// Calls waiting.
        waiting: usize,
    },
    /// Every instance stayed busy until the call's deadline.
    NoPlaceInTime {
        /// How long it waited, milliseconds.
        waited_ms: u128,
        /// Instances running.
        running: usize,
    },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Closed => write!(f, "it takes no new calls"),
            Refused::QueueFull { running, waiting } => write!(
                f,
                "all {running} of its instances are busy and {waiting} calls already wait for one"
            ),
            Refused::NoPlaceInTime { waited_ms, running } => write!(
                f,
                "all {running} of its instances stayed busy for the {waited_ms} ms the call could wait"
            ),
        }
    }
}

#[derive(Debug)]
struct Counts<T> {
    running: usize,
    max_running: usize,
    waiting: usize,
    max_waiting: usize,
    closed: bool,
    /// Instances ready for a call.
    /// Each with when it was last put back, on the coarse clock: pushed and popped at the end,
    /// so the front holds the longest idle.
    idle: Vec<(T, u64)>,
}

/// Admission to one actor's instances (`T`, kept while idle).
#[derive(Debug)]
pub struct Admission<T> {
    counts: Mutex<Counts<T>>,
    /// Signalled when a call ends, the cap rises or the actor closes.
    freed: tokio::sync::Notify,
}

/// A call's place among the running ones, with the idle instance it took, if any. Dropping
/// it (at the end of the call, or when the caller stops waiting mid-call) puts back the
/// instance left in [`Permit::reusable`] and frees the place.
#[derive(Debug)]
pub struct Permit<'a, T> {
    admission: &'a Admission<T>,
    /// The instance the call runs on: an idle one handed out with the place, and, once the
    /// call is done, the one to keep for the next call (`None`: none fit for reuse).
    pub reusable: Option<T>,
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.running = counts.running.saturating_sub(1);
        if let Some(instance) = self.reusable.take() {
            counts.idle.push((instance, crate::clock::now_ms()));
        }
        drop(counts);
        self.admission.freed.notify_one();
    }
}

/// A waiter's place in the queue; dropping it (admitted, refused, or its caller gone) leaves.
struct Waiting<'a, T> {
    admission: &'a Admission<T>,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.waiting = counts.waiting.saturating_sub(1);
    }
}

impl<T> Admission<T> {
    /// At most `max_running` calls at once (at least one), and `max_waiting` waiting;
    /// `idle` instances ready.
    pub fn new(max_running: usize, max_waiting: usize, idle: Vec<T>) -> Self {
        Admission {
            counts: Mutex::new(Counts {
                running: 0,
                max_running: max_running.max(1),
                waiting: 0,
                max_waiting,
                closed: false,
                idle: idle
                    .into_iter()
                    .map(|t| (t, crate::clock::now_ms()))
                    .collect(),
            }),
            freed: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts<T>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place if one is free now, or the refusal of a closed actor; `None`: wait.
    fn take_place(&self, counts: &mut Counts<T>) -> Option<Result<Permit<'_, T>, Refused>> {
        if counts.closed {
            return Some(Err(Refused::Closed));
        }
        if counts.running < counts.max_running {
            counts.running += 1;
            return Some(Ok(Permit {
                admission: self,
                reusable: counts.idle.pop().map(|(instance, _)| instance),
            }));
        }
        None
    }

    /// Takes a place only with an idle instance, now: `None` when every instance is busy (or
    /// none was kept) or no place is free. Never waits.
    pub fn try_idle(&self) -> Option<Permit<'_, T>> {
        let mut counts = self.lock();
        if counts.closed || counts.idle.is_empty() {
            return None;
        }
        self.take_place(&mut counts)?.ok()
    }

    /// Takes a place, waiting (in the bounded queue, until `deadline`) if none is free.
    pub async fn admit(&self, deadline: Deadline) -> Result<Permit<'_, T>, Refused> {
        let queued = {
            let mut counts = self.lock();
            if let Some(taken) = self.take_place(&mut counts) {
                return taken;
            }
            if counts.waiting >= counts.max_waiting {
                return Err(Refused::QueueFull {
                    running: counts.running,
                    waiting: counts.waiting,
                });
            }
            counts.waiting += 1;
            Waiting { admission: self }
        };
        // Boxed: the wait (a timer and a notification) is most of this future's size, and
        // the caller's future carries this one whether or not it waits.
        Box::pin(self.wait_for_place(queued, deadline)).await
    }

    /// The slow path of [`Admission::admit`]: waits, counted in the queue while `_queued`
    /// lives, for a place to free up before `deadline`.
    async fn wait_for_place(
        &self,
        _queued: Waiting<'_, T>,
        deadline: Deadline,
    ) -> Result<Permit<'_, T>, Refused> {
        // Read the clock only on this slow path: a call admitted at once never does.
        let started = tokio::time::Instant::now();
        let wait_until = deadline
            .less(Duration::from_millis(MIN_CALL_TIME_MS))
            .instant();
        loop {
            // Made before looking, so a place freed between the look and the wait is not
            // missed (`notify_one` leaves a permit when nobody waits yet).
            let freed = self.freed.notified();
            if let Some(taken) = self.take_place(&mut self.lock()) {
                return taken;
            }
            if tokio::time::timeout_at(wait_until, freed).await.is_err() {
                return Err(Refused::NoPlaceInTime {
                    waited_ms: started.elapsed().as_millis(),
                    running: self.lock().running,
                });
            }
        }
    }

    /// Lets `max_running` calls run at once from now on (at least one); calls running over
    /// a lowered cap finish.
    /// Idle instances over the new cap are dropped.
    pub fn scale(&self, max_running: usize) {
        let max_running = max_running.max(1);
        let mut counts = self.lock();
        counts.max_running = max_running;
        counts.idle.truncate(max_running);
        drop(counts);
        // Callers waiting for a place may now have one.
        self.freed.notify_waiters();
    }

    /// Drops the instances idle since before `cutoff_ms` (coarse clock); returns how many.
    pub fn reap(&self, cutoff_ms: u64) -> usize {
        let reaped: Vec<(T, u64)> = {
            let mut counts = self.lock();
            let stale = counts.idle.partition_point(|(_, since)| *since < cutoff_ms);
            counts.idle.drain(..stale).collect()
        };
        // Dropped outside the lock: freeing an instance returns its slot to the engine.
        reaped.len()
    }

    /// When the longest-idle instance was put back (coarse clock), if any is idle.
    pub fn oldest_idle(&self) -> Option<u64> {
        self.lock().idle.first().map(|(_, since)| *since)
    }

    /// Drops the longest-idle instance; whether there was one.
    pub fn drop_oldest(&self) -> bool {
        let oldest = {
            let mut counts = self.lock();
            (!counts.idle.is_empty()).then(|| counts.idle.remove(0))
        };
        oldest.is_some()
    }

    /// Instances idle now.
    pub fn idle(&self) -> usize {
        self.lock().idle.len()
    }

    /// Instances idle now, and calls running (each on an instance of its own).
    pub fn idle_and_running(&self) -> (usize, usize) {
        let counts = self.lock();
        (counts.idle.len(), counts.running)
    }

    /// How many calls may run at once.
    pub fn max_running(&self) -> usize {
        self.lock().max_running
    }

    /// Admits no new call; calls admitted finish, waiting ones are refused.
    pub fn close(&self) {
        self.lock().closed = true;
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn soon() -> Deadline {
        Deadline::after(Duration::from_millis(200))
    }

    #[tokio::test]
    async fn the_queue_is_bounded_and_the_wait_ends_at_the_deadline() {
        let admission = Admission::<()>::new(1, 1, Vec::new());
        let running = admission.admit(soon()).await.unwrap();
        // One may wait; a second waiter is refused at once.
        let waiter = admission.admit(Deadline::after(Duration::from_millis(50)));
        let refused = async {
            tokio::task::yield_now().await;
            admission.admit(soon()).await
        };
        let (waited, refused) = tokio::join!(waiter, refused);
        assert!(matches!(
            refused.unwrap_err(),
            Refused::QueueFull {
                running: 1,
                waiting: 1
            }
        ));
        assert!(matches!(
            waited.unwrap_err(),
            Refused::NoPlaceInTime { running: 1, .. }
        ));
        // A freed place goes to the next caller, and the queue is empty again.
        drop(running);
        let admitted = admission.admit(soon()).await.unwrap();
        drop(admitted);
        admission.close();
        assert_eq!(admission.admit(soon()).await.unwrap_err(), Refused::Closed);
    }

    #[tokio::test]
    async fn a_waiter_is_admitted_when_a_place_frees() {
        let admission = Admission::<()>::new(1, 4, Vec::new());
        let running = admission.admit(soon()).await.unwrap();
        let (admitted, ()) = tokio::join!(admission.admit(soon()), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(running);
        });
        assert!(admitted.is_ok());
    }
}
