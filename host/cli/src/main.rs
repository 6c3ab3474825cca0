//! `weft`: the command line of Weft. Subcommands live one per module; each returns
//! `anyhow::Result` with context, and `main` prints the whole chain on one line.

mod build_actors;
mod claims;
mod output;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "Weft: a host for signed WebAssembly actors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate keys, sign actors, and inspect or verify their claims
    #[command(subcommand)]
    Claims(claims::ClaimsCommand),
    /// Build the actors of a Cargo workspace to wasm32 and sign each one
    Build(build_actors::BuildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Claims(command) => claims::run(command),
        Command::Build(args) => build_actors::run(args),
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
