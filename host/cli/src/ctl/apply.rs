//! `weft ctl apply APP.toml`: makes the lattice run an app manifest, idempotently. What
//! already runs as asked is left alone (and reported `unchanged`), so applying the same
//! manifest twice changes nothing the second time.
//!
//! Placement, from what the hosts report (`weft ctl inventory`):
//! - an actor runs on every host whose labels include the entry's `on` labels (default: every
//!   host). Where it runs at a lower revision it is hot-swapped; where its instance cap
//!   differs from `instances` it is scaled;
//! - a provider runs on one such host: the one running it already, else the one running the
//!   fewest providers; with `process = true`, that host starts and supervises it as a child
//!   process;
//! - every link is put on every host (a host that has it answers `unchanged`).

use super::{Lattice, short, table};
use crate::manifest::Manifest;
use crate::output::Out;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use weft_host::actor::{ActorIdentity, LoadPolicy};
use weft_host::control::{ControlRequest, Done, HostInventory};
use weft_provider_sdk::LinkDefinition;

/// One thing apply did (or found done) on one host.
struct Step {
    what: String,
    host: String,
    result: Result<Done>,
}

fn labelled<'a>(
    hosts: &'a [HostInventory],
    on: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = &'a HostInventory> {
    hosts
        .iter()
        .filter(move |h| on.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
}

pub(super) async fn apply(lattice: &Lattice, out: &mut Out, json: bool, file: &Path) -> Result<()> {
    let manifest = Manifest::load(file)?;
    let hosts = lattice.inventories().await?;
    if hosts.is_empty() {
        bail!("no host answered on the lattice; start one with `weft host`");
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut progress = crate::progress::Progress::new("apply", json);
    progress.say(format!(
        "{} actor(s), {} provider(s), {} link(s) onto {} host(s)",
        manifest.actors.len(),
        manifest.providers.len(),
        manifest.links.len(),
        hosts.len()
    ));
    let mut said = |steps: &[Step]| {
        if let Some(step) = steps.last() {
            let result = match &step.result {
                Ok(done) => outcome(done).to_string(),
                Err(error) => format!("FAILED: {error:#}"),
            };
            progress.step(format!("{} on {}: {result}", step.what, short(&step.host)));
        }
    };
    // Actor names as links write them, resolved to module keys.
    let mut actor_ids: BTreeMap<String, String> = BTreeMap::new();

    for entry in &manifest.actors {
        let path = manifest.resolve(&entry.path);
        let module = weft_host::read_module(&path, weft_host::limits::DEFAULT_MAX_MODULE_BYTES)
            .with_context(|| format!("cannot read actor file {}", path.display()))?;
        let identity = ActorIdentity::of_module(&module, &LoadPolicy::default())
            .with_context(|| format!("{} is not an actor the hosts would load", path.display()))?;
        actor_ids.insert(identity.name.clone(), identity.id.clone());
        actor_ids.insert(identity.id.clone(), identity.id.clone());
        let targets: Vec<&HostInventory> = labelled(&hosts, &entry.on).collect();
        if targets.is_empty() {
            bail!(
                "no host has the labels {:?} for actor {}",
                entry.on,
                identity.name
            );
        }
        let what = format!("actor {}", identity.name);
        for host in targets {
            let running = host.actors.iter().find(|a| a.id == identity.id);
            let request = match running {
                None => Some(ControlRequest::StartActor {
                    module: module.clone(),
                    max_instances: entry.instances,
                }),
                Some(running) if running.revision.unwrap_or(0) < identity.revision.unwrap_or(0) => {
                    Some(ControlRequest::UpdateActor {
                        actor_id: identity.id.clone(),
                        module: module.clone(),
                        allow_new_capabilities: false,
                        allow_new_issuer: false,
                        canary: None,
                    })
                }
                Some(_) => None,
            };
            let mut result = match request {
                Some(request) => lattice.ask(&host.host_id, &request).await,
                None => Ok(Done::Unchanged),
            };
            let cap = running.map(|r| r.max_instances);
            if let (Ok(_), Some(wanted), Some(cap)) = (&result, entry.instances, cap)
                && wanted != cap
            {
                let request = ControlRequest::ScaleActor {
                    actor_id: identity.id.clone(),
                    max_instances: wanted,
                };
                result = lattice.ask(&host.host_id, &request).await;
            }
            steps.push(Step {
                what: what.clone(),
                host: host.host_id.clone(),
                result,
            });
            said(&steps);
        }
    }

    for entry in &manifest.providers {
        let candidates: Vec<&HostInventory> = labelled(&hosts, &entry.on).collect();
        let what = format!("provider {} ({})", entry.id, entry.kind);
        if let Some(host) = candidates
            .iter()
            .find(|h| h.providers.iter().any(|p| p.id == entry.id))
        {
            steps.push(Step {
                what,
                host: host.host_id.clone(),
                result: Ok(Done::Unchanged),
            });
            said(&steps);
            continue;
        }
        let host = candidates
            .iter()
            .min_by_key(|h| {
                let started_here = steps
                    .iter()
                    .filter(|s| s.host == h.host_id && matches!(s.result, Ok(Done::Provider(_))))
                    .count();
                h.providers.len() + started_here
            })
            .ok_or_else(|| {
                anyhow!(
                    "no host has the labels {:?} for provider {}",
                    entry.on,
                    entry.id
                )
            })?;
        let request = ControlRequest::StartProvider {
            id: entry.id.clone(),
            kind: entry.kind.clone(),
            config: entry.config.clone(),
            process: entry.process,
        };
        steps.push(Step {
            what,
            host: host.host_id.clone(),
            result: lattice.ask(&host.host_id, &request).await,
        });
        said(&steps);
    }

    for entry in &manifest.links {
        let actor_id = match actor_ids.get(&entry.actor) {
            Some(id) => id.clone(),
            None => super::running(&hosts, &entry.actor)?.0,
        };
        let link = LinkDefinition {
            actor_id,
            contract_id: entry.contract.clone(),
            link_name: entry.link_name.clone().unwrap_or_else(|| "default".into()),
            provider_id: entry.provider.clone(),
            values: entry.values.clone(),
        };
        let what = format!(
            "link {} {} → {}",
            entry.actor, entry.contract, entry.provider
        );
        let every_host = hosts.iter().map(|h| h.host_id.clone()).collect();
        for (host, result) in super::each(lattice, every_host, ControlRequest::PutLink(link)).await
        {
            steps.push(Step {
                what: what.clone(),
                host,
                result,
            });
            said(&steps);
        }
    }
    print(out, json, &steps)
}

fn outcome(done: &Done) -> &'static str {
    match done {
        Done::Actor(_) | Done::Provider(_) => "started",
        Done::Stopped => "stopped",
        Done::Linked => "linked",
        Done::Unlinked => "unlinked",
        Done::Canary(_) => "decided",
        Done::Unchanged | Done::Inventory(_) | Done::Audit(_) => "unchanged",
    }
}

fn print(out: &mut Out, json: bool, steps: &[Step]) -> Result<()> {
    let failed = steps.iter().filter(|s| s.result.is_err()).count();
    if json {
        let rows: Vec<serde_json::Value> = steps
            .iter()
            .map(|s| match &s.result {
                Ok(done) => serde_json::json!({"what": s.what, "host": s.host, "ok": done}),
                Err(e) => {
                    serde_json::json!({"what": s.what, "host": s.host, "error": format!("{e:#}")})
                }
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|s| {
                let result = match &s.result {
                    Ok(done) => outcome(done).to_string(),
                    Err(e) => format!("FAILED: {e:#}"),
                };
                vec![s.what.clone(), short(&s.host), result]
            })
            .collect();
        table(out, &["WHAT", "HOST", "RESULT"], &rows)?;
    }
    if failed > 0 {
        bail!("{failed} of {} step(s) failed", steps.len());
    }
    Ok(())
}
