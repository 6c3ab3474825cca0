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
mod output;
mod probes;
mod provider;
mod signal;
mod supervise;
mod up;

use anyhow::Context;
use clap::{Parser, Subcommand};
use link::UpdateFlags;
use std::io::Write;
use std::process::ExitCode;

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
    /// nothing
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
        control: link::ControlArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (serving, result_only) = (
        log_level("info", cli.verbose),
        log_level("warn", cli.verbose),
    );
    let result = match cli.command {
        Command::Claims(command) => claims::run(command),
        Command::Build(args) => build_actors::run(args),
        Command::Up(args) => run_async(up::run(args), serving),
        Command::Host(args) => run_async(up::run_host(args), serving),
        Command::Link { command, control } => run_async(link::run(command, control), result_only),
        Command::Actors(control) => run_async(link::actors(control), result_only),
        Command::Provider(command) => {
            let threads = command.threads();
            run_async_on(provider::run(command), serving, Some(threads))
        }
        Command::Ctl(args) => run_async(ctl::run(args), result_only),
        Command::NatsConfig(args) => nats_config::run(args),
        Command::Update {
            actor,
            file,
            allow_new_capabilities,
            allow_new_issuer,
            control,
        } => run_async(
            link::update(
                actor,
                file,
                UpdateFlags {
                    allow_new_capabilities,
                    allow_new_issuer,
                },
                control,
            ),
            result_only,
        ),
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

/// Runs an async command on a thread per core (actors compute on all of them), with logs
/// to stderr at `default_level` unless `RUST_LOG` says otherwise (a command that prints a
/// result shows warnings only, not the NATS client's connection notices).
fn run_async(
    command: impl std::future::Future<Output = anyhow::Result<()>>,
    default_level: &str,
) -> anyhow::Result<()> {
    run_async_on(command, default_level, None)
}

/// Runs `command` on `threads` threads (`None`: one per core; `Some(1)`: this thread alone),
/// logging at `default_level` unless `RUST_LOG` says otherwise.
fn run_async_on(
    command: impl std::future::Future<Output = anyhow::Result<()>>,
    default_level: &str,
    threads: Option<usize>,
) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
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
