//! `weft`: the command line of Weft. Subcommands live one per module; each returns
//! `anyhow::Result` with context, and `main` prints the whole chain on one line.

mod build_actors;
mod claims;
mod control;
mod ctl;
mod keystore;
mod lattice_args;
mod link;
mod manifest;
mod nats_config;
mod operator;
mod otlp;
mod output;
mod probes;
mod progress;
mod provider;
mod signal;
mod supervise;
mod up;
mod update;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use update::UpdateFlags;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "Weft: a host for signed WebAssembly actors"
)]
struct Cli {
    /// More log lines on stderr (results go to stdout, logs never do): -v shows the
    /// libraries' notices, -vv debugging, -vvv everything. RUST_LOG, when set, decides instead
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Export traces of every request (across hosts and provider processes) over OTLP/HTTP to
    /// this collector, e.g. http://127.0.0.1:4318 [default: no traces]
    #[arg(long, global = true, env = "WEFT_OTLP", value_name = "ENDPOINT")]
    otlp: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The log level `verbose` steps above `base` (`warn` for a command that prints a result,
/// `info` for a host or provider that runs until stopped).
fn log_level(base: &str, verbose: u8) -> &'static str {
    const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];
    let at = LEVELS.iter().position(|l| *l == base).unwrap_or(1);
    LEVELS
        .get(at + usize::from(verbose))
        .copied()
        .unwrap_or("trace")
}

#[derive(Subcommand)]
enum Command {
    /// Generate keys, sign actors, and inspect or verify their claims
    #[command(subcommand)]
    Claims(claims::ClaimsCommand),
    /// Build the actors of a Cargo workspace to wasm32 and sign each one
    Build(build_actors::BuildArgs),
    /// Run an app (actors, providers, links) on this machine, no NATS or Redis needed
    Up(up::UpArgs),
    /// Run an app on a host joined to a NATS lattice (`weft up` with --lattice required)
    Host(up::UpArgs),
    /// Put, delete or list the links of a running `weft up`
    Link {
        #[command(subcommand)]
        command: link::LinkCommand,
        #[command(flatten)]
        control: link::ControlArgs,
    },
    /// List the actors of a running `weft up`
    Actors(link::ControlArgs),
    /// Run a provider as its own process on a lattice
    #[command(subcommand)]
    Provider(provider::ProviderCommand),
    /// Drive a lattice over NATS: inventory, events, apply a manifest, start/stop/scale/update
    /// actors and providers, links on every host
    Ctl(ctl::CtlArgs),
    /// Write an operator-mode nats-server config for a lattice, and the credentials of its
    /// members and its operator (NATS then refuses what each may not publish or subscribe)
    NatsConfig(nats_config::NatsConfigArgs),
    /// Hot-swap a running actor to a new version: no call fails, a refused version changes
    /// nothing; with --canary, first on a share of the calls, then promoted or rolled back by
    /// the host
    Update {
        /// The actor's name or module key
        actor: String,
        /// The new version (a signed .wasm file)
        file: std::path::PathBuf,
        /// Accept a version that adds capabilities
        #[arg(long)]
        allow_new_capabilities: bool,
        /// Accept a version signed by another account than the running one (e.g. after
        /// rotating the issuer key); without it an update must keep the issuer
        #[arg(long)]
        allow_new_issuer: bool,
        #[command(flatten)]
        canary: ctl::CanaryArgs,
        #[command(flatten)]
        control: link::ControlArgs,
    },
    /// End a running canary of a `weft up` now: promote its new version, or roll it back
    #[command(subcommand_value_name = "DECISION")]
    Canary {
        #[command(subcommand)]
        decide: ctl::DecideCommand,
        #[command(flatten)]
        control: link::ControlArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let otlp = cli.otlp.as_deref();
    let serving = |service| Logging {
        level: log_level("info", cli.verbose),
        otlp: otlp.map(|endpoint| (endpoint, service)),
    };
    let result_only = |service| Logging {
        level: log_level("warn", cli.verbose),
        otlp: otlp.map(|endpoint| (endpoint, service)),
    };
    let result = match cli.command {
        Command::Claims(command) => claims::run(command),
        Command::Build(args) => build_actors::run(args),
        Command::Up(args) => run_async(up::run(args), serving("weft up")),
        Command::Host(args) => run_async(up::run_host(args), serving("weft host")),
        Command::Link { command, control } => {
            run_async(link::run(command, control), result_only("weft link"))
        }
        Command::Actors(control) => run_async(link::actors(control), result_only("weft actors")),
        Command::Provider(command) => {
            let threads = command.threads();
            run_async_on(
                provider::run(command),
                serving("weft provider"),
                Some(threads),
            )
        }
        Command::Ctl(args) => run_async(ctl::run(args), result_only("weft ctl")),
        Command::NatsConfig(args) => nats_config::run(args),
        Command::Update {
            actor,
            file,
            allow_new_capabilities,
            allow_new_issuer,
            canary,
            control,
        } => run_async(
            async move {
                update::update(
                    actor,
                    file,
                    UpdateFlags {
                        allow_new_capabilities,
                        allow_new_issuer,
                    },
                    canary.plan()?,
                    control,
                )
                .await
            },
            result_only("weft update"),
        ),
        Command::Canary { decide, control } => {
            run_async(update::decide(decide, control), result_only("weft canary"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` puts the context chain on one line: "failed to read x.wasm: No such file".
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where a command's logs and traces go.
struct Logging<'a> {
    /// Logs to stderr at this level unless `RUST_LOG` says otherwise.
    level: &'a str,
    /// Traces to this OTLP endpoint, as this service, when asked (`--otlp`).
    otlp: Option<(&'a str, &'static str)>,
}

/// Runs an async command on a thread per core (actors compute on all of them), logging as
/// `logging` says (a command that prints a result shows warnings only, not the NATS client's
/// connection notices).
fn run_async(
    command: impl std::future::Future<Output = anyhow::Result<()>>,
    logging: Logging<'_>,
) -> anyhow::Result<()> {
    run_async_on(command, logging, None)
}

/// Runs `command` on `threads` threads (`None`: one per core; `Some(1)`: this thread alone),
/// logging as `logging` says.
fn run_async_on(
    command: impl std::future::Future<Output = anyhow::Result<()>>,
    logging: Logging<'_>,
    threads: Option<usize>,
) -> anyhow::Result<()> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(logging.level));
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(filter);
    // Made before the runtime: its HTTP client runs a runtime of its own. Dropped last, after
    // the command, so that it sends the spans it still holds.
    let (traces, _flushed_at_exit) = match logging.otlp {
        Some((endpoint, service)) => {
            let (layer, traces) = otlp::layer(endpoint, service)?;
            (Some(layer), Some(traces))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    let mut runtime = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut runtime = tokio::runtime::Builder::new_multi_thread();
            runtime.worker_threads(threads);
            runtime
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime
        .enable_all()
        .build()
        .context("failed to start the async runtime")?
        .block_on(command)
}

#[cfg(test)]
mod tests {
    use super::log_level;

    #[test]
    fn each_v_shows_one_level_more() {
        assert_eq!(log_level("warn", 0), "warn");
        assert_eq!(log_level("warn", 1), "info");
        assert_eq!(log_level("info", 1), "debug");
        assert_eq!(log_level("info", 9), "trace");
    }
}
