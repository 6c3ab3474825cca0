//! Canary updates: a new version of an actor takes a share of the actor's calls beside the
//! running one, and is judged against it on their figures over a window: promoted when it
//! does as well, rolled back by itself when it fails more often or is slower. This file holds
//! what is asked ([`CanaryPlan`]), what is counted ([`Tally`]), how it is judged ([`judge`])
//! and what came of it ([`CanaryVerdict`]); the host runs a canary (`Host::canary_actor`).
//!
//! **What it is not:** it does not look into answers. A call counts as failed when the host
//! sees it fail (a trap, an error the guest returns, out of time, a limit broken, shed as
//! busy), which is what an HTTP client sees as a 5xx; an actor that answers `500` in a
//! well-formed response has succeeded as far as the host can tell.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Calls a canary must have served before its error rate is judged (and, at the end of the
/// window, before it may be promoted at all).
pub const MIN_CALLS: u64 = 20;
/// Calls each version must have served before their p99s are compared.
pub const MIN_CALLS_FOR_P99: u64 = 100;
/// A p99 is judged worse only when it is also this much slower than the running version's:
/// below it, one scheduling hiccup on a busy machine decides, not the new code.
pub const P99_NOISE_FLOOR: Duration = Duration::from_millis(1);
/// The shortest and the longest window a canary may be watched for.
pub const WATCH_FOR_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(24 * 3600));
/// A share of calls is counted in parts per million.
pub const PPM: u32 = 1_000_000;

/// What an operator asks of a canary update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CanaryPlan {
    /// The share of the actor's calls the new version takes, in parts per million
    /// (100,000 is 10%).
    pub share_ppm: u32,
    /// How long the two versions are compared before the new one is promoted.
    pub watch_for_ms: u64,
    /// How far the new version's error rate may exceed the running one's (0.01: by one
    /// percentage point); it is rolled back, at once, when it exceeds it.
    pub max_error_rate: f64,
    /// How many times the running version's p99 latency the new version's may be.
    pub max_p99_ratio: f64,
}

impl CanaryPlan {
    /// A plan of `share_ppm` over `watch_for`, with the default bounds: an error rate at most
    /// one percentage point over the running version's, a p99 at most 1.5 times its.
    pub fn new(share_ppm: u32, watch_for: Duration) -> Self {
        CanaryPlan {
            share_ppm,
            watch_for_ms: u64::try_from(watch_for.as_millis()).unwrap_or(u64::MAX),
            max_error_rate: 0.01,
            max_p99_ratio: 1.5,
        }
    }

    /// How long the canary is watched.
    pub fn watch_for(&self) -> Duration {
        Duration::from_millis(self.watch_for_ms)
    }

    /// What is wrong with the plan, if anything (checked before anything is loaded).
    pub fn problem(&self) -> Option<String> {
        let (shortest, longest) = WATCH_FOR_RANGE;
        if self.share_ppm == 0 || self.share_ppm >= PPM {
            return Some(format!(
                "a canary's share of calls must be above 0% and below 100% (asked: {}); \
                 for all of them, update without a canary",
                percent(f64::from(self.share_ppm) / f64::from(PPM))
            ));
        }
        if self.watch_for() < shortest || self.watch_for() > longest {
            return Some(format!(
                "a canary is watched for {} s to {} h (asked: {} ms)",
                shortest.as_secs(),
                longest.as_secs() / 3600,
                self.watch_for_ms
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Some(format!(
                "the error rate a canary may add is 0% to 100% (asked: {})",
                self.max_error_rate
            ));
        }
        if !(self.max_p99_ratio.is_finite() && self.max_p99_ratio >= 1.0) {
            return Some(format!(
                "the p99 ratio a canary may reach is at least 1 (asked: {})",
                self.max_p99_ratio
            ));
        }
        None
    }
}

/// Latency buckets: eight per power of two of microseconds (each at most 12.5% wide), up to
/// 2^36 µs (19 hours), far past any call deadline.
const SUB_BUCKET_BITS: u32 = 3;
const POWERS: u32 = 37;
const BUCKETS: usize = (POWERS << SUB_BUCKET_BITS) as usize;

/// What one version served during a canary: calls, failures and their latencies, counted
/// with atomic adds only (a call takes no lock), so both versions are counted at the cost of
/// an uncontended add or two per call. Made for a version when it first takes part in a
/// canary; a version that never does pays one atomic load per call to find it has none.
#[derive(Debug)]
pub struct Tally {
    on: AtomicBool,
    calls: AtomicU64,
    failed: AtomicU64,
    latency_us: Box<[AtomicU64]>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            on: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latency_us: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Tally {
    /// Starts counting from zero.
    pub fn start(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
        for bucket in &*self.latency_us {
            bucket.store(0, Ordering::Relaxed);
        }
        self.on.store(true, Ordering::Release);
    }

    /// Stops counting.
    pub fn stop(&self) {
        self.on.store(false, Ordering::Release);
    }

    /// Whether it counts now.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Counts one call that took `took`, and whether it failed.
    pub fn record(&self, took: Duration, failed: bool) {
        if !self.is_on() {
            return;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        if let Some(bucket) = self.latency_us.get(bucket_of(micros)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What it counted so far.
    pub fn figures(&self) -> Figures {
        let counts: Vec<u64> = self
            .latency_us
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        // The smallest bucket bound at or under which 99% of the calls fall.
        let wanted = total - total / 100;
        let mut seen = 0;
        let p99_us = (total > 0)
            .then(|| {
                counts.iter().enumerate().find_map(|(at, count)| {
                    seen += count;
                    (seen >= wanted).then(|| upper_bound(at))
                })
            })
            .flatten();
        Figures {
            calls: self.calls.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            p99_us,
        }
    }
}

/// The bucket of a latency: its power of two, then its next three bits.
fn bucket_of(micros: u64) -> usize {
    let micros = micros.max(1);
    let power = 63 - micros.leading_zeros();
    let sub = if power >= SUB_BUCKET_BITS {
        (micros >> (power - SUB_BUCKET_BITS)) & 0b111
    } else {
        (micros << (SUB_BUCKET_BITS - power)) & 0b111
    };
    let at = (u64::from(power.min(POWERS - 1)) << SUB_BUCKET_BITS) | sub;
    usize::try_from(at).unwrap_or(BUCKETS - 1)
}

/// The largest latency (µs) bucket `at` holds.
fn upper_bound(at: usize) -> u64 {
    let power = u32::try_from(at >> SUB_BUCKET_BITS).unwrap_or(POWERS - 1);
    let sub = (at & 0b111) as u64;
    let start = (8 + sub) << power >> SUB_BUCKET_BITS;
    let width = (1u64 << power >> SUB_BUCKET_BITS).max(1);
    start + width - 1
}

/// One version's figures during a canary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Figures {
    /// Calls it served (failed ones included).
    pub calls: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Its 99th-percentile latency in microseconds (within 12.5%), once it served a call.
    pub p99_us: Option<u64>,
}

impl Figures {
    /// The share of its calls that failed (0 with none).
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        self.failed as f64 / self.calls as f64
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed of {} call(s) ({})",
            self.failed,
            self.calls,
            percent(self.error_rate())
        )?;
        if let Some(p99) = self.p99_us {
            write!(f, ", p99 {}", millis(p99))?;
        }
        Ok(())
    }
}

/// A canary running now, as an inventory shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryStatus {
    /// The new version's revision.
    pub revision: Option<i32>,
    /// Its share of the calls, in parts per million.
    pub share_ppm: u32,
    /// How long it is watched for.
    pub watch_for_ms: u64,
    /// How long it has run.
    pub running_for_ms: u64,
}

/// How a canary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The new version serves every call now.
    Promoted,
    /// The running version serves every call again; the new one is gone.
    RolledBack,
    /// The actor was stopped while the canary ran.
    Ended,
}

/// The decision on a canary, with the figures it was made on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryVerdict {
    /// The actor's module key.
    pub actor_id: String,
    /// Its name.
    pub name: String,
    /// The running version's revision.
    pub old_revision: Option<i32>,
    /// The new version's revision.
    pub new_revision: Option<i32>,
    /// What was decided.
    pub outcome: Outcome,
    /// Why, in words.
    pub why: String,
    /// The running version's figures over the canary.
    pub old: Figures,
    /// The new version's.
    pub new: Figures,
    /// How long the canary ran, in milliseconds.
    pub after_ms: u64,
}

impl std::fmt::Display for CanaryVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let revision = |r: Option<i32>| r.map_or("-".to_string(), |r| r.to_string());
        let done = match self.outcome {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled back",
            Outcome::Ended => "ended",
        };
        write!(
            f,
            "{} revision {} {done} after {:.1} s: {}. Revision {}: {}; revision {}: {}",
            self.name,
            revision(self.new_revision),
            self.after_ms as f64 / 1000.0,
            self.why,
            revision(self.new_revision),
            self.new,
            revision(self.old_revision),
            self.old,
        )
    }
}

/// What a canary's figures call for: `Some(Promoted)` or `Some(RolledBack)` with why, or
/// `None` to keep watching. During the window only a worse error rate ends it (as soon as
/// the new version served [`MIN_CALLS`]); at its end (`over`) the p99s are compared too, and
/// a version that served fewer than [`MIN_CALLS`] is not promoted, there being no evidence
/// that it works.
pub fn judge(
    plan: &CanaryPlan,
    old: &Figures,
    new: &Figures,
    over: bool,
) -> Option<(Outcome, String)> {
    if new.calls >= MIN_CALLS && new.error_rate() > old.error_rate() + plan.max_error_rate {
        return Some((
            Outcome::RolledBack,
            format!(
                "its error rate {} is over the running version's {} by more than the {} allowed",
                percent(new.error_rate()),
                percent(old.error_rate()),
                percent(plan.max_error_rate)
            ),
        ));
    }
    if !over {
        return None;
    }
    if new.calls < MIN_CALLS {
        return Some((
            Outcome::RolledBack,
            format!(
                "it served {} call(s) in the window, too few to judge (at least {MIN_CALLS}); \
                 watch it longer (--watch-for) or give it a larger share (--canary)",
                new.calls
            ),
        ));
    }
    if let (Some(old_p99), Some(new_p99)) = (old.p99_us, new.p99_us)
        && old.calls >= MIN_CALLS_FOR_P99
        && new.calls >= MIN_CALLS_FOR_P99
    {
        let allowed = old_p99 as f64 * plan.max_p99_ratio;
        let floor = u64::try_from(P99_NOISE_FLOOR.as_micros()).unwrap_or(u64::MAX);
        if new_p99 as f64 > allowed && new_p99.saturating_sub(old_p99) > floor {
            return Some((
                Outcome::RolledBack,
                format!(
                    "its p99 {} is {:.2} times the running version's {} (at most {:.2} allowed)",
                    millis(new_p99),
                    new_p99 as f64 / old_p99.max(1) as f64,
                    millis(old_p99),
                    plan.max_p99_ratio
                ),
            ));
        }
    }
    Some((
        Outcome::Promoted,
        "it did as well as the running version over the window".into(),
    ))
}

/// A fraction as a percentage, one decimal.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

fn millis(micros: u64) -> String {
    format!("{:.2} ms", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(calls: u64, failed: u64, p99_us: u64) -> Figures {
        Figures {
            calls,
            failed,
            p99_us: Some(p99_us),
        }
    }

    #[test]
    fn buckets_hold_their_latencies_within_an_eighth() {
        for micros in [1u64, 2, 7, 8, 9, 15, 16, 100, 999, 1000, 12_345, 1 << 30] {
            let bound = upper_bound(bucket_of(micros));
            assert!(bound >= micros, "{micros} µs in a bucket up to {bound}");
            assert!(
                (bound - micros) as f64 <= micros as f64 / 8.0 + 1.0,
                "{micros} µs in a bucket up to {bound}"
            );
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn the_p99_is_the_latency_under_which_99_percent_fall() {
        let tally = Tally::default();
        tally.record(Duration::from_micros(5), false);
        assert_eq!(tally.figures().calls, 0, "counts only once started");
        tally.start();
        for _ in 0..990 {
            tally.record(Duration::from_micros(100), false);
        }
        for _ in 0..10 {
            tally.record(Duration::from_millis(50), true);
        }
        let seen = tally.figures();
        assert_eq!((seen.calls, seen.failed), (1000, 10));
        let p99 = seen.p99_us.unwrap();
        assert!((100..=113).contains(&p99), "{p99}");
        tally.record(Duration::from_millis(50), true);
        tally.record(Duration::from_millis(50), true);
        assert!(tally.figures().p99_us.unwrap() >= 50_000);
        tally.start();
        assert_eq!(tally.figures(), Figures::default());
    }

    #[test]
    fn a_canary_failing_more_is_rolled_back_at_once_and_a_good_one_promoted_at_the_end() {
        let plan = CanaryPlan::new(100_000, Duration::from_secs(60));
        let old = figures(1800, 0, 300);
        let bad = figures(200, 40, 300);
        let (outcome, why) = judge(&plan, &old, &bad, false).unwrap();
        assert_eq!(outcome, Outcome::RolledBack);
        assert!(why.contains("20.0%"), "{why}");
        // Too few calls yet to say.
        assert_eq!(judge(&plan, &old, &figures(10, 5, 300), false), None);
        let good = figures(200, 1, 320);
        assert_eq!(judge(&plan, &old, &good, false), None);
        assert_eq!(
            judge(&plan, &old, &good, true).unwrap().0,
            Outcome::Promoted
        );
        // The running version failing too raises the bar by its own rate.
        assert_eq!(
            judge(&plan, &figures(1800, 90, 300), &figures(200, 11, 300), true)
                .unwrap()
                .0,
            Outcome::Promoted
        );
    }

    #[test]
    fn a_slower_canary_is_rolled_back_at_the_end_beyond_the_noise_floor() {
        let plan = CanaryPlan::new(100_000, Duration::from_secs(60));
        let old = figures(1800, 0, 2000);
        let (outcome, why) = judge(&plan, &old, &figures(200, 0, 4000), true).unwrap();
        assert_eq!(outcome, Outcome::RolledBack);
        assert!(why.contains("2.00 times"), "{why}");
        assert_eq!(judge(&plan, &old, &figures(200, 0, 4000), false), None);
        // Twice as slow, but by less than the floor: noise, not the code.
        let fast = figures(1800, 0, 200);
        assert_eq!(
            judge(&plan, &fast, &figures(200, 0, 400), true).unwrap().0,
            Outcome::Promoted
        );
    }

    #[test]
    fn a_canary_no_one_called_is_not_promoted() {
        let plan = CanaryPlan::new(100_000, Duration::from_secs(60));
        let (outcome, why) = judge(&plan, &Figures::default(), &Figures::default(), true).unwrap();
        assert_eq!(outcome, Outcome::RolledBack);
        assert!(why.contains("too few"), "{why}");
    }

    #[test]
    fn plans_out_of_bounds_are_refused_saying_so() {
        let good = CanaryPlan::new(100_000, Duration::from_secs(60));
        assert_eq!(good.problem(), None);
        for bad in [
            CanaryPlan {
                share_ppm: 0,
                ..good
            },
            CanaryPlan {
                share_ppm: PPM,
                ..good
            },
            CanaryPlan {
                watch_for_ms: 10,
                ..good
            },
            CanaryPlan {
                watch_for_ms: u64::MAX,
                ..good
            },
            CanaryPlan {
                max_error_rate: -0.1,
                ..good
            },
            CanaryPlan {
                max_error_rate: f64::NAN,
                ..good
            },
            CanaryPlan {
                max_p99_ratio: 0.5,
                ..good
            },
            CanaryPlan {
                max_p99_ratio: f64::INFINITY,
                ..good
            },
        ] {
            assert!(bad.problem().is_some(), "{bad:?}");
        }
    }
}
