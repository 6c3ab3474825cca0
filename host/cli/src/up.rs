//! `weft up APP.toml`: runs an app on one host, with in-process providers and no NATS or
//! Redis; with `--lattice` (or as `weft host`) the host also joins a NATS lattice, serves its
//! actors there and reaches providers in other processes through it. Builds it first with
//! `--build`, prints what it started and where it serves, serves
//! the local control endpoint, and shuts down cleanly on Ctrl-C (or SIGTERM).

use crate::build_actors;
use crate::control;
use crate::lattice_args::LatticeArgs;
use crate::manifest::{LinkEntry, Manifest, ProviderEntry};
use crate::output::Out;
use crate::probes;
use crate::provider::Kinds;
use anyhow::{Context, Result, bail};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use wascap::VerifyOptions;
use weft_contracts::httpserver;
use weft_host::actor::LoadPolicy;
use weft_host::control::{Control, ProviderSummary, local, nats};
use weft_host::engine::EngineConfig;
use weft_host::health::HealthConfig;
use weft_host::limits::Limits;
use weft_host::metrics::Metrics;
use weft_host::{Host, HostConfig, HostError, UpdateOptions};
use weft_http_server::HttpServer;
use weft_provider_sdk::Provider;

#[derive(Args)]
pub struct UpArgs {
    /// The app manifest (`weft host` may start without one and be deployed to with `weft ctl`)
    manifest: Option<PathBuf>,
    /// Build and sign the app's actors first (the manifest's [build] section)
    #[arg(long)]
    build: bool,
    /// Run modules that carry no claims, with every capability (development only)
    #[arg(long)]
    allow_unsigned: bool,
    /// Accept only actors issued by this account (repeatable; required on a lattice unless
    /// --trust-any-issuer)
    #[arg(long = "issuer-allow", value_name = "ACCOUNT_KEY")]
    issuer_allow: Vec<String>,
    /// On a lattice: run actors of any issuer (development only; the banner says so)
    #[arg(long, conflicts_with = "issuer_allow")]
    trust_any_issuer: bool,
    /// Execution deadline per call, milliseconds
    #[arg(long, default_value_t = weft_host::limits::DEFAULT_CALL_DEADLINE_MS)]
    deadline_ms: u64,
    /// Watch the actor files and hot-swap a file's new version in when it changes (a refused
    /// version is reported and the running one keeps serving)
    #[arg(long)]
    watch: bool,
    /// With --watch: accept new versions that add capabilities
    #[arg(long, requires = "watch")]
    allow_new_capabilities: bool,
    /// Where the local control endpoint listens (`weft link …` talks to it): a socket path,
    /// or a loopback HOST:PORT [default: a socket in the user's runtime directory]
    #[arg(long, env = "WEFT_CONTROL")]
    control: Option<String>,
    /// On a lattice: a label of this host in `weft ctl inventory`, KEY=VALUE (repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// On a lattice: an operator key (`O…`) whose signed control requests this host carries
    /// out, besides the key store's own (repeatable)
    #[arg(long = "ctl-key", value_name = "OPERATOR_KEY")]
    ctl_keys: Vec<String>,
    /// On a lattice: seconds between this host's heartbeat events
    #[arg(long, default_value_t = 30)]
    heartbeat_secs: u64,
    /// Serve health probes (/livez, /readyz, /readyz/ACTOR) on HOST:PORT, or on a bare PORT
    /// of loopback [default: not served]
    #[arg(long, value_name = "ADDR")]
    health: Option<String>,
    /// Serve Prometheus metrics (/metrics) on HOST:PORT, or on a bare PORT of loopback; the
    /// same address as --health serves both on one listener [default: kept, not served]
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Instances that may exist at once across all actors (calls running and instances kept
    /// warm; idle actors hold none) [default: one per 16 MiB of the machine's memory, within
    /// 256 and 10,000]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    instance_slots: Option<u32>,
    /// Seconds an instance may stay idle before it is dropped (its actor starts another on
    /// its next call)
    #[arg(long, default_value_t = 60)]
    instance_idle_secs: u64,
    /// Milliseconds between rounds of health checks (providers, links, each actor's
    /// Actor.HealthRequest on an idle instance), jittered by ±10%
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..))]
    health_interval_ms: u64,
    #[command(flatten)]
    lattice: LatticeArgs,
}

/// `weft host`: `weft up` on a lattice, where it is required.
pub async fn run_host(args: UpArgs) -> Result<()> {
    if args.lattice.lattice.is_none() {
        bail!("weft host needs --lattice NAME (and --nats URL unless NATS is on 127.0.0.1:4222)");
    }
    run(args).await
}

/// The providers the CLI knows by kind. The host itself knows none of them.
enum Concrete {
    Http(Arc<HttpServer>),
    Other,
}

fn provider_for(entry: &ProviderEntry) -> Result<(Arc<dyn Provider>, Concrete)> {
    if entry.kind == "http-server" {
        let http = Arc::new(HttpServer::new());
        return Ok((http.clone(), Concrete::Http(http)));
    }
    let provider = crate::provider::by_kind(&entry.kind, &entry.config)
        .with_context(|| format!("provider {:?}", entry.id))?;
    Ok((provider, Concrete::Other))
}

pub async fn run(args: UpArgs) -> Result<()> {
    if args.allow_unsigned && args.lattice.lattice.is_some() {
        bail!(
            "--allow-unsigned runs modules nobody signed, with every capability, and is refused \
             on a lattice, where other members reach them; sign the actors (`weft claims sign`, or \
             `weft build`) instead"
        );
    }
    let mut out = Out::stdout();
    let manifest = match &args.manifest {
        Some(file) => Manifest::load(file)?,
        None if args.lattice.lattice.is_some() => Manifest::empty(),
        None => bail!("weft up needs an app manifest: weft up APP.toml"),
    };
    if args.build {
        let Some(build) = &manifest.build else {
            bail!(
                "--build needs a [build] section in {}",
                manifest.file.display()
            );
        };
        let workspace = manifest.resolve(&build.workspace);
        build_actors::build(&workspace, &build.packages, None, &mut out)?;
    }

    if args.lattice.lattice.is_some() && args.issuer_allow.is_empty() && !args.trust_any_issuer {
        bail!(
            "a host on a lattice runs only actors of the issuers it is told to trust, since \
             anyone can sign a module: give --issuer-allow ACCOUNT_KEY (repeatable; \
             `weft claims inspect ACTOR.wasm` shows an actor's issuer), or, for development \
             only, --trust-any-issuer"
        );
    }
    let mut verify = VerifyOptions::new();
    if !args.issuer_allow.is_empty() {
        verify = verify.allow_issuers(args.issuer_allow.iter().cloned());
    }
    let base_limits = Limits {
        call_deadline_ms: args.deadline_ms,
        ..Limits::default()
    };
    // Kept whether or not they are served: inventories carry each actor's load from them
    // (what `weft ctl dashboard` shows), at a cost bench (k) does not see.
    let metrics = Some(Arc::new(Metrics::new()?));
    let host = Host::new(HostConfig {
        policy: LoadPolicy {
            verify,
            allow_unsigned: args.allow_unsigned,
            limits: base_limits,
        },
        metrics,
        engine: EngineConfig {
            instance_slots: args
                .instance_slots
                .unwrap_or(EngineConfig::default().instance_slots),
            ..EngineConfig::default()
        },
        ..HostConfig::default()
    })?;

    let mut http_servers = Vec::new();
    for entry in &manifest.providers {
        if entry.process {
            if args.lattice.lattice.is_none() {
                bail!(
                    "provider {:?} has process = true: it runs on a lattice; start the app with \
                     `weft host --lattice NAME`",
                    entry.id
                );
            }
            continue;
        }
        let (provider, concrete) = provider_for(entry)?;
        host.add_provider(&entry.id, provider)
            .await
            .with_context(|| format!("failed to start provider {}", entry.id))?;
        if let Concrete::Http(http) = concrete {
            http_servers.push((entry.id.clone(), http));
        }
        writeln!(out, "provider  {} ({})", entry.id, entry.kind)?;
    }

    let mut watched = Vec::new();
    for entry in &manifest.actors {
        let path = manifest.resolve(&entry.path);
        if entry.instances == Some(0) {
            bail!(
                "{}: actor {} has instances = 0; it needs at least 1",
                manifest.file.display(),
                path.display()
            );
        }
        let identity = match host.start_actor_file(&path, entry.instances).await {
            Ok(identity) => identity,
            Err(HostError::ReadActor { path, source }) => bail!(
                "actor file {} (listed in {}) cannot be read ({source}); build and sign it with \
                 `weft build`, or run `weft up --build`",
                path.display(),
                manifest.file.display()
            ),
            Err(error) => {
                return Err(error).with_context(|| format!("actor {} refused", path.display()));
            }
        };
        watched.push(Watched {
            path: path.clone(),
            actor_id: identity.id.clone(),
            name: identity.name.clone(),
        });
        let caps = identity
            .capabilities
            .iter()
            .map(|c| wascap::contracts::friendly_name(c))
            .collect::<Vec<_>>();
        writeln!(
            out,
            "actor     {} {} [{}]",
            identity.name,
            identity.id,
            caps.join(", ")
        )?;
    }

    // The control plane, for both the local endpoint and the lattice.
    let labels = crate::link::key_values(&args.labels, "--label")?;
    let kinds = Arc::new(Kinds::default());
    let control = Arc::new(Control::new(host.clone(), kinds.clone(), labels));
    // Provider processes are recorded as they start, with their supervision.
    for entry in manifest.providers.iter().filter(|p| !p.process) {
        let started = ProviderSummary {
            id: entry.id.clone(),
            kind: entry.kind.clone(),
            process: entry.process,
            ..ProviderSummary::default()
        };
        control.record_provider(started, entry.config.clone());
    }

    // The operator keys this host's lattice control trusts (checked before joining).
    let operators = match &args.lattice.lattice {
        Some(_) => crate::operator::trusted(&args.ctl_keys)?,
        None => Vec::new(),
    };

    // Joined before the links are put: a link may name a provider in another process.
    let mut joined: Option<Arc<weft_lattice::Member>> = None;
    if let Some(lattice) = &args.lattice.lattice {
        let credentials = args.lattice.credentials()?;
        let client = weft_lattice::connect(&args.lattice.nats_options("weft host"))
            .await
            .with_context(|| format!("failed to join lattice {lattice}"))?;
        let member = weft_lattice::Member::join(client, lattice, control.host_id(), &credentials)
            .await
            .with_context(|| format!("failed to join lattice {lattice}"))?;
        host.join_lattice(member.clone()).await?;
        writeln!(out, "lattice   {lattice} on {}", args.lattice.nats)?;
        writeln!(out, "host id   {}", control.host_id())?;
        writeln!(
            out,
            "members   signed by {} (messages sealed by anyone else are dropped)",
            credentials.trusted().collect::<Vec<_>>().join(", ")
        )?;
        if args.trust_any_issuer {
            writeln!(
                out,
                "issuers   ANY: --trust-any-issuer runs every signed actor sent here (development only)"
            )?;
        } else {
            writeln!(out, "issuers   {}", args.issuer_allow.join(", "))?;
        }
        writeln!(
            out,
            "ctl keys  {} (control requests signed by another key are refused)",
            operators.join(", ")
        )?;
        joined = Some(member.clone());
        // Supervised providers report on stdout themselves: let go of it meanwhile.
        out.flush()?;
        drop(out);
        for entry in manifest.providers.iter().filter(|p| p.process) {
            let supervised = crate::supervise::start(
                entry,
                &args.lattice,
                member.clone(),
                &credentials,
                control.clone(),
            )
            .await?;
            let started = ProviderSummary {
                id: entry.id.clone(),
                kind: entry.kind.clone(),
                process: true,
                ..ProviderSummary::default()
            };
            control.record_process(started, entry.config.clone(), supervised);
        }
        kinds.run_processes(crate::provider::ProcessContext {
            lattice: args.lattice.clone(),
            member: member.clone(),
            credentials: credentials.clone(),
            control: Arc::downgrade(&control),
        });
        out = Out::stdout();
    }

    for entry in &manifest.links {
        let link = to_definition(&host, entry).with_context(|| {
            format!(
                "link in {} for actor {:?}",
                manifest.file.display(),
                entry.actor
            )
        })?;
        host.put_link(link.clone())
            .await
            .with_context(|| format!("failed to link {} to {}", entry.actor, entry.provider))?;
        writeln!(
            out,
            "link      {} → {} ({}) {:?}",
            entry.actor,
            link.provider_id,
            link.contract_id,
            weft_contracts::secret::shown_values(&link.values)
        )?;
        if link.contract_id == httpserver::CONTRACT_ID
            && let Some((_, http)) = http_servers.iter().find(|(id, _)| *id == link.provider_id)
            && let Some(address) = http.bound_address(&link.actor_id, &link.link_name)
        {
            writeln!(out, "serving   http://{address}/ → {}", entry.actor)?;
        }
    }

    if let Some(member) = &joined {
        let wait = std::time::Duration::from_millis(ADOPT_WAIT_MS);
        // A host that cannot read its peers' links still starts, with its own: links put
        // on the lattice later reach it as requests.
        match nats::adopt_links(&control, member, wait).await {
            Ok(0) => {}
            Ok(adopted) => writeln!(
                out,
                "links     {adopted} adopted from the lattice's other hosts"
            )?,
            Err(error) => {
                tracing::warn!(%error, "could not adopt the lattice's links; starting with this host's own");
                writeln!(out, "links     none adopted: {error}")?;
            }
        }
    }

    let listener = local::Listener::bind(&control::endpoint(args.control.as_deref())?).await?;
    let endpoint = listener.endpoint();
    writeln!(
        out,
        "control   {endpoint} (weft link list --control {endpoint})"
    )?;
    if args.watch {
        writeln!(
            out,
            "watching  {} actor file(s) for new versions",
            watched.len()
        )?;
    }
    let control_task = tokio::spawn(local::serve(control.clone(), listener));
    // Health is checked whether or not probes are served: the inventory and the events
    // show it too.
    let health = HealthConfig {
        interval: std::time::Duration::from_millis(args.health_interval_ms),
        ..HealthConfig::default()
    };
    let health_events = control.publish_health_changes();
    let canary_verdicts = control.publish_canary_verdicts();
    let health_rounds = host.watch_health(health);
    let idle_for = std::time::Duration::from_secs(args.instance_idle_secs.max(1));
    let reaper = host.watch_idle_instances(
        (idle_for / 4).max(std::time::Duration::from_secs(1)),
        idle_for,
    );
    let mut endpoints = Vec::new();
    for (address, serves) in probes::listeners(args.health.as_deref(), args.metrics.as_deref()) {
        let listener = probes::bind(&address).await?;
        let address = listener.local_addr()?;
        if serves.health {
            writeln!(
                out,
                "health    http://{address}/readyz (and /livez, /readyz/ACTOR)"
            )?;
        }
        if serves.metrics {
            writeln!(out, "metrics   http://{address}/metrics")?;
        }
        endpoints.push(tokio::spawn(probes::serve(
            listener,
            control.clone(),
            health,
            serves,
        )));
    }
    // Served once the manifest is applied, so an inventory never shows it half started, and
    // before "Weft is up", so a `weft ctl` command run the moment that line appears finds
    // this host (regression: one sent a second after it answered "0 host(s) answered").
    let lattice_control = match &joined {
        Some(member) => {
            let heartbeat = std::time::Duration::from_secs(args.heartbeat_secs.max(1));
            let trusted = weft_lattice::envelope::Verifier::new(operators.clone());
            nats::serve(control.clone(), member.clone(), heartbeat, trusted).await?
        }
        None => Vec::new(),
    };
    writeln!(out, "Weft is up. Ctrl-C stops it.")?;
    out.flush()?;
    // Other tasks print from here on; stdout is taken per message.
    drop(out);
    let options = UpdateOptions {
        allow_new_capabilities: args.allow_new_capabilities,
        ..UpdateOptions::default()
    };
    let watch_task = args
        .watch
        .then(|| tokio::spawn(watch(host.clone(), watched, options)));

    crate::signal::shutdown_signal().await?;
    control_task.abort();
    health_rounds.abort();
    reaper.abort();
    health_events.abort();
    canary_verdicts.abort();
    for task in endpoints {
        task.abort();
    }
    if let Some(member) = &joined {
        nats::stopping(&control, member).await;
    }
    for task in lattice_control {
        task.abort();
    }
    if let Some(task) = watch_task {
        task.abort();
    }
    host.shutdown().await;
    control.stop_processes().await;
    writeln!(Out::stdout(), "stopped")?;
    Ok(())
}

/// An actor file `--watch` keeps an eye on.
struct Watched {
    path: PathBuf,
    actor_id: String,
    name: String,
}

/// How long a joining host waits for the other hosts' inventories, to adopt their links.
const ADOPT_WAIT_MS: u64 = 500;
/// How often `--watch` reads the actor files.
const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Polls the actor files; a file whose content changed, and read the same on two polls in a
/// row (so a file still being written is not taken), is offered to the host as an update.
async fn watch(host: Host, files: Vec<Watched>, options: UpdateOptions) {
    let mut loaded: Vec<Option<Vec<u8>>> = files
        .iter()
        .map(|f| weft_host::read_module(&f.path, weft_host::limits::DEFAULT_MAX_MODULE_BYTES).ok())
        .collect();
    let mut pending: Vec<Option<Vec<u8>>> = vec![None; files.len()];
    let mut ticker = tokio::time::interval(WATCH_POLL);
    loop {
        ticker.tick().await;
        for (i, file) in files.iter().enumerate() {
            let Ok(now) =
                weft_host::read_module(&file.path, weft_host::limits::DEFAULT_MAX_MODULE_BYTES)
            else {
                continue;
            };
            let (Some(last), Some(seen)) = (loaded.get_mut(i), pending.get_mut(i)) else {
                continue;
            };
            if last.as_deref() == Some(now.as_slice()) {
                *seen = None;
                continue;
            }
            if seen.as_deref() != Some(now.as_slice()) {
                *seen = Some(now);
                continue;
            }
            let message = match host.update_actor(&file.actor_id, &now, options).await {
                Ok(identity) => format!(
                    "updated   {} to revision {} from {}",
                    file.name,
                    identity.revision.map_or("none".into(), |r| r.to_string()),
                    file.path.display()
                ),
                Err(error) => format!("refused   {}: {error:#}", file.path.display()),
            };
            // A refused version is not offered again until the file changes once more.
            *last = Some(now);
            *seen = None;
            let _ = writeln!(Out::stdout(), "{message}");
        }
    }
}

/// A manifest's link, its actor named by name or module key, as a link definition.
fn to_definition(host: &Host, entry: &LinkEntry) -> Result<weft_provider_sdk::LinkDefinition> {
    let actors = host.actors();
    let names = actors.iter().map(|a| (a.id.as_str(), a.name.as_str()));
    // A module key names an actor wherever it runs: a host may serve HTTP for actors that
    // other hosts of its lattice run.
    let by_key = wascap::keys::public_key_with_role(&entry.actor, wascap::KeyRole::Module, "actor")
        .is_ok()
        .then(|| entry.actor.clone());
    Ok(weft_provider_sdk::LinkDefinition {
        actor_id: match by_key {
            Some(key) => key,
            None => control::resolve_actor(names, &entry.actor)?,
        },
        contract_id: weft_contracts::generations::canonical_contract(&entry.contract).to_string(),
        link_name: entry
            .link_name
            .clone()
            .unwrap_or_else(|| weft_provider_sdk::DEFAULT_LINK_NAME.to_string()),
        provider_id: entry.provider.clone(),
        values: entry.values.clone(),
    })
}
