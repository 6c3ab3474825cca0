//! Call counts kept on the call path: how many calls each actor version served and how long
//! they took (`weft_actor_invocations_total`, `weft_actor_invocation_duration_seconds`), and
//! the same for the calls actors make to each provider (`weft_provider_calls_total`,
//! `weft_provider_call_duration_seconds`).
//!
//! Every call adds to these, from whichever core runs it, so they are not prometheus' own
//! counter and histogram (whose shared atomics the cores would take turns at, five a call):
//! each labelled series keeps one copy of its counts per core ([`crate::per_core`]), a call
//! adds to its core's copy (two atomic adds on a line no other core writes), and a scrape
//! sums the copies. The call count is the histogram's count, so the two always agree.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A call's duration buckets' upper bounds, nanoseconds: from a bare invoke (µs) to the
/// default deadline (5 s).
const BOUNDS_NS: [u64; 17] = [
    10_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// The bucket a call of `took_ns` falls in: the first whose bound it does not pass, or the
/// one past the last bound.
fn bucket(took_ns: u64) -> usize {
    BOUNDS_NS
        .iter()
        .position(|bound| took_ns <= *bound)
        .unwrap_or(BOUNDS_NS.len())
}

/// One core's copy of a version's counts, a cache line (three) of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct CoreCopy {
    /// Calls by bucket, not cumulative; the last counts those longer than every bound.
    calls: [AtomicU64; BOUNDS_NS.len() + 1],
    took_ns: AtomicU64,
}

/// The counts of one actor version, summed over the cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallTotals {
    /// Calls by bucket, not cumulative, the last past every bound.
    pub(crate) calls: [u64; BOUNDS_NS.len() + 1],
    /// Their durations' sum.
    pub(crate) took_ns: u64,
}

impl CallTotals {
    /// Every call counted.
    pub(crate) fn count(&self) -> u64 {
        self.calls.iter().sum()
    }

    /// (upper bound in nanoseconds, calls at most that long), for each bound.
    pub(crate) fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        BOUNDS_NS
            .iter()
            .zip(self.calls.iter())
            .scan(0, |sum, (bound, calls)| {
                *sum += calls;
                Some((*bound, *sum))
            })
    }
}

/// One series' counts (an actor version's, or a provider's).
#[derive(Debug)]
pub(crate) struct CallCounts {
    labels: Vec<String>,
    copies: Box<[CoreCopy]>,
}

impl CallCounts {
    fn new(labels: Vec<String>) -> Self {
        CallCounts {
            labels,
            copies: (0..crate::per_core::copies())
                .map(|_| CoreCopy::default())
                .collect(),
        }
    }

    /// One call that took `took`.
    pub(crate) fn observe(&self, took: Duration) {
        let took_ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // Both are in range: `own` is below its argument, `bucket` at most the last bucket.
        let Some(own) = self.copies.get(crate::per_core::own(self.copies.len())) else {
            return;
        };
        if let Some(calls) = own.calls.get(bucket(took_ns)) {
            calls.fetch_add(1, Ordering::Relaxed);
        }
        own.took_ns.fetch_add(took_ns, Ordering::Relaxed);
    }

    /// The counts so far, summed over the cores (each copy read as it is: calls ending while
    /// this reads may be in one sum and not another, never lost).
    pub(crate) fn totals(&self) -> CallTotals {
        let mut totals = CallTotals {
            calls: [0; BOUNDS_NS.len() + 1],
            took_ns: 0,
        };
        for copy in &self.copies {
            for (sum, calls) in totals.calls.iter_mut().zip(&copy.calls) {
                *sum += calls.load(Ordering::Relaxed);
            }
            totals.took_ns = totals
                .took_ns
                .wrapping_add(copy.took_ns.load(Ordering::Relaxed));
        }
        totals
    }
}

/// A family's names and help texts: its counter's, its histogram's, and its labels.
pub(crate) struct Names {
    pub(crate) counter: (&'static str, &'static str),
    pub(crate) histogram: (&'static str, &'static str),
    pub(crate) labels: &'static [&'static str],
}

/// The calls to actor versions.
pub(crate) const ACTOR_CALLS: Names = Names {
    counter: (
        "weft_actor_invocations_total",
        "Calls to the actor version, finished (served or failed).",
    ),
    histogram: (
        "weft_actor_invocation_duration_seconds",
        "How long calls to the actor version took, the wait for an instance included.",
    ),
    labels: super::ACTOR,
};

/// The calls actors make to providers.
pub(crate) const PROVIDER_CALLS: Names = Names {
    counter: (
        "weft_provider_calls_total",
        "Calls from actors of this host to the provider, finished.",
    ),
    histogram: (
        "weft_provider_call_duration_seconds",
        "How long calls to the provider took.",
    ),
    labels: super::PROVIDER,
};

/// A counter and a histogram of calls, by their labels, over every series this host has
/// counted: a prometheus [`Collector`] summing each series' copies when scraped.
pub(crate) struct CallFamily {
    names: Names,
    counter: Desc,
    histogram: Desc,
    /// Each series' counts by its labels: an actor version that starts again with the same
    /// labels goes on counting where it was, as prometheus' labelled families do.
    series: Mutex<HashMap<Vec<String>, Arc<CallCounts>>>,
}

impl CallFamily {
    pub(crate) fn new(names: Names) -> Result<Self, prometheus::Error> {
        let labels = || names.labels.iter().map(|l| (*l).to_string()).collect();
        let desc = |(name, help): (&str, &str)| {
            Desc::new(name.into(), help.into(), labels(), HashMap::new())
        };
        Ok(CallFamily {
            counter: desc(names.counter)?,
            histogram: desc(names.histogram)?,
            names,
            series: Mutex::default(),
        })
    }

    /// The counts of the series with `labels` (as many as the family's label names).
    pub(crate) fn series(&self, labels: &[&str]) -> Arc<CallCounts> {
        let labels: Vec<String> = labels.iter().map(|l| (*l).to_string()).collect();
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        series
            .entry(labels.clone())
            .or_insert_with(|| Arc::new(CallCounts::new(labels)))
            .clone()
    }

    fn family(
        name: &str,
        help: &str,
        kind: MetricType,
        metrics: Vec<proto::Metric>,
    ) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(kind);
        family.set_metric(metrics);
        family
    }
}

fn label_pairs(names: &[&str], labels: &[String]) -> Vec<LabelPair> {
    names
        .iter()
        .zip(labels)
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name((*name).to_string());
            pair.set_value(value.clone());
            pair
        })
        .collect()
}

/// A [`CallFamily`] as registered, shared with the host that adds series to it.
pub(crate) struct Registered(pub(crate) Arc<CallFamily>);

impl Collector for Registered {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.0.counter, &self.0.histogram]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let family = &self.0;
        let versions: Vec<Arc<CallCounts>> = family
            .series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let (mut counters, mut histograms) = (Vec::new(), Vec::new());
        for version in versions {
            let totals = version.totals();
            let mut counter = proto::Counter::default();
            counter.set_value(totals.count() as f64);
            let mut metric =
                proto::Metric::from_label(label_pairs(family.names.labels, &version.labels));
            metric.set_counter(counter);
            counters.push(metric);

            let mut histogram = proto::Histogram::default();
            histogram.set_sample_count(totals.count());
            histogram.set_sample_sum(totals.took_ns as f64 / 1e9);
            histogram.set_bucket(
                totals
                    .cumulative()
                    .map(|(bound_ns, calls)| {
                        let mut bucket = proto::Bucket::default();
                        bucket.set_upper_bound(bound_ns as f64 / 1e9);
                        bucket.set_cumulative_count(calls);
                        bucket
                    })
                    .collect(),
            );
            let mut metric =
                proto::Metric::from_label(label_pairs(family.names.labels, &version.labels));
            metric.set_histogram(histogram);
            histograms.push(metric);
        }
        let (counter, histogram) = (family.names.counter, family.names.histogram);
        vec![
            CallFamily::family(counter.0, counter.1, MetricType::COUNTER, counters),
            CallFamily::family(histogram.0, histogram.1, MetricType::HISTOGRAM, histograms),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_falls_in_the_first_bucket_whose_bound_it_does_not_pass() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(10_000), 0);
        assert_eq!(bucket(10_001), 1);
        assert_eq!(bucket(5_000_000_000), BOUNDS_NS.len() - 1);
        assert_eq!(bucket(5_000_000_001), BOUNDS_NS.len());
    }

    #[test]
    fn calls_counted_on_many_threads_are_all_in_the_totals() {
        let counts = Arc::new(CallCounts::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counts.observe(Duration::from_micros(20));
                    }
                    counts.observe(Duration::from_secs(6));
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_ok(), "a counting thread panicked");
        }
        let totals = counts.totals();
        assert_eq!(totals.count(), 4004);
        assert_eq!(totals.calls[1], 4000, "20 µs is in the 50 µs bucket");
        assert_eq!(totals.calls[BOUNDS_NS.len()], 4, "6 s is past every bound");
        assert_eq!(totals.took_ns, 4000 * 20_000 + 4 * 6_000_000_000);
        let cumulative: Vec<_> = totals.cumulative().collect();
        assert_eq!(cumulative[0], (10_000, 0));
        assert_eq!(cumulative[1], (50_000, 4000));
        assert_eq!(cumulative.last(), Some(&(5_000_000_000, 4000)));
    }
}
