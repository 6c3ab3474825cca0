//! A canary update on a host: the new version of an actor serves a share of its calls beside
//! the running one, both are counted ([`crate::canary::Tally`]), and a watcher judges them
//! ([`crate::canary::judge`]) until it promotes the new version or rolls it back, by itself,
//! or an operator decides first. Either way the switch is the one an update makes: calls in
//! flight finish on the version they started on.

use super::update::refused;
use super::{Host, HostError, HostState, UpdateOptions, UpdateRefused};
use crate::actor::{ActorIdentity, ActorPool};
use crate::canary::{CanaryPlan, CanaryStatus, CanaryVerdict, Outcome, PPM, judge};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

/// How many verdicts a subscriber may fall behind before it misses the oldest.
pub(super) const VERDICTS_KEPT: usize = 64;

/// An actor as this host serves it: its running version and, during a canary, the new one
/// with its share of the calls.
#[derive(Clone)]
pub(crate) struct Served {
    pub(crate) stable: Arc<ActorPool>,
    pub(crate) canary: Option<Arc<Split>>,
}

impl Served {
    pub(crate) fn new(stable: Arc<ActorPool>) -> Self {
        Served {
            stable,
            canary: None,
        }
    }

    /// The version the next call goes to.
    pub(crate) fn pick(&self) -> &Arc<ActorPool> {
        match &self.canary {
            Some(split) if split.takes_next() => &split.pool,
            _ => &self.stable,
        }
    }

    /// Every version serving calls now.
    pub(crate) fn pools(&self) -> impl Iterator<Item = &Arc<ActorPool>> {
        std::iter::once(&self.stable).chain(self.canary.as_ref().map(|split| &split.pool))
    }
}

/// A canary's new version and how calls are shared with it.
pub(crate) struct Split {
    pub(crate) pool: Arc<ActorPool>,
    plan: CanaryPlan,
    /// Calls shared out so far: call n goes to the canary when n·share crosses a whole
    /// million, so it gets its share exactly, spread evenly, with no random draw.
    shared: AtomicU64,
    started: Instant,
    /// What an operator decided, if one did before the watcher.
    decided: Mutex<Option<Outcome>>,
    told: tokio::sync::Notify,
}

impl Split {
    fn takes_next(&self) -> bool {
        let n = self.shared.fetch_add(1, Ordering::Relaxed);
        let share = u64::from(self.plan.share_ppm);
        let ppm = u64::from(PPM);
        (n.wrapping_add(1).wrapping_mul(share) / ppm) > (n.wrapping_mul(share) / ppm)
    }

    /// The canary's revision, as printed.
    pub(crate) fn revision(&self) -> String {
        self.pool
            .identity()
            .revision
            .map_or_else(|| "-".to_string(), |r| r.to_string())
    }
}

impl Host {
    /// Starts a canary of a new version of a running actor: verified, compiled, started and
    /// health-checked as for [`Host::update_actor`], then given `plan.share_ppm` of the
    /// actor's calls while a watcher compares the two versions. The watcher promotes the new
    /// version after `plan.watch_for`, or rolls it back as soon as its error rate is too high
    /// or, at the end, its p99 too slow or its calls too few; [`Host::canary_verdicts`] tells
    /// how it ended. Returns the new version's identity once it takes calls.
    pub async fn canary_actor(
        &self,
        actor_id: &str,
        bytes: &[u8],
        options: UpdateOptions,
        plan: CanaryPlan,
    ) -> Result<ActorIdentity, HostError> {
        if let Some(problem) = plan.problem() {
            return Err(refused(actor_id, UpdateRefused::CanaryPlan(problem)));
        }
        let _one_at_a_time = self.state.updates.lock().await;
        let (old, pool) = self.successor(actor_id, bytes, options).await?;
        let identity = pool.identity().clone();
        let split = Arc::new(Split {
            pool: Arc::new(pool),
            plan,
            shared: AtomicU64::new(0),
            started: Instant::now(),
            decided: Mutex::new(None),
            told: tokio::sync::Notify::new(),
        });
        old.tally().start();
        split.pool.tally().start();
        let begun = self.state.actors.write().update(actor_id, |served| {
            let still_old = Arc::ptr_eq(&served.stable, &old);
            if still_old {
                served.canary = Some(split.clone());
            }
            still_old
        });
        if begun != Some(true) {
            return Err(refused(actor_id, UpdateRefused::Stopped));
        }
        tracing::info!(actor = %actor_id, revision = ?identity.revision, share_ppm = plan.share_ppm, "canary started");
        tokio::spawn(watch(
            Arc::downgrade(&self.state),
            actor_id.to_string(),
            old,
            split,
        ));
        Ok(identity)
    }

    /// Ends the canary of `actor_id` now, promoting its new version or rolling it back, as an
    /// operator decides; its verdict is told as for one the watcher reached.
    pub fn decide_canary(&self, actor_id: &str, promote: bool) -> Result<(), HostError> {
        let split = self
            .state
            .actors
            .read()
            .get(actor_id)
            .and_then(|served| served.canary.clone())
            .ok_or_else(|| HostError::NoCanary(actor_id.to_string()))?;
        let outcome = if promote {
            Outcome::Promoted
        } else {
            Outcome::RolledBack
        };
        *split.decided.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        split.told.notify_one();
        Ok(())
    }

    /// The canary of `actor_id` running now, if one does.
    pub fn canary_of(&self, actor_id: &str) -> Option<CanaryStatus> {
        let split = self.state.actors.read().get(actor_id)?.canary.clone()?;
        Some(CanaryStatus {
            revision: split.pool.identity().revision,
            share_ppm: split.plan.share_ppm,
            watch_for_ms: split.plan.watch_for_ms,
            running_for_ms: u64::try_from(split.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// What an actor served so far, its canary's calls included, when the host keeps
    /// metrics.
    pub fn actor_load(&self, actor_id: &str) -> Option<crate::metrics::ActorLoad> {
        let served = self.state.actors.read().get(actor_id)?.clone();
        let mut loads = served.pools().filter_map(|pool| pool.served_load());
        let first = loads.next()?;
        Some(loads.fold(first, |sum, load| sum.plus(&load)))
    }

    /// How each canary ends from now on. A subscriber more than a few dozen verdicts behind
    /// misses the oldest.
    pub fn canary_verdicts(&self) -> tokio::sync::broadcast::Receiver<CanaryVerdict> {
        self.state.canary_verdicts.subscribe()
    }
}

/// Judges the canary `split` of `actor_id` against `old` until it ends, then tells its
/// verdict. Looks often enough to roll a failing version back within a twentieth of the
/// window (at most a second), and at once when an operator decides.
async fn watch(state: Weak<HostState>, actor_id: String, old: Arc<ActorPool>, split: Arc<Split>) {
    let plan = split.plan;
    let every =
        (plan.watch_for() / 20).clamp(Duration::from_millis(50), Duration::from_millis(250));
    let over_at = split.started + plan.watch_for();
    let (outcome, why) = loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = split.told.notified() => {}
        }
        let decided = *split.decided.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(outcome) = decided {
            break (outcome, "an operator decided so".to_string());
        }
        let Some(host) = state.upgrade() else { return };
        if !host.runs_canary(&actor_id, &split) {
            break (Outcome::Ended, "the actor was stopped".to_string());
        }
        let over = Instant::now() >= over_at;
        let figures = (old.tally().figures(), split.pool.tally().figures());
        if let Some(judged) = judge(&plan, &figures.0, &figures.1, over) {
            break judged;
        }
    };
    let (old_figures, new_figures) = (old.tally().figures(), split.pool.tally().figures());
    old.tally().stop();
    split.pool.tally().stop();
    let Some(state) = state.upgrade() else { return };
    let outcome = state.end_canary(&actor_id, &split, outcome);
    let host = Host { state };
    host.evict_unused_modules();
    let verdict = CanaryVerdict {
        actor_id,
        name: old.identity().name.clone(),
        old_revision: old.identity().revision,
        new_revision: split.pool.identity().revision,
        outcome,
        why,
        old: old_figures,
        new: new_figures,
        after_ms: u64::try_from(split.started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    match outcome {
        Outcome::Promoted => tracing::info!(%verdict, "canary promoted"),
        Outcome::RolledBack | Outcome::Ended => tracing::warn!(%verdict, "canary not promoted"),
    }
    // No subscriber is no error: the verdict is in the log.
    let _ = host.state.canary_verdicts.send(verdict);
}

impl HostState {
    fn runs_canary(&self, actor_id: &str, split: &Arc<Split>) -> bool {
        self.actors
            .read()
            .get(actor_id)
            .and_then(|served| served.canary.as_ref())
            .is_some_and(|running| Arc::ptr_eq(running, split))
    }

    /// Switches `actor_id` to the canary's version (promoted) or back to the running one
    /// alone; `Ended` when the canary no longer runs (the actor was stopped).
    fn end_canary(&self, actor_id: &str, split: &Arc<Split>, outcome: Outcome) -> Outcome {
        let ended = self.actors.write().update(actor_id, |served| {
            let runs_it = served
                .canary
                .as_ref()
                .is_some_and(|running| Arc::ptr_eq(running, split));
            if runs_it {
                served.canary = None;
                if outcome == Outcome::Promoted {
                    served.stable = split.pool.clone();
                }
            }
            runs_it
        });
        if ended == Some(true) {
            outcome
        } else {
            Outcome::Ended
        }
    }
}
