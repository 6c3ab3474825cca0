//! `weft provider run KIND --id ID --lattice NAME`: runs one of the providers this binary
//! carries as its own process on a lattice, until Ctrl-C or SIGTERM.

use crate::lattice_args::LatticeArgs;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use weft_http_server::{HttpServer, ServerLimits};
use weft_keyvalue_memory::{MemoryKeyValue, Quota};
use weft_keyvalue_redis::RedisKeyValue;
use weft_messaging_nats::NatsMessaging;
use weft_provider_sdk::Provider;
use weft_provider_sdk::runner::{self, RunnerOptions};

#[derive(Subcommand)]
pub enum ProviderCommand {
    /// Run a provider on a lattice
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The provider: keyvalue-redis, keyvalue-memory, http-server, httpclient, blobstore-fs
    /// or messaging-nats
    kind: String,
    /// Its id on the lattice (links name it); default: its kind
    #[arg(long)]
    id: Option<String>,
    /// Provider settings, KEY=VALUE (repeatable); keyvalue-redis and messaging-nats take
    /// `url`, the default server for links that name none; keyvalue-memory takes
    /// `max_keys` (default 100000) and `max_bytes` (default 67108864); http-server takes
    /// `max_connections` over all its listeners (default 8192) and `max_buffered_body_bytes`
    /// (default 33554432)
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// How long a call to an actor may take, milliseconds
    #[arg(long, default_value_t = weft_host::limits::DEFAULT_CALL_DEADLINE_MS)]
    actor_deadline_ms: u64,
    /// Threads to serve on. A provider mostly waits on I/O, and one thread serves it with no
    /// hand-offs between threads (each costs a wake-up, dear on small machines); give more
    /// to a provider that computes
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    #[command(flatten)]
    lattice: LatticeArgs,
}

/// The providers this binary carries, by kind, configured from `config`.
pub fn by_kind(kind: &str, config: &BTreeMap<String, String>) -> Result<Arc<dyn Provider>> {
    Ok(match kind {
        "keyvalue-redis" => Arc::new(RedisKeyValue::new(config.get("url").cloned())),
        "keyvalue-memory" => {
            let default = Quota::default();
            Arc::new(MemoryKeyValue::with_quota(Quota {
                max_keys: setting(config, "max_keys")?.unwrap_or(default.max_keys),
                max_bytes: setting(config, "max_bytes")?.unwrap_or(default.max_bytes),
            }))
        }
        "http-server" => {
            let default = ServerLimits::default();
            let lanes = match config.get("lanes").map(String::as_str) {
                None | Some("auto") => true,
                Some("off") => false,
                Some(other) => bail!(
                    "provider setting lanes={other:?} is neither `auto` (serve each connection \
                     on one of the provider's own threads, the default) nor `off` (serve on the \
                     host's runtime)"
                ),
            };
            Arc::new(
                HttpServer::with_limits(ServerLimits {
                    max_connections: setting(config, "max_connections")?
                        .unwrap_or(default.max_connections),
                    max_buffered_body_bytes: setting(config, "max_buffered_body_bytes")?
                        .unwrap_or(default.max_buffered_body_bytes),
                })
                .serving_on_lanes(lanes),
            )
        }
        "httpclient" => Arc::new(weft_httpclient::HttpClient::new()),
        "blobstore-fs" => Arc::new(weft_blobstore_fs::FsBlobstore::new()),
        "messaging-nats" => Arc::new(NatsMessaging::new(
            config
                .get("url")
                .cloned()
                .unwrap_or_else(|| "nats://127.0.0.1:4222".into()),
        )),
        other => bail!(
            "there is no provider of kind {other:?}; the kinds are keyvalue-redis, \
             keyvalue-memory, http-server, httpclient, blobstore-fs and messaging-nats"
        ),
    })
}

/// Whether a provider of `kind` keeps state in its own memory (asked of the provider itself),
/// so that a restart of its process loses it.
pub fn keeps_state_in_memory(kind: &str, config: &BTreeMap<String, String>) -> bool {
    by_kind(kind, config).is_ok_and(|provider| provider.keeps_data())
}

/// A number among a provider's settings, if it is there.
fn setting(config: &BTreeMap<String, String>, key: &str) -> Result<Option<usize>> {
    config
        .get(key)
        .map(|value| {
            value
                .parse()
                .with_context(|| format!("provider setting {key}={value:?} is not a whole number"))
        })
        .transpose()
}

/// The provider kinds this binary carries, for control requests to start or replace one:
/// in the host's process, or, once the host is on a lattice, as supervised child processes.
#[derive(Default)]
pub struct Kinds {
    processes: std::sync::OnceLock<ProcessContext>,
}

/// What starting a provider process takes: the host's lattice, as its manifest's are started.
pub struct ProcessContext {
    /// How the host joined (NATS URL, auth, TLS) and so how its children join.
    pub lattice: crate::lattice_args::LatticeArgs,
    /// The host's membership.
    pub member: Arc<weft_lattice::Member>,
    /// The lattice issuer the children are signed by.
    pub credentials: weft_lattice::Credentials,
    /// The host's control plane, for the children's events.
    pub control: std::sync::Weak<weft_host::control::Control>,
}

impl Kinds {
    /// From now on, provider processes can be started, as `context` says.
    pub fn run_processes(&self, context: ProcessContext) {
        let _ = self.processes.set(context);
    }
}

#[weft_provider_sdk::async_trait]
impl weft_host::control::ProviderFactory for Kinds {
    fn provider(
        &self,
        kind: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn Provider>, String> {
        by_kind(kind, config).map_err(|e| format!("{e:#}"))
    }

    async fn start_process(
        &self,
        id: &str,
        kind: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn weft_host::control::ProviderProcess>, String> {
        let context = self.processes.get().ok_or_else(|| {
            "this host is not on a lattice: a provider process serves only there".to_string()
        })?;
        let control = context
            .control
            .upgrade()
            .ok_or_else(|| "this host is stopping".to_string())?;
        // A kind or config it would refuse is refused here, not by a child that exits.
        by_kind(kind, config).map_err(|e| format!("{e:#}"))?;
        let entry = crate::manifest::ProviderEntry {
            id: id.to_string(),
            kind: kind.to_string(),
            config: config.clone(),
            process: true,
            on: BTreeMap::new(),
        };
        let supervised = crate::supervise::start(
            &entry,
            &context.lattice,
            context.member.clone(),
            &context.credentials,
            control,
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        Ok(supervised)
    }
}

impl ProviderCommand {
    /// The threads its runtime should have.
    pub fn threads(&self) -> usize {
        let ProviderCommand::Run(args) = self;
        usize::from(args.threads)
    }
}

pub async fn run(command: ProviderCommand) -> Result<()> {
    let ProviderCommand::Run(args) = command;
    let Some(lattice) = args.lattice.lattice.clone() else {
        bail!(
            "weft provider run needs --lattice NAME (and --nats URL unless NATS is on 127.0.0.1:4222)"
        );
    };
    let mut config: BTreeMap<String, String> = match std::env::var(CONFIG_ENV) {
        Ok(json) => serde_json::from_str(&json)
            .with_context(|| format!("{CONFIG_ENV} is not a JSON object of strings"))?,
        Err(_) => BTreeMap::new(),
    };
    config.extend(crate::link::key_values(&args.config, "--config")?);
    let provider = by_kind(&args.kind, &config)?;
    let provider_id = args.id.clone().unwrap_or_else(|| args.kind.clone());
    if args.kind == "http-server" {
        // A process replacing this one listens on its sockets, and this one on those of the
        // process it replaces: no port closes in a swap.
        let dir = handover_dir();
        let scope = format!("{lattice}.{provider_id}");
        weft_http_server::share_sockets(&dir, &scope)
            .with_context(|| format!("cannot share listening sockets in {}", dir.display()))?;
    }
    let options = RunnerOptions {
        nats: args
            .lattice
            .nats_options(&format!("weft provider {provider_id}")),
        lattice,
        credentials: args.lattice.credentials()?,
        provider_id: provider_id.clone(),
        actor_call_deadline: Duration::from_millis(args.actor_deadline_ms),
        announce_ready: std::env::var(READY_SUBJECT_ENV).ok(),
        own_health: std::env::var(HEALTH_SUBJECT_ENV).ok(),
    };
    let supervisor = std::env::var(SUPERVISOR_PID_ENV)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok());
    runner::run(provider, options, async {
        tokio::select! {
            signalled = crate::signal::shutdown_signal() => {
                if let Err(error) = signalled {
                    tracing::warn!(%error, "no signal handler; stopping");
                }
            }
            () = supervisor_gone(supervisor) => {
                tracing::warn!("the host supervising this provider is gone; stopping");
            }
        }
    })
    .await
    .with_context(|| format!("provider {provider_id} ({}) stopped", args.kind))
}

/// Where HTTP server processes hand their listening sockets to their replacements: beside the
/// local control socket (the user's own runtime directory).
fn handover_dir() -> std::path::PathBuf {
    match weft_host::control::local::Endpoint::default_socket() {
        weft_host::control::local::Endpoint::Socket(path) => path
            .parent()
            .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf)
            .join("http-sockets"),
        _ => std::env::temp_dir().join("weft-http-sockets"),
    }
}

/// Set by a supervising host to the provider's config, a JSON object (never argv: it may hold
/// a password); `--config` adds to it.
pub const CONFIG_ENV: &str = "WEFT_PROVIDER_CONFIG";

/// Set by a supervising host to a subject on which the provider says once that it serves.
pub const READY_SUBJECT_ENV: &str = "WEFT_READY_SUBJECT";

/// Set by a supervising host to a subject only this process answers its health checks on.
pub const HEALTH_SUBJECT_ENV: &str = "WEFT_HEALTH_SUBJECT";

/// Set by a supervising host to its process id: its provider processes stop when it is gone.
pub const SUPERVISOR_PID_ENV: &str = "WEFT_SUPERVISOR_PID";

/// Resolves once this process's parent is no longer `supervisor` (it died, even by SIGKILL,
/// and this process was handed to init), so a crashed host leaves no provider behind holding
/// its connections and ports. Never resolves without a supervisor.
async fn supervisor_gone(supervisor: Option<u32>) {
    let Some(supervisor) = supervisor else {
        return std::future::pending().await;
    };
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        if std::os::unix::process::parent_id() != supervisor {
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// The HTTP provider's `lanes` setting takes `auto` and `off`, and refuses anything
    /// else naming both.
    #[test]
    fn the_http_providers_lanes_setting_is_auto_or_off() {
        for taken in ["auto", "off"] {
            let config = [("lanes".to_string(), taken.to_string())].into();
            by_kind("http-server", &config).unwrap();
        }
        let config = [("lanes".to_string(), "sideways".to_string())].into();
        let refused = by_kind("http-server", &config).err().unwrap().to_string();
        assert!(refused.contains("lanes=\"sideways\""), "{refused}");
        assert!(
            refused.contains("`auto`") && refused.contains("`off`"),
            "{refused}"
        );
    }
}
