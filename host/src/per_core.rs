//! Which of a few per-core copies of something a thread uses: state that every call on every
//! core would otherwise update (an actor's idle instances, its call counts) is kept in one
//! copy per core, each on a cache line of its own, so that two cores do not take turns at one
//! line. The copies are summed or searched by whoever needs the whole.
//!
//! The copy is picked by the core the thread runs on at that moment, not by the thread: two
//! threads running at once are on two cores, so they never share a copy on a machine with
//! no more cores than copies, however many threads the host has (runtime workers, HTTP
//! lanes, blocking threads) and in whatever order they started. A thread moved to another
//! core between picking and using a copy only shares it for a moment; every copy is safe to
//! share.

use std::sync::OnceLock;

/// The cores this process may run on, as the copies see them.
struct Layout {
    /// One for each core the host may run calls on (at most 16; one on a one-core machine).
    copies: usize,
    /// For each CPU number the process may run on, its place among those CPUs (`None`: not
    /// one of them when the process started, e.g. its affinity changed since; the CPU number
    /// itself is used).
    place_of_cpu: Box<[Option<usize>]>,
}

fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let copies = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .clamp(1, 16);
        // Numbered by place, not CPU number: a process pinned to CPUs 0 and 2 has two copies,
        // and CPU 2 must not share CPU 0's.
        let mut place_of_cpu = Vec::new();
        if let Ok(allowed) = rustix::thread::sched_getaffinity(None) {
            let mut place = 0;
            for cpu in 0..rustix::thread::CpuSet::MAX_CPU {
                place_of_cpu.push(allowed.is_set(cpu).then(|| {
                    place += 1;
                    place - 1
                }));
            }
            let last = place_of_cpu
                .iter()
                .rposition(Option::is_some)
                .map_or(0, |at| at + 1);
            place_of_cpu.truncate(last);
        }
        Layout {
            copies,
            place_of_cpu: place_of_cpu.into_boxed_slice(),
        }
    })
}

/// How many copies to keep: one for each core the host may run calls on (at most 16; one on
/// a one-core machine), found once.
pub(crate) fn copies() -> usize {
    layout().copies
}

/// The copy (of `copies`) for the core this thread runs on now.
pub(crate) fn own(copies: usize) -> usize {
    if copies <= 1 {
        return 0;
    }
    let cpu = rustix::thread::sched_getcpu();
    let place = layout()
        .place_of_cpu
        .get(cpu)
        .copied()
        .flatten()
        .unwrap_or(cpu);
    place % copies
}

/// Pins this thread to the `place`th core the process could run on when it first asked
/// (modulo those there are), for tests about which copy a thread on another core uses.
#[cfg(test)]
pub(crate) fn pin_to(place: usize) {
    let cpus: Vec<usize> = (layout().place_of_cpu.iter().enumerate())
        .filter_map(|(cpu, place)| place.map(|_| cpu))
        .collect();
    if let Some(cpu) = cpus.get(place % cpus.len().max(1)) {
        let _ = pin_to_cpu(*cpu);
    }
}

/// Pins this thread to CPU `cpu`.
#[cfg(test)]
fn pin_to_cpu(cpu: usize) -> rustix::io::Result<()> {
    let mut only = rustix::thread::CpuSet::new();
    only.set(cpu);
    rustix::thread::sched_setaffinity(None, &only)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use rustix::thread::{CpuSet, sched_getaffinity};

    /// The CPUs this process may run on.
    fn allowed() -> Vec<usize> {
        let set = sched_getaffinity(None).unwrap();
        (0..CpuSet::MAX_CPU)
            .filter(|cpu| set.is_set(*cpu))
            .collect()
    }

    /// `own(copies)` asked from a new thread pinned to `cpu`.
    fn own_on(cpu: usize, copies: usize) -> usize {
        std::thread::spawn(move || {
            pin_to_cpu(cpu).unwrap();
            own(copies)
        })
        .join()
        .unwrap()
    }

    #[test]
    fn threads_on_different_cores_use_different_copies_whatever_order_they_ask_in() {
        let cpus = allowed();
        assert!(
            cpus.len() >= 2,
            "this test needs a machine with two cores for the process, it has {cpus:?}"
        );
        let copies = copies();
        assert!(copies >= 2, "the host keeps {copies} copy on CPUs {cpus:?}");
        let (first, second) = (cpus[0], cpus[1]);
        // Numbering threads as they first asked gave the first and the third thread (here on
        // different cores) the same copy of two whenever one thread asked between them.
        let a = own_on(first, copies);
        let between = own_on(first, copies);
        let b = own_on(second, copies);
        assert_eq!(a, between, "two threads on one core use its copy");
        assert_ne!(a, b, "threads on CPUs {first} and {second} share copy {a}");
        // And each allowed core has its own place, up to the copies there are.
        let places: std::collections::BTreeSet<usize> = cpus
            .iter()
            .take(copies)
            .map(|cpu| own_on(*cpu, copies))
            .collect();
        assert_eq!(places.len(), copies.min(cpus.len()));
    }
}
