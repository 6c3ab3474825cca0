//! The second layer: admission to an actor's instances.
//!
//! At most `max_instances` calls of one actor run at once. A call that finds them all busy
//! waits in a queue of at most `max_queued_calls`, and only until its deadline less
//! [`MIN_CALL_TIME_MS`] (admitted later, it could not complete a provider call); past either
//! bound it is refused at once with "busy" (HTTP 503 with `Retry-After`), so a saturated
//! actor sheds load instead of holding an unbounded queue of requests (and their bodies).
//!
//! Admission also hands out the actor's idle instances (`T`): a call admitted takes one with
//! its place, if one is idle, and puts it back as it ends when it is fit for reuse. The counts
//! are atomics and the idle instances are kept in a shard per core, so calls on several cores
//! share no lock (see [`Admission`]); a waiter is woken by the call that frees a place
//! (`Notify::notify_one`, whose wake-up passes to another waiter if the woken one has given
//! up meanwhile), which a call that ends while nobody waits skips.

use super::Deadline;
use crate::limits::MIN_CALL_TIME_MS;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// One shard of an actor's idle instances, each with when it was put back on the coarse clock:
/// pushed and popped at the end, so the front holds the longest idle. A cache line of its own,
/// so that two cores using two shards do not take turns at one line.
#[derive(Debug)]
#[repr(align(64))]
struct Shard<T>(Mutex<Vec<(T, u64)>>);

/// Admission to one actor's instances (`T`, kept while idle).
///
/// A call runs on an instance of its own, so the cap on calls running at once is a cap on
/// the instances held, idle or busy: what is counted is the instances (`held`), and a call
/// that takes an idle one changes no count. Nothing a call of the actor does on the way in
/// or out writes a line that calls on other cores write: the idle instances are in shards,
/// one for each core, a call taking from (and putting back to) its core's own; the counts
/// change only when an instance is started or dropped, or a call waits. Under one lock, calls
/// on several cores queued for it and each took the instance another core had just put back,
/// its memory in that core's cache: with two workers, in-process calls of one actor ran at
/// half the rate of one worker (bench (n)); a count of running calls, written twice a call,
/// still cost the cores a quarter of their time.
#[derive(Debug)]
pub struct Admission<T> {
    /// Instances held: idle, busy, or being started by a call that found none idle.
    held: AtomicUsize,
    max_running: AtomicUsize,
    waiting: AtomicUsize,
    max_waiting: usize,
    closed: AtomicBool,
    /// The idle instances' first shard, and the others (none on one core).
    idle: Shard<T>,
    more_idle: Box<[Shard<T>]>,
    /// Signalled when a call ends while others wait, the cap rises or the actor closes.
    freed: tokio::sync::Notify,
}

/// A call's place among the running ones, with the idle instance it took, if any (else the
/// place to start one). Dropping it (at the end of the call, or when the caller stops waiting
/// mid-call) puts back the instance left in [`Permit::reusable`], or, when none is left
/// (none fit for reuse, or none started), frees the place.
#[derive(Debug)]
pub struct Permit<'a, T> {
    admission: &'a Admission<T>,
    /// The instance the call runs on: an idle one handed out with the place, and, once the
    /// call is done, the one to keep for the next call (`None`: none fit for reuse).
    pub reusable: Option<T>,
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        let admission = self.admission;
        match self.reusable.take() {
            // Dropped (and counted out by `over_cap`) when the cap was lowered under the
            // instances held while it ran.
            Some(instance) if admission.over_cap() => drop(instance),
            Some(instance) => {
                // A waiter counts itself before it looks in the shards, each under its lock:
                // if it looked in this one before this push, its count is seen below.
                admission
                    .shard(crate::per_core::own(admission.shards()))
                    .push((instance, crate::clock::now_ms()));
            }
            // SeqCst, with the load of `waiting` below: a waiter counts itself before it
            // counts an instance, so either it sees this place freed or this sees it waiting.
            None => {
                admission.held.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if admission.waiting.load(Ordering::SeqCst) > 0 {
            admission.freed.notify_one();
        }
    }
}

/// A waiter's place in the queue; dropping it (admitted, refused, or its caller gone) leaves.
struct Waiting<'a, T> {
    admission: &'a Admission<T>,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        self.admission.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> Admission<T> {
    /// At most `max_running` calls at once (at least one), and `max_waiting` waiting;
    /// `idle` instances ready.
    pub fn new(max_running: usize, max_waiting: usize, idle: Vec<T>) -> Self {
        let now = crate::clock::now_ms();
        let idle: Vec<_> = idle.into_iter().map(|instance| (instance, now)).collect();
        let more_idle: Box<[Shard<T>]> = (1..crate::per_core::copies())
            .map(|_| Shard(Mutex::new(Vec::new())))
            .collect();
        Admission {
            held: AtomicUsize::new(idle.len()),
            max_running: AtomicUsize::new(max_running.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            closed: AtomicBool::new(false),
            idle: Shard(Mutex::new(idle)),
            more_idle,
            freed: tokio::sync::Notify::new(),
        }
    }

    /// How many shards the idle instances are in.
    fn shards(&self) -> usize {
        1 + self.more_idle.len()
    }

    /// The shard `at` (`0..shards()`), locked.
    fn shard(&self, at: usize) -> MutexGuard<'_, Vec<(T, u64)>> {
        let shard = match at.checked_sub(1) {
            Some(more) => self.more_idle.get(more).unwrap_or(&self.idle),
            None => &self.idle,
        };
        shard.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle instance: the last put back in this thread's shard, else one from another.
    fn take_idle(&self) -> Option<T> {
        self.take_own_idle().or_else(|| self.take_others_idle())
    }

    /// The last idle instance put back in this thread's shard.
    fn take_own_idle(&self) -> Option<T> {
        let own = crate::per_core::own(self.shards());
        self.shard(own).pop().map(|(instance, _)| instance)
    }

    /// An idle instance from another core's shard.
    fn take_others_idle(&self) -> Option<T> {
        let own = crate::per_core::own(self.shards());
        (0..self.shards())
            .filter(|at| *at != own)
            .find_map(|at| self.shard(at).pop())
            .map(|(instance, _)| instance)
    }

    /// Counts an instance to start if fewer than the cap are held.
    fn count_new(&self) -> bool {
        let max = self.max_running.load(Ordering::Relaxed);
        self.held
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                (held < max).then_some(held + 1)
            })
            .is_ok()
    }

    /// Whether more instances are held than the cap lets run (it was lowered); counts one
    /// less when so, for the caller to drop.
    fn over_cap(&self) -> bool {
        let max = self.max_running.load(Ordering::Relaxed);
        // Read first: the lines are shared, and written only when the count changes.
        self.held.load(Ordering::Relaxed) > max
            && self
                .held
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                    (held > max).then(|| held - 1)
                })
                .is_ok()
    }

    /// A place if one is free now, or the refusal of a closed actor; `None`: wait. This
    /// core's idle instance first. Past that, while other calls of the actor run, room for a
    /// new instance before another core's idle one: an instance is tied to the core whose
    /// engine copy made it (see `crate::engine`), and one borrowed stays with the borrower,
    /// so under load each core keeps its own. Called one at a time, the actor borrows: its
    /// one instance serves every core, and it holds no more.
    fn take_place(&self) -> Option<Result<Permit<'_, T>, Refused>> {
        if self.closed.load(Ordering::Acquire) {
            return Some(Err(Refused::Closed));
        }
        if let Some(instance) = self.take_own_idle() {
            return Some(Ok(Permit {
                admission: self,
                reusable: Some(instance),
            }));
        }
        let reusable = if self.busy() > 0 {
            if self.count_new() {
                None
            } else {
                Some(self.take_others_idle()?)
            }
        } else {
            match self.take_others_idle() {
                Some(instance) => Some(instance),
                None if self.count_new() => None,
                None => return None,
            }
        };
        Some(Ok(Permit {
            admission: self,
            reusable,
        }))
    }

    /// Takes a place only with an idle instance, now: `None` when every instance is busy (or
    /// none was kept). Never waits.
    pub fn try_idle(&self) -> Option<Permit<'_, T>> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        Some(Permit {
            admission: self,
            reusable: Some(self.take_idle()?),
        })
    }

    /// Takes a place, waiting (in the bounded queue, until `deadline`) if none is free.
    pub async fn admit(&self, deadline: Deadline) -> Result<Permit<'_, T>, Refused> {
        if let Some(taken) = self.take_place() {
            return taken;
        }
        let counted = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |waiting| {
                (waiting < self.max_waiting).then_some(waiting + 1)
            });
        if let Err(waiting) = counted {
            return Err(Refused::QueueFull {
                running: self.busy(),
                waiting,
            });
        }
        let queued = Waiting { admission: self };
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
            if let Some(taken) = self.take_place() {
                return taken;
            }
            if tokio::time::timeout_at(wait_until, freed).await.is_err() {
                return Err(Refused::NoPlaceInTime {
                    waited_ms: started.elapsed().as_millis(),
                    running: self.busy(),
                });
            }
        }
    }

    /// Lets `max_running` calls run at once from now on (at least one); calls running over
    /// a lowered cap finish.
    /// Idle instances over the new cap are dropped.
    pub fn scale(&self, max_running: usize) {
        let max_running = max_running.max(1);
        self.max_running.store(max_running, Ordering::SeqCst);
        let mut kept = 0;
        let mut over = Vec::new();
        for at in 0..self.shards() {
            let mut shard = self.shard(at);
            let keep = shard.len().min(max_running - kept);
            kept += keep;
            over.extend(shard.drain(keep..));
        }
        self.held.fetch_sub(over.len(), Ordering::SeqCst);
        // Dropped outside the locks: freeing an instance returns its slot to the engine.
        drop(over);
        // Callers waiting for a place may now have one.
        self.freed.notify_waiters();
    }

    /// Drops the instances idle since before `cutoff_ms` (coarse clock); returns how many.
    pub fn reap(&self, cutoff_ms: u64) -> usize {
        let mut reaped: Vec<(T, u64)> = Vec::new();
        for at in 0..self.shards() {
            let mut shard = self.shard(at);
            let stale = shard.partition_point(|(_, since)| *since < cutoff_ms);
            reaped.extend(shard.drain(..stale));
        }
        self.forget(reaped.len());
        // Dropped outside the locks: freeing an instance returns its slot to the engine.
        reaped.len()
    }

    /// When the longest-idle instance was put back (coarse clock), if any is idle.
    pub fn oldest_idle(&self) -> Option<u64> {
        (0..self.shards())
            .filter_map(|at| self.shard(at).first().map(|(_, since)| *since))
            .min()
    }

    /// Drops the longest-idle instance; whether there was one.
    pub fn drop_oldest(&self) -> bool {
        let oldest = (0..self.shards())
            .filter_map(|at| self.shard(at).first().map(|(_, since)| (*since, at)))
            .min();
        let dropped = oldest.and_then(|(_, at)| {
            let mut shard = self.shard(at);
            (!shard.is_empty()).then(|| shard.remove(0))
        });
        self.forget(usize::from(dropped.is_some()));
        dropped.is_some()
    }

    /// Instances idle now.
    pub fn idle(&self) -> usize {
        (0..self.shards()).map(|at| self.shard(at).len()).sum()
    }

    /// Instances idle now, and calls running (each on an instance of its own).
    pub fn idle_and_running(&self) -> (usize, usize) {
        let idle = self.idle();
        (idle, self.held.load(Ordering::Relaxed).saturating_sub(idle))
    }

    /// Calls running now, as near as a look without a lock tells.
    fn busy(&self) -> usize {
        self.idle_and_running().1
    }

    /// `dropped` idle instances are no longer held: their places free for new ones.
    fn forget(&self, dropped: usize) {
        if dropped > 0 {
            self.held.fetch_sub(dropped, Ordering::SeqCst);
            if self.waiting.load(Ordering::SeqCst) > 0 {
                self.freed.notify_waiters();
            }
        }
    }

    /// How many calls may run at once.
    pub fn max_running(&self) -> usize {
        self.max_running.load(Ordering::Relaxed)
    }

    /// Admits no new call; calls admitted finish, waiting ones are refused.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
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

    /// Makes one call on each of `instances.len()` threads of their own (their own shards,
    /// where the machine has cores for more than one), all running at once, each leaving its
    /// instance for reuse.
    fn calls_on_other_threads(admission: &Admission<u32>, instances: &[u32]) {
        // Shards are per core, not per thread: the test's thread on one core, these on another.
        crate::per_core::pin_to(0);
        let together = std::sync::Barrier::new(instances.len());
        std::thread::scope(|scope| {
            for instance in instances {
                let together = &together;
                scope.spawn(move || {
                    crate::per_core::pin_to(1);
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let mut permit = runtime.block_on(admission.admit(soon())).unwrap();
                    together.wait();
                    permit.reusable = Some(*instance);
                });
            }
        });
    }

    #[tokio::test]
    async fn under_load_a_call_starts_an_instance_of_its_own_before_it_takes_another_cores() {
        if crate::per_core::copies() < 2 {
            // One core: one shard, no other core's instance to prefer or pass over.
            return;
        }
        let admission = Admission::<u32>::new(3, 0, Vec::new());
        calls_on_other_threads(&admission, &[7]);
        // Nothing running: the other core's idle instance is borrowed, none started.
        let running = admission.admit(soon()).await.unwrap();
        assert_eq!(running.reusable, Some(7));
        assert_eq!(admission.idle_and_running(), (0, 1));
        calls_on_other_threads(&admission, &[8]);
        assert_eq!(admission.idle_and_running(), (1, 1));
        // A call running: a place for a new instance of this core's, the other core's idle
        // instance left where it is.
        let second = admission.admit(soon()).await.unwrap();
        assert_eq!(second.reusable, None);
        assert_eq!(admission.idle_and_running(), (1, 2));
        drop((running, second));
    }

    #[tokio::test]
    async fn an_instance_put_back_on_one_thread_is_taken_by_a_call_on_another_at_the_cap() {
        let admission = Admission::<u32>::new(1, 0, Vec::new());
        calls_on_other_threads(&admission, &[7]);
        assert_eq!(admission.idle_and_running(), (1, 0));
        // This thread's shard is empty and no instance may start: the instance idle in the
        // other is taken, not none.
        let permit = admission.admit(soon()).await.unwrap();
        assert_eq!(permit.reusable, Some(7));
        assert_eq!(admission.idle_and_running(), (0, 1));
        drop(permit);
        assert_eq!(admission.idle_and_running(), (1, 0));
        // Only an idle instance for the host's own checks: none idle, no place.
        let checked = admission.try_idle().unwrap();
        assert!(admission.try_idle().is_none());
        drop(checked);
    }

    #[tokio::test]
    async fn scaling_down_keeps_at_most_the_new_cap_of_idle_instances_over_every_shard() {
        let admission = Admission::<u32>::new(3, 0, Vec::new());
        calls_on_other_threads(&admission, &[0, 1, 2]);
        assert_eq!(admission.idle(), 3);
        admission.scale(1);
        assert_eq!((admission.idle(), admission.max_running()), (1, 1));
        assert!(admission.reap(u64::MAX) == 1 && admission.idle() == 0);
    }

    #[tokio::test]
    async fn instances_busy_over_a_lowered_cap_are_dropped_as_their_calls_end() {
        let admission = Admission::<u32>::new(2, 0, Vec::new());
        let mut first = admission.admit(soon()).await.unwrap();
        let mut second = admission.admit(soon()).await.unwrap();
        admission.scale(1);
        (first.reusable, second.reusable) = (Some(1), Some(2));
        drop(first);
        drop(second);
        // The first to end was over the cap and dropped; the second is kept.
        assert_eq!(admission.idle_and_running(), (1, 0));
        let taken = admission.admit(soon()).await.unwrap();
        assert_eq!(taken.reusable, Some(2));
        // Its only place is taken: no new instance, and no queue to wait in.
        assert!(matches!(
            admission.admit(soon()).await.unwrap_err(),
            Refused::QueueFull { running: 1, .. }
        ));
    }

    #[test]
    fn calls_on_many_threads_never_run_over_the_cap() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let admission = Admission::<u32>::new(2, 64, Vec::new());
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    for _ in 0..2000 {
                        let deadline = Deadline::after(Duration::from_secs(5));
                        let mut permit = runtime.block_on(admission.admit(deadline)).unwrap();
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(running, Ordering::SeqCst);
                        std::thread::yield_now();
                        now.fetch_sub(1, Ordering::SeqCst);
                        permit.reusable.get_or_insert(1);
                    }
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 2);
        // Two places, so at most two instances were ever kept.
        assert_eq!(admission.idle_and_running(), (2, 0));
    }
}
