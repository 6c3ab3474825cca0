//! `weft build`: builds every actor of a Cargo workspace to `wasm32-unknown-unknown` and signs
//! each one, so that a fresh clone goes from source to runnable signed actors in one command.
//!
//! An actor opts in with a `[package.metadata.weft]` table in its Cargo.toml (`name`, `caps`,
//! `rev`, `ver`, `tags`, `call_alias`); packages without one are built but not signed. Keys come
//! from the key store, as for `weft claims sign` without `--issuer`/`--subject`.

use crate::claims::{ClaimArgs, sign_file, signing_keys};
use crate::output::Out;
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

#[derive(Args)]
pub struct BuildArgs {
    /// The actors' Cargo workspace
    #[arg(long, default_value = "actors")]
    workspace: PathBuf,
    /// Build only this package (repeatable)
    #[arg(short, long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// Where signed actors go [default: TARGET_DIR/actors]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// What `cargo metadata` says of the workspace; only the parts used here.
#[derive(Deserialize)]
struct Metadata {
    target_directory: PathBuf,
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    targets: Vec<Target>,
    #[serde(default)]
    metadata: Option<PackageMetadata>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    crate_types: Vec<String>,
}

#[derive(Deserialize)]
struct PackageMetadata {
    weft: Option<ActorManifest>,
}

/// `[package.metadata.weft]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActorManifest {
    name: Option<String>,
    #[serde(default)]
    caps: Vec<String>,
    rev: Option<i32>,
    ver: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    call_alias: Option<String>,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

pub fn run(args: BuildArgs) -> Result<()> {
    let mut out = Out::stdout();
    build(&args.workspace, &args.packages, args.out, &mut out)
}

/// Builds the packages (all when `packages` is empty) of the actors workspace and signs those
/// with a `[package.metadata.weft]` table into `out_dir` (default `TARGET_DIR/actors`).
pub fn build(
    workspace: &Path,
    packages: &[String],
    out_dir: Option<PathBuf>,
    out: &mut Out,
) -> Result<()> {
    let manifest = workspace.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} not found: point --workspace at the actors' Cargo workspace",
            manifest.display()
        );
    }
    let metadata = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace)
        .output()
        .context("failed to run `cargo metadata`; is cargo on PATH?")?;
    if !metadata.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&metadata.stderr).trim()
        );
    }
    let metadata: Metadata =
        serde_json::from_slice(&metadata.stdout).context("unexpected `cargo metadata` output")?;

    let mut build = cargo();
    build
        .args(["build", "--release", "--target", WASM_TARGET])
        .current_dir(workspace);
    for package in packages {
        build.args(["-p", package]);
    }
    crate::progress::Progress::new("build", false).say(format!(
        "cargo build --release --target {WASM_TARGET} in {} (cargo's own progress follows)",
        workspace.display()
    ));
    let status = build.status().context("failed to run `cargo build`")?;
    if !status.success() {
        bail!(
            "building the actors failed (see cargo's output above); if the target is missing, run \
             `rustup target add {WASM_TARGET}`"
        );
    }

    // cargo reports `actors/../target` as it was configured; show users the plain path.
    let target_dir = metadata
        .target_directory
        .canonicalize()
        .unwrap_or(metadata.target_directory);
    let out_dir = out_dir.unwrap_or_else(|| target_dir.join("actors"));
    let wasm_dir = target_dir.join(WASM_TARGET).join("release");
    let chosen = |p: &Package| packages.is_empty() || packages.contains(&p.name);
    for package in metadata.packages.iter().filter(|p| chosen(p)) {
        let Some(actor) = package.metadata.as_ref().and_then(|m| m.weft.as_ref()) else {
            continue;
        };
        sign_actor(package, actor, &wasm_dir, &out_dir, out)?;
    }
    Ok(())
}

fn sign_actor(
    package: &Package,
    actor: &ActorManifest,
    wasm_dir: &Path,
    out_dir: &Path,
    out: &mut Out,
) -> Result<()> {
    let Some(lib) = package
        .targets
        .iter()
        .find(|t| t.crate_types.iter().any(|c| c == "cdylib"))
    else {
        bail!(
            "package {} has [package.metadata.weft] but no cdylib target",
            package.name
        );
    };
    let name = actor.name.clone().unwrap_or_else(|| package.name.clone());
    let input = wasm_dir.join(format!("{}.wasm", lib.name.replace('-', "_")));
    let output = out_dir.join(format!("{name}.wasm"));
    let claim_args = ClaimArgs {
        caps: actor.caps.clone(),
        tags: actor.tags.clone(),
        rev: actor.rev,
        ver: actor.ver.clone(),
        call_alias: actor.call_alias.clone(),
        ..ClaimArgs::default()
    };
    let (issuer, subject) = signing_keys(&name, None, None, out)?;
    let claims = sign_file(&input, &output, &name, &claim_args, (&issuer, &subject))
        .with_context(|| format!("failed to sign actor {name}"))?;
    writeln!(
        out,
        "Built and signed {name} → {} (module {})",
        output.display(),
        claims.subject
    )?;
    Ok(())
}
