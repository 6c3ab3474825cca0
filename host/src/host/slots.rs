//! Slots for instances when the engine has none free: idle instances of other actors are
//! dropped for them, the longest idle first.

use super::HostState;
use super::canary::Served;
use crate::actor::ActorPool;
use std::sync::Arc;

/// Most idle instances dropped at once when the engine's slots run out: a 64th of the slots
/// (1 where there are under 128), and at most this many.
const RECLAIM_BATCH: usize = 32;

impl HostState {
    /// Frees slots for a call that found none: one pass over the actors finds each one's
    /// longest-idle instance, and the longest idle of those are dropped (a 64th of the slots,
    /// at most [`RECLAIM_BATCH`]); whether any was. A pass visits every actor (with 10,000 of
    /// them, most of what such a call costs), so it frees slots for the calls after this one
    /// too; an instance dropped early costs its actor a start (microseconds) on its next call.
    pub(super) fn reclaim_idle_slot(&self) -> bool {
        let batch = (self.engine.instance_slots() / 64).clamp(1, RECLAIM_BATCH);
        let mut oldest: Vec<(u64, Arc<ActorPool>)> = Vec::with_capacity(batch);
        for pool in self.actors.read().values().flat_map(Served::pools) {
            let Some(since) = pool.oldest_idle() else {
                continue;
            };
            if oldest.len() < batch {
                oldest.push((since, pool.clone()));
            } else if let Some(newest) = oldest.iter_mut().max_by_key(|(at, _)| *at)
                && since < newest.0
            {
                *newest = (since, pool.clone());
            }
        }
        // Every one is dropped (no stopping at the first), so the calls after this one find
        // slots free.
        let mut freed = false;
        for (_, pool) in &oldest {
            freed |= pool.drop_oldest_idle();
        }
        freed
    }
}
