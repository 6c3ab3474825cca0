//! `weft ctl`: drives every host of a lattice over NATS, through the control plane each
//! `weft host` serves (`weft_host::control`). Lattice-wide operations (update an actor,
//! put a link) go to each host concerned, one request each, and every host's result is
//! reported, including a host that does not answer in time.

mod apply;
mod canary;
pub(crate) use canary::{CanaryArgs, DecideCommand};
mod dashboard;

use crate::lattice_args::LatticeArgs;
use crate::link::{LinkCommand, key_values};
use crate::output::Out;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use weft_host::control::{ControlRequest, Done, Event, HostInventory, revision};
use weft_lattice as lattice;
use weft_provider_sdk::LinkDefinition;

#[derive(Args)]
pub struct CtlArgs {
    #[command(subcommand)]
    command: CtlCommand,
    #[command(flatten)]
    lattice: LatticeArgs,
    /// Print JSON instead of tables
    #[arg(long, global = true)]
    json: bool,
    /// How long to collect the hosts' answers to an inventory, milliseconds
    #[arg(long, default_value_t = 500, global = true)]
    wait_ms: u64,
    /// The operator key to sign requests with: a seed (`SO…`) or a file holding one
    /// [default: the key store's, which hosts of this machine trust]
    #[arg(
        long,
        env = "WEFT_CTL_SEED",
        global = true,
        value_name = "SEED_OR_FILE"
    )]
    ctl_seed: Option<String>,
    /// How long one host may take over a request, milliseconds
    #[arg(long, default_value_t = 30_000, global = true)]
    timeout_ms: u64,
}

#[derive(Subcommand)]
enum CtlCommand {
    /// The hosts of the lattice: their labels, actors, providers and links
    Inventory,
    /// Print the lattice's events as they happen (Ctrl-C stops)
    Watch,
    /// Every host's audit trail: the changes it was asked for (who signed each, what, when,
    /// and how it ended), oldest first
    Audit,
    /// Start an actor or a provider on a host
    #[command(subcommand)]
    Start(StartCommand),
    /// Stop an actor or a provider
    #[command(subcommand)]
    Stop(StopCommand),
    /// Hot-swap an actor or a provider to a new version, without a failed call
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Change how many calls an actor may serve at once (on every host running it, or on --host)
    Scale {
        /// Its name or module key
        actor: String,
        /// Calls it may serve at once (instances), at least 1
        max_instances: usize,
        /// Only on this host (its id, `N…`)
        #[arg(long)]
        host: Option<String>,
    },
    /// End a running canary now, on every host running it: promote its new version, or roll
    /// it back
    #[command(subcommand)]
    Canary(canary::DecideCommand),
    /// Put, delete, list or get (one actor's) links on every host
    #[command(subcommand)]
    Link(LinkCommand),
    /// Serve a live web page of the lattice on loopback: hosts, actors with their load,
    /// providers, links and events, with actions (scale, update, canary) signed with your key
    Dashboard(dashboard::DashboardArgs),
    /// Make the lattice run an app manifest (idempotent: what runs as asked is left alone)
    Apply {
        /// The app manifest (TOML, as `weft up` runs)
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum StartCommand {
    /// Start a signed actor
    Actor {
        /// The signed .wasm file
        file: PathBuf,
        /// The host (its id, `N…`); default: the one running the fewest actors
        #[arg(long)]
        host: Option<String>,
        /// How many calls it may serve at once
        #[arg(long)]
        max_instances: Option<usize>,
    },
    /// Start a provider in a host's process, or with --process as a child process of the host
    Provider {
        /// keyvalue-redis, keyvalue-memory, http-server or messaging-nats
        kind: String,
        /// Its id (links name it); default: its kind
        #[arg(long)]
        id: Option<String>,
        /// The host; default: the one running the fewest providers
        #[arg(long)]
        host: Option<String>,
        /// Provider settings, KEY=VALUE (repeatable)
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// Run it as a child process the host supervises (restarts when it ends), serving
        /// the lattice, instead of in the host's process
        #[arg(long)]
        process: bool,
    },
}

#[derive(Subcommand)]
enum StopCommand {
    /// Stop an actor (on every host running it, or on --host)
    Actor {
        /// Its name or module key
        actor: String,
        /// Only on this host (its id, `N…`)
        #[arg(long)]
        host: Option<String>,
    },
    /// Stop a provider (on every host running it, or on --host)
    Provider {
        /// The provider's id
        id: String,
        /// Only on this host (its id, `N…`)
        #[arg(long)]
        host: Option<String>,
    },
}

#[derive(Subcommand)]
enum UpdateCommand {
    /// A new version of a running actor, swapped in on every host running it (with
    /// --canary: on trial first, promoted or rolled back by its figures)
    Actor {
        /// Its name or module key
        actor: String,
        /// The new version (a signed .wasm file)
        file: PathBuf,
        /// Accept a version that adds capabilities
        #[arg(long)]
        allow_new_capabilities: bool,
        /// Accept a version signed by another account than the running one (e.g. after
        /// rotating the issuer key); without it an update must keep the issuer
        #[arg(long)]
        allow_new_issuer: bool,
        #[command(flatten)]
        canary: canary::CanaryArgs,
    },
    /// Replace a provider running in a host's process with a fresh instance (on every host
    /// running it, or on --host): the new one takes over its links and calls, then the old one
    /// finishes the calls it has and stops
    Provider {
        /// The provider's id (links name it)
        id: String,
        /// Only on this host (its id, `N…`)
        #[arg(long)]
        host: Option<String>,
        /// New provider settings, KEY=VALUE (repeatable); default: the ones it runs with
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
}

/// A connection to the lattice's control interface.
struct Lattice {
    /// `weft ctl` as a member of the lattice: what it sends is sealed, what it reads must be.
    member: std::sync::Arc<lattice::Member>,
    /// What every request is signed with.
    operator: wascap::KeyPair,
    subjects: lattice::Subjects,
    wait: Duration,
    timeout: Duration,
}

impl Lattice {
    /// The lattice's events from now on (subscribed, and the subscription known to the
    /// server, when this returns); each still to be opened ([`opened`]).
    async fn events(&self) -> Result<async_nats::Subscriber> {
        let subject = self.subjects.all_events();
        let client = self.member.client();
        let events = client
            .subscribe(subject.clone())
            .await
            .with_context(|| format!("cannot subscribe to {subject}"))?;
        lattice::round_trip(client, Duration::from_secs(5)).await?;
        Ok(events)
    }

    /// Every host's inventory: those that answer within the wait.
    async fn inventories(&self) -> Result<Vec<HostInventory>> {
        weft_host::control::nats::inventories(&self.member, self.wait)
            .await
            .map_err(|e| anyhow!(e))
    }

    /// Asks one host, signed for it; its refusal or silence is the error.
    async fn ask(&self, host_id: &str, request: &ControlRequest) -> Result<Done> {
        let subject = self.subjects.control_host(host_id);
        let body = weft_host::control::nats::sealed(&self.operator, host_id, request)
            .map_err(|e| anyhow!("cannot sign the request: {e}"))?;
        let bytes = lattice::request(&self.member, subject.clone(), body, self.timeout)
            .await
            .map_err(|e| anyhow!("host {host_id}: {e}"))?;
        Ok(lattice::decode(&subject, &bytes)?)
    }
}

/// The module key of the actor named or keyed `actor`, and the hosts running it.
fn running(hosts: &[HostInventory], actor: &str) -> Result<(String, Vec<String>)> {
    let mut found: Option<String> = None;
    let mut on = Vec::new();
    for host in hosts {
        for entry in &host.actors {
            if entry.id == actor || entry.name == actor {
                if found.as_ref().is_some_and(|id| *id != entry.id) {
                    bail!("several actors are named {actor:?}; give its module key instead");
                }
                found = Some(entry.id.clone());
                on.push(host.host_id.clone());
            }
        }
    }
    match found {
        Some(id) => Ok((id, on)),
        None => bail!(
            "no host of the lattice runs an actor named or keyed {actor:?} ({} host(s) answered); \
             `weft ctl inventory` lists them",
            hosts.len()
        ),
    }
}

/// The hosts a request goes to: `--host`, or the ones `default` picks.
fn chosen(
    host: Option<String>,
    hosts: &[HostInventory],
    default: Vec<String>,
) -> Result<Vec<String>> {
    match host {
        Some(host) if hosts.iter().any(|h| h.host_id == host) => Ok(vec![host]),
        Some(host) => {
            bail!("no host {host} answered on the lattice; `weft ctl inventory` lists the hosts")
        }
        None => Ok(default),
    }
}

fn least_loaded(hosts: &[HostInventory], load: impl Fn(&HostInventory) -> usize) -> Result<String> {
    hosts
        .iter()
        .min_by_key(|h| load(h))
        .map(|h| h.host_id.clone())
        .ok_or_else(|| anyhow!("no host answered on the lattice; start one with `weft host`"))
}

/// Prints rows under a header, columns aligned.
fn table(out: &mut Out, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// One line per host of what a lattice-wide request did there; fails if any host failed.
fn report(out: &mut Out, json: bool, results: Vec<(String, Result<Done>)>) -> Result<()> {
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if json {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|(host, result)| match result {
                Ok(done) => serde_json::json!({"host": host, "ok": done}),
                Err(e) => serde_json::json!({"host": host, "error": format!("{e:#}")}),
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        for (host, result) in &results {
            match result {
                Ok(Done::Actor(actor)) => writeln!(
                    out,
                    "{host}  actor {} {} revision {}",
                    actor.name,
                    actor.id,
                    revision(actor.revision)
                )?,
                Ok(Done::Provider(provider)) => {
                    writeln!(out, "{host}  provider {} ({})", provider.id, provider.kind)?
                }
                Ok(Done::Stopped) => writeln!(out, "{host}  done")?,
                Ok(Done::Linked) => writeln!(out, "{host}  linked")?,
                Ok(Done::Unlinked) => writeln!(out, "{host}  unlinked")?,
                Ok(Done::Unchanged) => writeln!(out, "{host}  unchanged")?,
                Ok(Done::Audit(trail)) => writeln!(out, "{host}  {} audit entries", trail.len())?,
                Ok(Done::Canary(verdict)) => writeln!(out, "{host}  {verdict}")?,
                Ok(Done::Inventory(inventory)) => writeln!(
                    out,
                    "{host}  {} actor(s), {} provider(s)",
                    inventory.actors.len(),
                    inventory.providers.len()
                )?,
                Err(e) => writeln!(out, "{host}  FAILED: {e:#}")?,
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} host(s) failed", results.len());
    }
    Ok(())
}

/// Sends `request` to each of `hosts` at once and collects every result.
async fn each(
    lattice: &Lattice,
    hosts: Vec<String>,
    request: ControlRequest,
) -> Vec<(String, Result<Done>)> {
    let asks = hosts.into_iter().map(|host| {
        let request = &request;
        async move {
            let result = lattice.ask(&host, request).await;
            (host, result)
        }
    });
    futures_util::future::join_all(asks).await
}

pub async fn run(args: CtlArgs) -> Result<()> {
    let Some(name) = args.lattice.lattice.clone() else {
        bail!("weft ctl needs --lattice NAME (and --nats URL unless NATS is on 127.0.0.1:4222)");
    };
    let credentials = args.lattice.credentials()?;
    let client = lattice::connect(&args.lattice.nats_options("weft ctl"))
        .await
        .with_context(|| format!("cannot reach lattice {name}"))?;
    let member = lattice::Member::join(client, &name, "weft ctl", &credentials)
        .await
        .with_context(|| format!("cannot join lattice {name}"))?;
    let lattice = Lattice {
        subjects: member.subjects().clone(),
        member,
        operator: crate::operator::signing_key(args.ctl_seed.as_deref())?,
        wait: Duration::from_millis(args.wait_ms),
        timeout: Duration::from_millis(args.timeout_ms),
    };
    let mut out = Out::stdout();
    let json = args.json;
    match args.command {
        CtlCommand::Inventory => {
            let hosts = lattice.inventories().await?;
            print_inventory(&mut out, json, &hosts)
        }
        CtlCommand::Watch => watch(&lattice, &mut out, json).await,
        CtlCommand::Audit => audit(&lattice, &mut out, json).await,
        CtlCommand::Start(StartCommand::Actor {
            file,
            host,
            max_instances,
        }) => {
            let module = weft_host::read_module(&file, weft_host::limits::DEFAULT_MAX_MODULE_BYTES)
                .with_context(|| format!("cannot read actor file {}", file.display()))?;
            let hosts = lattice.inventories().await?;
            let default = vec![least_loaded(&hosts, |h| h.actors.len())?];
            let targets = chosen(host, &hosts, default)?;
            let request = ControlRequest::StartActor {
                module,
                max_instances,
            };
            report(&mut out, json, each(&lattice, targets, request).await)
        }
        CtlCommand::Start(StartCommand::Provider {
            kind,
            id,
            host,
            config,
            process,
        }) => {
            let hosts = lattice.inventories().await?;
            let default = vec![least_loaded(&hosts, |h| h.providers.len())?];
            let targets = chosen(host, &hosts, default)?;
            let request = ControlRequest::StartProvider {
                id: id.unwrap_or_else(|| kind.clone()),
                kind,
                config: key_values(&config, "--config")?,
                process,
            };
            report(&mut out, json, each(&lattice, targets, request).await)
        }
        CtlCommand::Stop(StopCommand::Actor { actor, host }) => {
            let hosts = lattice.inventories().await?;
            let (actor_id, on) = running(&hosts, &actor)?;
            let targets = chosen(host, &hosts, on)?;
            report(
                &mut out,
                json,
                each(&lattice, targets, ControlRequest::StopActor { actor_id }).await,
            )
        }
        CtlCommand::Stop(StopCommand::Provider { id, host }) => {
            let hosts = lattice.inventories().await?;
            let targets = chosen(host, &hosts, running_provider(&hosts, &id)?)?;
            report(
                &mut out,
                json,
                each(&lattice, targets, ControlRequest::StopProvider { id }).await,
            )
        }
        CtlCommand::Update(UpdateCommand::Actor {
            actor,
            file,
            allow_new_capabilities,
            allow_new_issuer,
            canary,
        }) => {
            let module = weft_host::read_module(&file, weft_host::limits::DEFAULT_MAX_MODULE_BYTES)
                .with_context(|| format!("cannot read actor file {}", file.display()))?;
            let hosts = lattice.inventories().await?;
            let (actor_id, on) = running(&hosts, &actor)?;
            let plan = canary.plan()?;
            crate::progress::Progress::new("update", json).say(format!(
                "sending {actor}'s new version ({} KiB) to {} host(s); each verifies, compiles, \
                 starts and health-checks it before it takes calls",
                module.len() / 1024,
                on.len()
            ));
            let request = ControlRequest::UpdateActor {
                actor_id: actor_id.clone(),
                module,
                allow_new_capabilities,
                allow_new_issuer,
                canary: plan,
            };
            match plan {
                Some(plan) => {
                    canary::update(&lattice, &mut out, json, (&actor_id, on), request, plan).await
                }
                None => report(&mut out, json, each(&lattice, on, request).await),
            }
        }
        CtlCommand::Update(UpdateCommand::Provider { id, host, config }) => {
            let hosts = lattice.inventories().await?;
            // A provider process no host supervises is handed over by any host.
            let on = running_provider(&hosts, &id).or_else(|none| {
                hosts
                    .first()
                    .map(|first| vec![first.host_id.clone()])
                    .ok_or(none)
            })?;
            let targets = chosen(host, &hosts, on)?;
            let config = (!config.is_empty())
                .then(|| key_values(&config, "--config"))
                .transpose()?;
            report(
                &mut out,
                json,
                each(
                    &lattice,
                    targets,
                    ControlRequest::UpdateProvider { id, config },
                )
                .await,
            )
        }
        CtlCommand::Scale {
            actor,
            max_instances,
            host,
        } => {
            if max_instances == 0 {
                bail!("an actor needs at least 1 instance; `weft ctl stop actor` stops it");
            }
            let hosts = lattice.inventories().await?;
            let (actor_id, on) = running(&hosts, &actor)?;
            let targets = chosen(host, &hosts, on)?;
            let request = ControlRequest::ScaleActor {
                actor_id,
                max_instances,
            };
            report(&mut out, json, each(&lattice, targets, request).await)
        }
        CtlCommand::Canary(command) => {
            let hosts = lattice.inventories().await?;
            let (actor, promote) = command.decision();
            let (actor_id, on) = running(&hosts, actor)?;
            let request = ControlRequest::DecideCanary { actor_id, promote };
            report(&mut out, json, each(&lattice, on, request).await)
        }
        CtlCommand::Link(command) => link(&lattice, &mut out, json, command).await,
        CtlCommand::Dashboard(args) => dashboard::run(lattice, &mut out, args).await,
        CtlCommand::Apply { file } => apply::apply(&lattice, &mut out, json, &file).await,
    }
}

/// The hosts running provider `id`; none is an error.
fn running_provider(hosts: &[HostInventory], id: &str) -> Result<Vec<String>> {
    let on: Vec<String> = hosts
        .iter()
        .filter(|h| h.providers.iter().any(|p| p.id == id))
        .map(|h| h.host_id.clone())
        .collect();
    if on.is_empty() {
        bail!(
            "no host of the lattice runs a provider {id:?} ({} host(s) answered); \
             `weft ctl inventory` lists them",
            hosts.len()
        );
    }
    Ok(on)
}

async fn link(lattice: &Lattice, out: &mut Out, json: bool, command: LinkCommand) -> Result<()> {
    let hosts = lattice.inventories().await?;
    if hosts.is_empty() {
        bail!("no host answered on the lattice; start one with `weft host`");
    }
    let every_host: Vec<String> = hosts.iter().map(|h| h.host_id.clone()).collect();
    match command {
        LinkCommand::Put {
            actor,
            contract,
            provider,
            link_name,
            values,
        } => {
            let (actor_id, _) = running(&hosts, &actor)?;
            let link = LinkDefinition {
                actor_id,
                contract_id: contract,
                link_name,
                provider_id: provider,
                values: key_values(&values, "--value")?,
            };
            report(
                out,
                json,
                each(lattice, every_host, ControlRequest::PutLink(link)).await,
            )
        }
        LinkCommand::Del {
            actor,
            contract,
            link_name,
        } => {
            let (actor_id, _) = running(&hosts, &actor)?;
            let on: Vec<String> = hosts
                .iter()
                .filter(|h| {
                    h.links.iter().any(|l| {
                        l.actor_id == actor_id
                            && l.contract_id == contract
                            && l.link_name == link_name
                    })
                })
                .map(|h| h.host_id.clone())
                .collect();
            if on.is_empty() {
                bail!("no host has a {contract} link named {link_name:?} for actor {actor}");
            }
            let request = ControlRequest::DeleteLink {
                actor_id,
                contract_id: contract,
                link_name,
            };
            report(out, json, each(lattice, on, request).await)
        }
        LinkCommand::List { actor } => {
            let only = actor
                .map(|actor| running(&hosts, &actor).map(|(id, _)| id))
                .transpose()?;
            // One row per link, with the hosts that hold it.
            let mut links: BTreeMap<(String, String, String), (LinkDefinition, Vec<String>)> =
                BTreeMap::new();
            for host in &hosts {
                for link in host
                    .links
                    .iter()
                    .filter(|l| only.as_ref().is_none_or(|id| l.actor_id == *id))
                {
                    let key = (
                        link.actor_id.clone(),
                        link.contract_id.clone(),
                        link.link_name.clone(),
                    );
                    links
                        .entry(key)
                        .or_insert_with(|| (link.clone(), Vec::new()))
                        .1
                        .push(short(&host.host_id));
                }
            }
            if json {
                let all: Vec<&LinkDefinition> = links.values().map(|(l, _)| l).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = links
                .values()
                .map(|(l, on)| {
                    vec![
                        short(&l.actor_id),
                        l.contract_id.clone(),
                        l.link_name.clone(),
                        l.provider_id.clone(),
                        format!("{:?}", l.values),
                        on.join(","),
                    ]
                })
                .collect();
            table(
                out,
                &["ACTOR", "CONTRACT", "LINK", "PROVIDER", "VALUES", "HOSTS"],
                &rows,
            )
        }
    }
}

/// An event's time as RFC 3339, or its raw milliseconds when no calendar date can show it (a
/// hostile event dated after 9999 must not stop `weft ctl watch`).
fn event_time(at_unix_ms: u64) -> String {
    /// 9999-12-31T23:59:59.999Z, the last instant RFC 3339 writes.
    const LAST_MS: u64 = 253_402_300_799_999;
    if at_unix_ms > LAST_MS {
        return format!("@{at_unix_ms} ms");
    }
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(at_unix_ms))
        .to_string()
}

/// A key shortened for a table: its first 12 characters.
fn short(key: &str) -> String {
    key.chars().take(12).collect()
}

/// `weft ctl audit`: every host's trail, merged, oldest first.
async fn audit(lattice: &Lattice, out: &mut Out, json: bool) -> Result<()> {
    let hosts = lattice.inventories().await?;
    if hosts.is_empty() {
        bail!("no host answered on the lattice; start one with `weft host`");
    }
    let mut entries = Vec::new();
    for host in &hosts {
        match lattice.ask(&host.host_id, &ControlRequest::Audit).await? {
            Done::Audit(trail) => entries.extend(trail),
            other => bail!("host {} answered an audit with {other:?}", host.host_id),
        }
    }
    entries.sort_by_key(|e| e.at_unix_ms);
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&entries)?)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                event_time(e.at_unix_ms),
                short(&e.host_id),
                if e.by.len() > 12 {
                    short(&e.by)
                } else {
                    e.by.clone()
                },
                e.action.clone(),
                e.target.clone(),
                if e.ok {
                    format!("done: {}", e.result)
                } else {
                    format!("REFUSED: {}", e.result)
                },
            ]
        })
        .collect();
    table(
        out,
        &["WHEN", "HOST", "BY", "ACTION", "TARGET", "RESULT"],
        &rows,
    )
}

fn print_inventory(out: &mut Out, json: bool, hosts: &[HostInventory]) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(hosts)?)?;
        return Ok(());
    }
    if hosts.is_empty() {
        bail!("no host answered on the lattice; start one with `weft host`");
    }
    for host in hosts {
        let labels: Vec<String> = host
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(
            out,
            "host {}  up {} s  {}",
            host.host_id,
            host.uptime_secs,
            labels.join(" ")
        )?;
        let mut rows: Vec<Vec<String>> = host
            .actors
            .iter()
            .map(|a| {
                vec![
                    "actor".into(),
                    a.name.clone(),
                    a.id.clone(),
                    format!(
                        "rev {} max {}{}{}",
                        revision(a.revision),
                        a.max_instances,
                        canary_text(a.canary.as_ref()),
                        changed_by(a.changed_by.as_deref())
                    ),
                    health_text(a.health.as_ref()),
                ]
            })
            .collect();
        rows.extend(host.providers.iter().map(|p| {
            vec![
                "provider".into(),
                p.id.clone(),
                p.kind.clone(),
                format!(
                    "{}{}",
                    match (p.process, p.pid) {
                        (false, _) => "in process".to_string(),
                        (true, Some(pid)) => format!(
                            "process {pid}, up {} s, {} restart(s)",
                            p.uptime_secs.unwrap_or_default(),
                            p.restarts
                        ),
                        (true, None) => format!("process restarting, {} restart(s)", p.restarts),
                    },
                    changed_by(p.changed_by.as_deref())
                ),
                health_text(p.health.as_ref()),
            ]
        }));
        rows.extend(host.links.iter().map(|l| {
            vec![
                "link".into(),
                format!("{} → {}", short(&l.actor_id), l.provider_id),
                l.contract_id.clone(),
                format!("{} {:?}", l.link_name, l.values),
                String::new(),
            ]
        }));
        table(
            out,
            &["  KIND", "NAME", "ID", "DETAIL", "HEALTH"],
            &indent(rows),
        )?;
        writeln!(out)?;
    }
    Ok(())
}

/// "  by KEY" for the last change's author, shortened; nothing for the host's own manifest.
/// An actor's canary, if one runs, as ` canary rev 4 at 10.0%` (else nothing).
pub(crate) fn canary_text(canary: Option<&weft_host::canary::CanaryStatus>) -> String {
    canary.map_or_else(String::new, |c| {
        format!(
            " canary rev {} at {}",
            revision(c.revision),
            weft_host::canary::percent(f64::from(c.share_ppm) / f64::from(weft_host::canary::PPM))
        )
    })
}

/// An actor's or provider's health as a column: `healthy 40 s`, `UNHEALTHY 3 s: why`, or
/// `unchecked` before the host's first round of checks.
pub(crate) fn health_text(status: Option<&weft_host::health::HealthStatus>) -> String {
    let Some(status) = status else {
        return "unchecked".into();
    };
    let now = weft_host::clock::unix_ms();
    let for_secs = now.saturating_sub(status.since_unix_ms) / 1000;
    if status.healthy {
        format!("healthy {for_secs} s")
    } else {
        format!("UNHEALTHY {for_secs} s: {}", status.problems.join("; "))
    }
}

fn changed_by(by: Option<&str>) -> String {
    by.map(|by| format!("  by {}", short(by)))
        .unwrap_or_default()
}

fn indent(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for row in &mut rows {
        if let Some(first) = row.first_mut() {
            *first = format!("  {first}");
        }
    }
    rows
}

/// The event `message` carries, if a member of the lattice sealed it and it reads as one: an
/// event no member sealed is dropped (and logged), so a stranger cannot write history.
async fn opened(lattice: &Lattice, message: &async_nats::Message) -> Option<Event> {
    let body = lattice::receive_at_most(
        &lattice.member,
        message,
        lattice.timeout,
        lattice::chunks::MAX_SMALL_BODY_BYTES,
    )
    .await
    .ok()?;
    match lattice::decode::<Event>(&message.subject, &body) {
        Ok(event) => Some(event),
        Err(error) => {
            // Sealed by a member, and still garbage: skipped, and said, never fatal.
            tracing::warn!(subject = %message.subject, %error, "an event could not be read; skipped");
            None
        }
    }
}

async fn watch(lattice: &Lattice, out: &mut Out, json: bool) -> Result<()> {
    let mut events = lattice.events().await?;
    let subject = lattice.subjects.all_events();
    writeln!(out, "watching {subject} (Ctrl-C stops)")?;
    out.flush()?;
    let stop = crate::signal::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            message = events.next() => message,
            _ = &mut stop => return Ok(()),
        };
        let Some(message) = message else {
            bail!("the NATS connection ended");
        };
        let Some(event) = opened(lattice, &message).await else {
            continue;
        };
        if json {
            writeln!(out, "{}", serde_json::to_string(&event)?)?;
        } else {
            writeln!(
                out,
                "{}  {:<16}  host {}  {}  {}",
                event_time(event.at_unix_ms),
                event.kind.as_str(),
                short(&event.host_id),
                event.subject,
                event.detail
            )?;
        }
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_from_after_year_9999_is_shown_not_fatal() {
        assert_eq!(event_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(event_time(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(event_time(u64::MAX), format!("@{} ms", u64::MAX));
    }
}
