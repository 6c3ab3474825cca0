//! The app manifest: one TOML file naming the actors, providers and links of an app. Paths are
//! relative to the manifest's directory. Link values may say `${VAR}` or `${VAR:-default}` to
//! take a value from the environment (an address to listen on, a Redis URL).
//!
//! ```toml
//! [build]                      # what `weft up --build` builds and signs first (optional)
//! workspace = "../../actors"
//! packages = ["kvcounter"]
//!
//! [[actors]]
//! path = "../../target/actors/kvcounter.wasm"
//! instances = 4                # at most this many calls at once (optional)
//! on = { zone = "a" }          # `weft ctl apply`: only hosts with these labels (optional;
//!                              # an actor goes on every such host, a provider on one)
//!
//! [[providers]]
//! id = "http"
//! kind = "http-server"         # or keyvalue-memory, keyvalue-redis, httpclient, blobstore-fs, messaging-nats
//!
//! [[links]]
//! actor = "kvcounter"          # the actor's name in its claims, or its module key
//! contract = "wasmcloud:httpserver"
//! provider = "http"
//! link_name = "default"        # optional
//! values = { address = "${KVCOUNTER_ADDRESS:-127.0.0.1:8080}" }
//! ```

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub build: Option<BuildSection>,
    #[serde(default)]
    pub actors: Vec<ActorEntry>,
    #[serde(default)]
    pub providers: Vec<ProviderEntry>,
    #[serde(default)]
    pub links: Vec<LinkEntry>,
    /// The manifest's directory, against which paths resolve.
    #[serde(skip)]
    pub dir: PathBuf,
    /// The manifest's own path, for messages.
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    pub workspace: PathBuf,
    #[serde(default)]
    pub packages: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorEntry {
    pub path: PathBuf,
    #[serde(default)]
    pub instances: Option<usize>,
    /// Where `weft ctl apply` runs it: every host with these labels (default: every host).
    #[serde(default)]
    pub on: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub id: String,
    pub kind: String,
    /// Provider settings (keyvalue-redis: `url`).
    #[serde(default)]
    pub config: std::collections::BTreeMap<String, String>,
    /// Run it as a supervised child process on the lattice (`weft host` only), instead of
    /// in the host's process.
    #[serde(default)]
    pub process: bool,
    /// Where `weft ctl apply` runs it: one host with these labels (default: any host).
    #[serde(default)]
    pub on: BTreeMap<String, String>,
}

/// A link as people write it: the actor by name or key. Also the body of `weft link put`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub actor: String,
    pub contract: String,
    pub provider: String,
    #[serde(default)]
    pub link_name: Option<String>,
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

impl Manifest {
    /// No actors, providers or links: a host that waits for `weft ctl`.
    pub fn empty() -> Self {
        Manifest {
            build: None,
            actors: Vec::new(),
            providers: Vec::new(),
            links: Vec::new(),
            dir: PathBuf::from("."),
            file: PathBuf::from("(no manifest)"),
        }
    }

    pub fn load(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("failed to read the app manifest {}", file.display()))?;
        Self::parse(&text, file)
    }

    /// The manifest `text`, read from `file` (named in errors; paths resolve against its
    /// directory).
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let mut manifest: Manifest = toml::from_str(text).map_err(|e| {
            // toml's own rendering spans several lines; errors here are one line.
            let line = e.span().map(|s| {
                text.get(..s.start)
                    .unwrap_or_default()
                    .lines()
                    .count()
                    .max(1)
            });
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            anyhow::anyhow!(
                "{} is not a valid app manifest{at}: {}",
                file.display(),
                e.message().trim()
            )
        })?;
        manifest.dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        manifest.file = file.to_path_buf();
        for provider in &manifest.providers {
            if manifest
                .providers
                .iter()
                .filter(|p| p.id == provider.id)
                .count()
                > 1
            {
                bail!(
                    "{}: provider id {:?} is used twice",
                    file.display(),
                    provider.id
                );
            }
        }
        for link in &mut manifest.links {
            for value in link.values.values_mut() {
                *value = expand_env(value).with_context(|| {
                    format!("{}: link values of {}", file.display(), link.actor)
                })?;
            }
        }
        Ok(manifest)
    }

    /// A path from the manifest, resolved against its directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.dir.join(path)
        }
    }
}

/// Expands `${VAR}` and `${VAR:-default}`. An unset `${VAR}` without a default is an error.
fn expand_env(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find('}') else {
            bail!("unclosed ${{ in {text:?}")
        };
        let expr = after.get(..end).unwrap_or_default();
        let (name, default) = match expr.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expr, None),
        };
        match (std::env::var(name), default) {
            (Ok(value), _) if !value.is_empty() => out.push_str(&value),
            (_, Some(default)) => out.push_str(default),
            _ => bail!("environment variable {name} is not set and {text:?} gives no default"),
        }
        rest = after.get(end + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing (weft_testing::fuzz) of the manifest reader, from mutations of the example
    /// apps' manifests: no text panics it.
    #[test]
    fn fuzz_manifest() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let seeds: Vec<Vec<u8>> = ["kvcounter", "kvcounter-redis", "msg-echo", "lattice"]
            .iter()
            .filter_map(|app| std::fs::read(root.join(app).join("app.toml")).ok())
            .collect();
        assert!(seeds.len() >= 3, "the example manifests moved");
        weft_testing::fuzz::run("manifest", &seeds, |bytes| {
            let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
            Manifest::parse(text, Path::new("app.toml"))
                .map(drop)
                .map_err(|e| format!("{e:#}"))
        });
    }

    #[test]
    fn env_expansion_with_and_without_defaults() {
        assert_eq!(expand_env("plain").unwrap(), "plain");
        assert_eq!(
            expand_env("${WEFT_TEST_SURELY_UNSET:-127.0.0.1:8080}").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(expand_env("a${WEFT_TEST_SURELY_UNSET:-b}c").unwrap(), "abc");
        assert!(expand_env("${WEFT_TEST_SURELY_UNSET}").is_err());
        assert!(expand_env("${OOPS").is_err());
        let path = std::env::var("PATH").unwrap();
        assert_eq!(expand_env("${PATH:-x}").unwrap(), path);
    }
}
