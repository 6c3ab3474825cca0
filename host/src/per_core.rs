//! Which of a few per-core copies of something a thread uses: state that every call on every
//! core would otherwise update (an actor's idle instances, its call counts) is kept in one
//! copy per core, each on a cache line of its own, so that two cores do not take turns at one
//! line. The copies are summed or searched by whoever needs the whole.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many copies to keep: one for each core the host may run calls on (at most 16; one on
/// a one-core machine), found once.
pub(crate) fn copies() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, 16)
    })
}

/// The copy (of `copies`) this thread uses: threads are numbered as they first ask, so each
/// worker keeps to its own.
pub(crate) fn own(copies: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|number| *number) % copies.max(1)
}
