//! Health: whether each actor and provider of a host can serve, and whether the host as a
//! whole is ready for traffic (what a load balancer, a Kubernetes probe or a circuit breaker
//! asks).
//!
//! A round of checks ([`crate::Host::check_health`]) finds, in this order:
//! - each provider's own word ([`weft_provider_sdk::Provider::health`]: a Redis provider
//!   pings its servers, a NATS one looks at its connections), within a timeout, every
//!   provider at once; and every provider a link names that runs neither here nor on the
//!   lattice;
//! - on a lattice, whether the host's NATS connection is up;
//! - for each actor: every capability its claims sign it for, other than the host's own
//!   built-ins, has a link, and the provider each of its links names is healthy; and its own
//!   `Actor.HealthRequest` answers healthy. That call goes only to an instance idle at the
//!   time (never one started for it, never waiting for one), so checks take no place a caller
//!   needs and no slot; an actor busy on every instance keeps its last answer, and one that
//!   holds no instance (not called yet, or idle long enough to be reaped) is not asked.
//!
//! What a round found is kept, with since when each part has been as it is; readiness is read
//! from it, never computed per probe, so probes cost nothing however often they come. A part
//! turning healthy or unhealthy is a [`HealthChange`], sent to every subscriber
//! ([`crate::Host::health_changes`]).
//!
//! Not here: the HTTP endpoint serving it (the `weft` binary's), and the periodic rounds'
//! timer ([`crate::Host::watch_health`] spawns it).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How often, and how patiently, the host checks.
#[derive(Debug, Clone, Copy)]
pub struct HealthConfig {
    /// Between rounds; each wait is jittered by ±10% so hosts started together do not check
    /// their shared servers in step.
    pub interval: Duration,
    /// How long one provider or actor check may take before it counts as failed.
    pub timeout: Duration,
}

/// The interval by default: a tenth of a typical probe's failure window.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// A check's timeout by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// One part's health (an actor, a provider, the lattice connection), and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// Whether it can serve.
    pub healthy: bool,
    /// Since when it has been so, Unix milliseconds.
    pub since_unix_ms: u64,
    /// What is wrong, each naming what to do; empty when healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// An actor's health in a [`Readiness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorHealth {
    /// Its module key.
    pub id: String,
    /// The name in its claims.
    pub name: String,
    /// How it is.
    #[serde(flatten)]
    pub status: HealthStatus,
}

/// A provider's health in a [`Readiness`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderHealth {
    /// Its id.
    pub id: String,
    /// How it is.
    #[serde(flatten)]
    pub status: HealthStatus,
}

/// What the last round of checks found: `ready` only when every part is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Whether the host is ready for traffic.
    pub ready: bool,
    /// When the round ran, Unix milliseconds (0: none has yet).
    pub checked_unix_ms: u64,
    /// On a lattice: its NATS connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice: Option<HealthStatus>,
    /// Every actor running here.
    pub actors: Vec<ActorHealth>,
    /// Every provider running here or named by a link.
    pub providers: Vec<ProviderHealth>,
}

impl Readiness {
    /// Only what concerns the actor `actor` (its id, name or call alias, as the caller
    /// resolved it to `id`): ready when it and the lattice connection are healthy. Its links'
    /// providers are already among its own problems.
    pub fn of_actor(&self, id: &str) -> Option<Readiness> {
        let actor = self.actors.iter().find(|a| a.id == id)?.clone();
        let lattice_ok = self.lattice.as_ref().is_none_or(|l| l.healthy);
        Some(Readiness {
            ready: actor.status.healthy && lattice_ok,
            checked_unix_ms: self.checked_unix_ms,
            lattice: self.lattice.clone(),
            actors: vec![actor],
            providers: Vec::new(),
        })
    }
}

/// What a part is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// An actor (by module key).
    Actor,
    /// A provider (by id).
    Provider,
    /// The host's lattice connection.
    Lattice,
}

/// A part turned healthy or unhealthy (or was first seen unhealthy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// What kind of part.
    pub part: Part,
    /// Its id (the lattice's name for the lattice).
    pub id: String,
    /// How it is now.
    pub status: HealthStatus,
}

/// What the rounds found, kept between them.
#[derive(Debug, Default)]
pub(crate) struct Book {
    pub(crate) checked_unix_ms: u64,
    pub(crate) lattice: Option<HealthStatus>,
    pub(crate) actors: BTreeMap<String, (String, HealthStatus)>,
    pub(crate) providers: BTreeMap<String, HealthStatus>,
    /// Each actor's last answer to `Actor.HealthRequest` (`Err`: what was wrong), kept for a
    /// round where every instance was busy.
    pub(crate) own_answers: BTreeMap<String, Result<(), String>>,
}

/// The status of a part found `problems` now, given how it was: `since` moves only when it
/// turns; `Some` change when it turned (or is new and unhealthy).
pub(crate) fn next_status(
    before: Option<&HealthStatus>,
    problems: Vec<String>,
    now_ms: u64,
) -> (HealthStatus, bool) {
    let healthy = problems.is_empty();
    let (since, changed) = match before {
        Some(before) if before.healthy == healthy => (before.since_unix_ms, false),
        Some(_) => (now_ms, true),
        None => (now_ms, !healthy),
    };
    (
        HealthStatus {
            healthy,
            since_unix_ms: since,
            problems,
        },
        changed,
    )
}

impl Book {
    /// What it holds, as a [`Readiness`].
    pub(crate) fn readiness(&self) -> Readiness {
        let actors: Vec<ActorHealth> = self
            .actors
            .iter()
            .map(|(id, (name, status))| ActorHealth {
                id: id.clone(),
                name: name.clone(),
                status: status.clone(),
            })
            .collect();
        let providers: Vec<ProviderHealth> = self
            .providers
            .iter()
            .map(|(id, status)| ProviderHealth {
                id: id.clone(),
                status: status.clone(),
            })
            .collect();
        let ready = self.checked_unix_ms > 0
            && self.lattice.as_ref().is_none_or(|l| l.healthy)
            && actors.iter().all(|a| a.status.healthy)
            && providers.iter().all(|p| p.status.healthy);
        Readiness {
            ready,
            checked_unix_ms: self.checked_unix_ms,
            lattice: self.lattice.clone(),
            actors,
            providers,
        }
    }
}

/// The wait before the next round: `interval`, ±10%.
pub(crate) fn jittered(interval: Duration) -> Duration {
    use rand::Rng;
    let tenth = interval / 10;
    let spread = u64::try_from(tenth.as_micros()).unwrap_or(u64::MAX / 2);
    interval - tenth + Duration::from_micros(rand::thread_rng().gen_range(0..=spread * 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_moves_only_when_a_part_turns() {
        let (first, changed) = next_status(None, Vec::new(), 10);
        assert!(first.healthy && !changed, "new and healthy: no change");
        let (same, changed) = next_status(Some(&first), Vec::new(), 20);
        assert_eq!((same.since_unix_ms, changed), (10, false));
        let (sick, changed) = next_status(Some(&same), vec!["gone".into()], 30);
        assert_eq!(
            (sick.healthy, sick.since_unix_ms, changed),
            (false, 30, true)
        );
        let (new_sick, changed) = next_status(None, vec!["gone".into()], 40);
        assert!(
            !new_sick.healthy && changed,
            "new and unhealthy is a change"
        );
    }

    #[test]
    fn ready_only_after_a_round_with_every_part_healthy() {
        let mut book = Book::default();
        assert!(!book.readiness().ready, "no round yet: not ready");
        book.checked_unix_ms = 1;
        assert!(book.readiness().ready);
        book.providers
            .insert("kv".into(), next_status(None, vec!["down".into()], 1).0);
        assert!(!book.readiness().ready);
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        for _ in 0..1000 {
            let wait = jittered(Duration::from_secs(10));
            assert!(wait >= Duration::from_secs(9) && wait <= Duration::from_secs(11));
        }
    }
}
