//! What the dashboard shows, made from two inventories of the lattice taken apart in time:
//! each actor's calls per second, error rate and p99 come from the difference of its load
//! (`weft_host::metrics::ActorLoad`) between them. Pure: no I/O, tested on its own.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use weft_host::canary::{PPM, percent};
use weft_host::control::{HostInventory, revision};
use weft_host::metrics::ActorLoad;

/// The page's data, as `/api/state` serves it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct View {
    /// When the inventory behind it was taken, Unix milliseconds.
    pub at_unix_ms: u64,
    /// Over how many seconds the rates were measured (none on the first inventory).
    pub over_secs: Option<f64>,
    pub hosts: Vec<HostRow>,
    pub actors: Vec<ActorRow>,
    pub providers: Vec<ProviderRow>,
    pub links: Vec<LinkRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub id: String,
    pub labels: String,
    pub uptime_secs: u64,
    pub actors: usize,
    pub providers: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActorRow {
    pub host: String,
    pub id: String,
    pub name: String,
    pub revision: String,
    /// "rev 3 at 10.0%" while a canary runs.
    pub canary: Option<String>,
    pub max_instances: usize,
    pub health: String,
    /// Calls per second over the last interval.
    pub per_sec: Option<f64>,
    /// Share of those calls that failed.
    pub error_rate: Option<f64>,
    /// The upper bound of the latency bucket holding the 99th percentile, in words
    /// (`≤ 0.25 ms`, `> 5000 ms` past the last bucket); none with no call in the interval.
    pub p99: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderRow {
    pub host: String,
    pub id: String,
    pub kind: String,
    pub process: bool,
    pub health: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LinkRow {
    pub actor: String,
    pub contract: String,
    pub link_name: String,
    pub provider: String,
    /// On how many hosts.
    pub hosts: usize,
}

/// The view of `now`, with rates measured against `before` (the previous inventory, taken
/// `over_secs` earlier).
pub fn view(
    now: &[HostInventory],
    before: &[HostInventory],
    over_secs: Option<f64>,
    at_unix_ms: u64,
) -> View {
    let earlier: BTreeMap<(&str, &str), &ActorLoad> = before
        .iter()
        .flat_map(|host| {
            host.actors.iter().filter_map(move |actor| {
                Some((
                    (host.host_id.as_str(), actor.id.as_str()),
                    actor.load.as_ref()?,
                ))
            })
        })
        .collect();
    let names: BTreeMap<&str, &str> = now
        .iter()
        .flat_map(|host| host.actors.iter())
        .map(|actor| (actor.id.as_str(), actor.name.as_str()))
        .collect();
    let mut view = View {
        at_unix_ms,
        over_secs,
        ..View::default()
    };
    let mut links: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    for host in now {
        let mut labels: Vec<String> = host
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        labels.sort();
        view.hosts.push(HostRow {
            id: host.host_id.clone(),
            labels: labels.join(" "),
            uptime_secs: host.uptime_secs,
            actors: host.actors.len(),
            providers: host.providers.len(),
        });
        for actor in &host.actors {
            let before = earlier.get(&(host.host_id.as_str(), actor.id.as_str()));
            let (per_sec, error_rate, p99_ms) = match (actor.load.as_ref(), before, over_secs) {
                (Some(now), Some(before), Some(secs)) => rates(before, now, secs),
                _ => (None, None, None),
            };
            view.actors.push(ActorRow {
                host: host.host_id.clone(),
                id: actor.id.clone(),
                name: actor.name.clone(),
                revision: revision(actor.revision),
                canary: actor.canary.map(|c| {
                    format!(
                        "rev {} at {}",
                        revision(c.revision),
                        percent(f64::from(c.share_ppm) / f64::from(PPM))
                    )
                }),
                max_instances: actor.max_instances,
                health: crate::ctl::health_text(actor.health.as_ref()),
                per_sec,
                error_rate,
                p99: p99_ms.map(|ms| p99_text(ms, actor.load.as_ref())),
            });
        }
        for provider in &host.providers {
            view.providers.push(ProviderRow {
                host: host.host_id.clone(),
                id: provider.id.clone(),
                kind: provider.kind.clone(),
                process: provider.process,
                health: crate::ctl::health_text(provider.health.as_ref()),
            });
        }
        let mut seen = BTreeSet::new();
        for link in &host.links {
            let actor = names
                .get(link.actor_id.as_str())
                .map_or_else(|| link.actor_id.clone(), |name| name.to_string());
            let key = (
                actor,
                link.contract_id.clone(),
                link.link_name.clone(),
                link.provider_id.clone(),
            );
            if seen.insert(key.clone()) {
                *links.entry(key).or_default() += 1;
            }
        }
    }
    view.links = links
        .into_iter()
        .map(|((actor, contract, link_name, provider), hosts)| LinkRow {
            actor,
            contract,
            link_name,
            provider,
            hosts,
        })
        .collect();
    view.actors
        .sort_by(|a, b| a.name.cmp(&b.name).then(a.host.cmp(&b.host)));
    view
}

/// A p99 bucket bound in words; past the last bound, the last bound is what is known.
fn p99_text(ms: f64, load: Option<&ActorLoad>) -> String {
    if ms.is_finite() {
        return format!("≤ {ms} ms");
    }
    let last = load
        .and_then(|load| load.latency_us.last())
        .map_or(0.0, |(bound_us, _)| *bound_us as f64 / 1000.0);
    format!("> {last} ms")
}

/// Calls per second, error rate and p99 (ms, bucket bound) between two loads of one actor.
fn rates(
    before: &ActorLoad,
    now: &ActorLoad,
    secs: f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    // A restarted host counts from zero again: no rate across it.
    if now.calls < before.calls || secs <= 0.0 {
        return (None, None, None);
    }
    let calls = now.calls - before.calls;
    let per_sec = Some(calls as f64 / secs);
    if calls == 0 {
        return (per_sec, None, None);
    }
    let failed = now.failed.saturating_sub(before.failed);
    let error_rate = Some(failed as f64 / calls as f64);
    let wanted = calls - calls / 100;
    let p99_ms = now
        .latency_us
        .iter()
        .zip(&before.latency_us)
        .find(|((_, count), (_, earlier))| count.saturating_sub(*earlier) >= wanted)
        .map_or(f64::INFINITY, |((bound_us, _), _)| {
            *bound_us as f64 / 1000.0
        });
    (per_sec, error_rate, Some(p99_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_host::control::ActorSummary;

    fn load(calls: u64, failed: u64, fast: u64) -> ActorLoad {
        // Calls within 100 µs, and the rest within 1 ms.
        ActorLoad {
            calls,
            failed,
            latency_us: vec![(100, fast), (1000, calls)],
        }
    }

    fn inventory(load: ActorLoad) -> Vec<HostInventory> {
        vec![HostInventory {
            host_id: "NHOST".into(),
            member_id: String::new(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            uptime_secs: 5,
            actors: vec![ActorSummary {
                id: "MACTOR".into(),
                name: "hello".into(),
                revision: Some(2),
                capabilities: vec![],
                generation: "wasmbus".into(),
                max_instances: 4,
                changed_by: None,
                health: None,
                canary: None,
                load: Some(load),
            }],
            providers: vec![],
            links: vec![],
        }]
    }

    #[test]
    fn rates_come_from_the_difference_of_two_loads() {
        let before = inventory(load(1000, 10, 1000));
        // 2,000 calls in 2 s, 20 failed, 1,990 within 100 µs: p99 is in the 100 µs bucket.
        let now = inventory(load(3000, 30, 2990));
        let view = view(&now, &before, Some(2.0), 1);
        let row = &view.actors[0];
        assert_eq!(row.per_sec, Some(1000.0));
        assert_eq!(row.error_rate, Some(0.01));
        assert_eq!(row.p99.as_deref(), Some("≤ 0.1 ms"));
        // 30 of 2,000 slower: the 99th percentile is in the 1 ms bucket.
        let slower = inventory(load(3000, 30, 2970));
        let row = super::view(&slower, &before, Some(2.0), 1).actors[0].clone();
        assert_eq!(row.p99.as_deref(), Some("≤ 1 ms"));
        assert_eq!(view.hosts[0].labels, "zone=a");
        let stuck = inventory(load(3000, 30, 1000));
        let mut past = stuck[0].actors[0].load.clone().unwrap();
        past.latency_us[1].1 = 1000;
        let mut stuck = stuck;
        stuck[0].actors[0].load = Some(past);
        let row = super::view(&stuck, &before, Some(2.0), 1).actors[0].clone();
        assert_eq!(row.p99.as_deref(), Some("> 1 ms"));
    }

    #[test]
    fn no_rate_without_an_earlier_inventory_or_across_a_restart() {
        let now = inventory(load(3000, 30, 2990));
        assert_eq!(view(&now, &[], None, 1).actors[0].per_sec, None);
        let restarted = inventory(load(10, 0, 10));
        assert_eq!(view(&restarted, &now, Some(2.0), 1).actors[0].per_sec, None);
        let idle = view(&now, &now, Some(2.0), 1);
        assert_eq!(idle.actors[0].per_sec, Some(0.0));
        assert_eq!(idle.actors[0].p99, None);
    }
}
