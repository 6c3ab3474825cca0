//! Prometheus metrics of one host: how many calls each actor version serves, how many fail
//! and why, how long they take, its instances, and the same for the providers its actors
//! call; and the host's own memory and the lattice messages it sent, received and refused.
//!
//! Off unless the host is given a [`Metrics`] (`HostConfig::metrics`), and then cheap on the
//! call path: an actor version resolves its handles once, when it starts, and a route to a
//! provider once per core (`crate::invoke::provider_routes`), so a call pays two atomic adds
//! on its core's copy of its counts ([`calls`]), with no label lookup, no lock and no line
//! shared with other cores; a failure looks its kind's counter up (failures are the rare
//! case). Gauges (instances, memory) are read when scraped, not kept up to date per call.
//!
//! Names follow Prometheus' conventions: `weft_` prefix, `_total` counters, `_seconds`
//! histograms, labels `actor` (module key), `name`, `revision`, `provider`, `contract`, `kind`
//! (a `FailureKind`, snake case).
//!
//! Not here: serving them over HTTP (the `weft` binary's `/metrics`).

mod calls;

use calls::{CallCounts, CallFamily};
use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Duration;
use weft_contracts::invocation::FailureKind;

/// A metrics family could not be made or registered (a name clash: a bug, not an input).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Every metric of one host, in one registry.
pub struct Metrics {
    registry: Registry,
    actor_calls: Arc<CallFamily>,
    actor_errors: IntCounterVec,
    actor_instance_starts: IntCounterVec,
    actor_shed: IntCounterVec,
    actor_instances: IntGaugeVec,
    provider_calls: Arc<CallFamily>,
    provider_errors: IntCounterVec,
    provider_replacements: IntCounterVec,
    provider_restarts: IntGaugeVec,
    lattice_messages: IntCounterVec,
    lattice_refused: IntCounterVec,
    resident_bytes: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const ACTOR: &[&str] = &["actor", "name", "revision"];
const PROVIDER: &[&str] = &["provider", "contract"];

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let family = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, MetricsError> {
    let family = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(family.clone()))?;
    Ok(family)
}

fn single(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
    let one = IntGauge::new(name, help)?;
    registry.register(Box::new(one.clone()))?;
    Ok(one)
}

/// A failure kind as a label value.
pub fn kind_label(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Denied => "denied",
        FailureKind::NoLink => "no_link",
        FailureKind::Busy => "busy",
        FailureKind::Deadline => "deadline",
        FailureKind::Trapped => "trapped",
        FailureKind::ActorFailed => "actor_failed",
        FailureKind::ProviderFailed => "provider_failed",
        FailureKind::NotFound => "not_found",
        FailureKind::Unavailable => "unavailable",
        FailureKind::BadRequest => "bad_request",
        _ => "other",
    }
}

impl Metrics {
    /// Every family, registered.
    pub fn new() -> Result<Self, MetricsError> {
        let r = Registry::new();
        let actor_calls = Arc::new(CallFamily::new(calls::ACTOR_CALLS)?);
        r.register(Box::new(calls::Registered(actor_calls.clone())))?;
        let provider_calls = Arc::new(CallFamily::new(calls::PROVIDER_CALLS)?);
        r.register(Box::new(calls::Registered(provider_calls.clone())))?;
        Ok(Metrics {
            actor_calls,
            provider_calls,
            actor_errors: counter(
                &r,
                "weft_actor_errors_total",
                "Calls to the actor version that failed, by kind.",
                &["actor", "name", "revision", "kind"],
            )?,
            actor_instance_starts: counter(
                &r,
                "weft_actor_instance_starts_total",
                "Instances started for the actor version (the first one included).",
                ACTOR,
            )?,
            actor_shed: counter(
                &r,
                "weft_actor_shed_calls_total",
                "Calls refused as busy: every instance taken and the queue full, or no place in time.",
                ACTOR,
            )?,
            actor_instances: gauge(
                &r,
                "weft_actor_instances",
                "The actor version's instances, idle or busy, when scraped.",
                &["actor", "name", "revision", "state"],
            )?,
            provider_errors: counter(
                &r,
                "weft_provider_errors_total",
                "Calls to the provider that failed, by kind.",
                &["provider", "contract", "kind"],
            )?,
            provider_replacements: counter(
                &r,
                "weft_provider_replacements_total",
                "Times the provider was replaced by a new instance while serving.",
                &["provider"],
            )?,
            provider_restarts: gauge(
                &r,
                "weft_provider_process_restarts",
                "Times the provider's supervised process was restarted, when scraped.",
                &["provider"],
            )?,
            lattice_messages: counter(
                &r,
                "weft_lattice_messages_total",
                "Lattice messages this host sealed and sent, and received and opened.",
                &["direction"],
            )?,
            lattice_refused: counter(
                &r,
                "weft_lattice_refused_messages_total",
                "Lattice messages this host refused, by reason (unsealed, malformed, not_member, bad_seal, stale, replayed, token).",
                &["reason"],
            )?,
            resident_bytes: single(
                &r,
                "weft_process_resident_memory_bytes",
                "The host process's resident memory, when scraped.",
            )?,
            registry: r,
        })
    }

    /// The handles for one actor version's calls.
    pub(crate) fn actor(&self, id: &str, name: &str, revision: Option<i32>) -> ActorMetrics {
        let revision = revision.map_or_else(|| "none".to_string(), |r| r.to_string());
        let labels = [id, name, revision.as_str()];
        let calls = self.actor_calls.series(&labels);
        ActorMetrics {
            calls,
            instance_starts: self.actor_instance_starts.with_label_values(&labels),
            shed: self.actor_shed.with_label_values(&labels),
            errors: self.actor_errors.clone(),
            failed: std::sync::atomic::AtomicU64::new(0),
            labels: [id.to_string(), name.to_string(), revision],
        }
    }

    /// The handles for the calls actors make to `provider` for `contract`.
    pub(crate) fn provider(&self, provider: &str, contract: &str) -> ProviderMetrics {
        ProviderMetrics {
            calls: self.provider_calls.series(&[provider, contract]),
            errors: self.provider_errors.clone(),
            labels: [provider.to_string(), contract.to_string()],
        }
    }

    /// A provider was replaced while serving.
    pub fn provider_replaced(&self, provider: &str) {
        self.provider_replacements
            .with_label_values(&[provider])
            .inc();
    }

    /// A supervised provider process has been restarted `restarts` times so far.
    pub fn provider_restarts(&self, provider: &str, restarts: u32) {
        self.provider_restarts
            .with_label_values(&[provider])
            .set(i64::from(restarts));
    }

    /// Sets the gauges read when scraped and renders every family in Prometheus' text format.
    pub(crate) fn render(
        &self,
        instances: &[(ActorMetricsLabels, usize, usize)],
        lattice: Option<weft_lattice::Traffic>,
    ) -> Vec<u8> {
        self.actor_instances.reset();
        for (labels, idle, busy) in instances {
            let [id, name, revision] = labels;
            for (state, count) in [("idle", idle), ("busy", busy)] {
                self.actor_instances
                    .with_label_values(&[id.as_str(), name.as_str(), revision.as_str(), state])
                    .set(i64::try_from(*count).unwrap_or(i64::MAX));
            }
        }
        if let Some(traffic) = lattice {
            // Counters the member keeps: each moves up to the member's count.
            let up_to = |counter: IntCounter, count: u64| {
                counter.inc_by(count.saturating_sub(counter.get()));
            };
            for (direction, count) in [("sent", traffic.sent), ("received", traffic.received)] {
                up_to(self.lattice_messages.with_label_values(&[direction]), count);
            }
            for (reason, count) in weft_lattice::Refusal::REASONS.iter().zip(traffic.refused) {
                up_to(self.lattice_refused.with_label_values(&[reason]), count);
            }
        }
        if let Some(bytes) = resident_bytes() {
            self.resident_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut text = Vec::new();
        // Encoding into a Vec fails only on a family the encoder cannot write; say so in the
        // output rather than fail the scrape.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            text.extend_from_slice(format!("# error encoding metrics: {error}\n").as_bytes());
        }
        text
    }
}

/// The handles for the calls actors make to one provider for one contract.
pub(crate) struct ProviderMetrics {
    calls: Arc<CallCounts>,
    errors: IntCounterVec,
    labels: [String; 2],
}

impl ProviderMetrics {
    /// One call, finished: `failed` with its kind when it failed.
    pub(crate) fn call(&self, took: Duration, failed: Option<FailureKind>) {
        self.calls.observe(took);
        if let Some(kind) = failed {
            let [provider, contract] = &self.labels;
            self.errors
                .with_label_values(&[provider.as_str(), contract.as_str(), kind_label(kind)])
                .inc();
        }
    }
}

/// An actor version's labels: module key, name, revision.
pub(crate) type ActorMetricsLabels = [String; 3];

/// One actor version's handles.
pub(crate) struct ActorMetrics {
    calls: Arc<CallCounts>,
    instance_starts: IntCounter,
    shed: IntCounter,
    errors: IntCounterVec,
    /// Its failures of every kind (the per-kind counters are in `errors`), for [`ActorLoad`].
    failed: std::sync::atomic::AtomicU64,
    pub(crate) labels: ActorMetricsLabels,
}

impl ActorMetrics {
    /// One call, finished: `failed` with its kind when it failed.
    pub(crate) fn call(&self, took: Duration, failed: Option<FailureKind>) {
        self.calls.observe(took);
        if let Some(kind) = failed {
            self.failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if kind == FailureKind::Busy {
                self.shed.inc();
            }
            let [id, name, revision] = &self.labels;
            self.errors
                .with_label_values(&[
                    id.as_str(),
                    name.as_str(),
                    revision.as_str(),
                    kind_label(kind),
                ])
                .inc();
        }
    }

    /// An instance started.
    pub(crate) fn instance_started(&self) {
        self.instance_starts.inc();
    }

    /// What it served so far.
    pub(crate) fn load(&self) -> ActorLoad {
        let totals = self.calls.totals();
        ActorLoad {
            calls: totals.count(),
            failed: self.failed.load(std::sync::atomic::Ordering::Relaxed),
            // Whole microseconds: every bound is (10 µs is the smallest).
            latency_us: totals
                .cumulative()
                .map(|(bound_ns, calls)| (bound_ns / 1000, calls))
                .collect(),
        }
    }
}

/// What an actor served since it started, as its metrics count it: a dashboard takes two
/// of these apart in time for its rates, error rate and p99.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActorLoad {
    /// Calls, failed ones included.
    pub calls: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Calls by duration: (upper bound in microseconds, calls at most that long), as
    /// Prometheus' histogram buckets (the ones longer than the last bound are `calls` less
    /// its count).
    pub latency_us: Vec<(u64, u64)>,
}

impl ActorLoad {
    /// The sum of two versions' loads (a canary's and the running one's).
    pub fn plus(mut self, other: &ActorLoad) -> ActorLoad {
        self.calls += other.calls;
        self.failed += other.failed;
        for (mine, theirs) in self.latency_us.iter_mut().zip(&other.latency_us) {
            mine.1 += theirs.1;
        }
        self
    }
}

/// This process's resident memory, from `/proc/self/status` (Linux), bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
