//! `weft claims`: keygen, sign, inspect, token. Signing options follow `wash claims sign`.

use crate::keystore::{self, KeyStore};
use crate::output::Out;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wascap::{Actor, Claims, KeyPair, KeyRole, VerifyOptions, contracts};

#[derive(Subcommand)]
pub enum ClaimsCommand {
    /// Generate a key pair and print its public key and seed
    Keygen(KeygenArgs),
    /// Sign a wasm module: embed claims naming its identity and capabilities
    Sign(Box<SignArgs>),
    /// Verify a signed module and show its claims; exits non-zero unless it verifies
    Inspect(InspectArgs),
    /// Print the raw JWT embedded in a module (not verified)
    Token(TokenArgs),
}

#[derive(Args)]
pub struct KeygenArgs {
    /// What the key is for
    #[arg(long, value_enum)]
    kind: KeyKind,
    /// Write the seed to a file in this directory (mode 0600) instead of printing it
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyKind {
    Account,
    Module,
    Service,
    Operator,
    /// A lattice issuer (`C…`): signs the membership of a lattice's processes
    Cluster,
}

impl KeyKind {
    /// The wascap role of an actor or control key; `None` for a lattice issuer.
    fn role(self) -> Option<KeyRole> {
        match self {
            KeyKind::Account => Some(KeyRole::Account),
            KeyKind::Module => Some(KeyRole::Module),
            KeyKind::Service => Some(KeyRole::Service),
            KeyKind::Operator => Some(KeyRole::Operator),
            KeyKind::Cluster => None,
        }
    }
}

#[derive(Args)]
pub struct SignArgs {
    /// The module to sign
    input: PathBuf,
    /// Where to write the signed module [default: INPUT with `_s` before `.wasm`]
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The actor's name
    #[arg(long)]
    name: String,
    /// Account seed (SA…) or a file holding it; default: `{name}_account.nk` in the key store
    #[arg(long, value_name = "SEED_OR_FILE")]
    issuer: Option<String>,
    /// Module seed (SM…) or a file holding it; default: `{name}_module.nk` in the key store
    #[arg(long, value_name = "SEED_OR_FILE")]
    subject: Option<String>,
    #[command(flatten)]
    claims: ClaimArgs,
}

/// The claims an actor is signed with; shared by `weft claims sign` and `weft build`.
#[derive(Args, Default)]
pub struct ClaimArgs {
    /// A capability contract the actor may call (repeatable)
    #[arg(long = "cap", value_name = "CONTRACT")]
    pub caps: Vec<String>,
    /// Shortcut for --cap wasmcloud:keyvalue
    #[arg(short = 'k', long = "keyvalue")]
    pub keyvalue: bool,
    /// Shortcut for --cap wasmcloud:messaging
    #[arg(short = 'm', long = "messaging")]
    pub messaging: bool,
    /// Shortcut for --cap wasmcloud:httpserver
    #[arg(short = 's', long = "httpserver")]
    pub http_server: bool,
    /// Shortcut for --cap wasmcloud:builtin:logging
    #[arg(short = 'l', long = "logging")]
    pub logging: bool,
    /// A tag (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Revision: a number that an update may not lower
    #[arg(long)]
    pub rev: Option<i32>,
    /// Human-readable version
    #[arg(long)]
    pub ver: Option<String>,
    /// Validity from now on, e.g. 30d, 12h
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub expires_in: Option<Duration>,
    /// Not valid until this long from now, e.g. 1h
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub not_before: Option<Duration>,
    /// An alias other actors may call this one by
    #[arg(long)]
    pub call_alias: Option<String>,
}

impl ClaimArgs {
    /// The requested capabilities, shortcuts included, in order and without repeats.
    fn capabilities(&self) -> Vec<String> {
        let shortcuts = [
            (self.keyvalue, contracts::KEYVALUE),
            (self.messaging, contracts::MESSAGING),
            (self.http_server, contracts::HTTP_SERVER),
            (self.logging, contracts::LOGGING),
        ];
        let mut caps: Vec<String> = Vec::new();
        let wanted = self
            .caps
            .iter()
            .map(String::as_str)
            .chain(shortcuts.iter().filter(|(on, _)| *on).map(|(_, id)| *id));
        for cap in wanted {
            if !caps.iter().any(|c| c == cap) {
                caps.push(cap.to_string());
            }
        }
        caps
    }

    fn claims(&self, name: &str, issuer: &KeyPair, subject: &KeyPair) -> Result<Claims<Actor>> {
        let now = wascap::unix_now();
        let later = |d: Duration| now.checked_add(d.as_secs()).context("duration is too long");
        let mut claims = Claims::new(
            issuer.public_key(),
            subject.public_key(),
            Actor {
                name: Some(name.to_string()),
                tags: (!self.tags.is_empty()).then(|| self.tags.clone()),
                caps: Some(self.capabilities()),
                rev: self.rev,
                ver: self.ver.clone(),
                call_alias: self.call_alias.clone(),
                ..Actor::default()
            },
        );
        claims.expires = self.expires_in.map(later).transpose()?;
        claims.not_before = self.not_before.map(later).transpose()?;
        Ok(claims)
    }
}

#[derive(Args)]
pub struct InspectArgs {
    /// The signed module
    file: PathBuf,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Accept only modules issued by this account (repeatable)
    #[arg(long = "issuer-allow", value_name = "ACCOUNT_KEY")]
    issuer_allow: Vec<String>,
}

#[derive(Args)]
pub struct TokenArgs {
    /// The signed module
    file: PathBuf,
}

pub fn run(command: ClaimsCommand) -> Result<()> {
    let mut out = Out::stdout();
    match command {
        ClaimsCommand::Keygen(args) => keygen(args, &mut out),
        ClaimsCommand::Sign(args) => sign(*args, &mut out),
        ClaimsCommand::Inspect(args) => inspect(args, &mut out),
        ClaimsCommand::Token(args) => token(args, &mut out),
    }
}

fn keygen(args: KeygenArgs, out: &mut Out) -> Result<()> {
    let (public, seed) = match args.kind.role() {
        Some(role) => {
            let key = role
                .generate()
                .context("cannot generate a key of this kind")?;
            let seed = key.seed().context("generated key has no seed")?;
            (key.public_key(), seed)
        }
        None => {
            let key = nkeys::KeyPair::new_cluster();
            let seed = key.seed().context("generated key has no seed")?;
            (key.public_key(), seed)
        }
    };
    match args.out {
        Some(dir) => {
            let path = dir.join(format!("{public}.nk"));
            keystore::write_secret(&path, &seed)?;
            writeln!(out, "Public Key: {public}")?;
            writeln!(out, "Seed: written to {} (mode 0600)", path.display())?;
        }
        None => {
            writeln!(out, "Public Key: {public}")?;
            writeln!(out, "Seed: {seed}")?;
            writeln!(
                out,
                "\nThe seed is a secret: keep it out of version control."
            )?;
        }
    }
    Ok(())
}

/// A key pair from `--issuer`/`--subject`: a seed given inline, or a file that holds one.
pub(crate) fn key_from_arg(arg: &str, role: KeyRole, what: &'static str) -> Result<KeyPair> {
    let looks_like_seed = arg.starts_with('S') && arg.len() == 58;
    if looks_like_seed && !Path::new(arg).exists() {
        return Ok(wascap::keys::seed_with_role(arg, role, what)?);
    }
    let seed = std::fs::read_to_string(arg).with_context(|| {
        format!("{what} {arg:?} is neither a seed (S…) nor a readable seed file")
    })?;
    wascap::keys::seed_with_role(&seed, role, what).with_context(|| format!("in seed file {arg}"))
}

/// The keys to sign `name` with: from the arguments, else from the key store.
pub fn signing_keys(
    name: &str,
    issuer: Option<&str>,
    subject: Option<&str>,
    out: &mut Out,
) -> Result<(KeyPair, KeyPair)> {
    let mut from_store = |role: KeyRole| -> Result<KeyPair> {
        let store = KeyStore::from_env()?;
        let stored = store.get_or_create(name, role)?;
        if stored.created {
            writeln!(
                out,
                "Generated {} key for {name:?} in {}",
                keystore::role_word(role),
                stored.path.display()
            )?;
        }
        Ok(stored.key)
    };
    let issuer = match issuer {
        Some(arg) => key_from_arg(arg, KeyRole::Account, "issuer seed")?,
        None => from_store(KeyRole::Account)?,
    };
    let subject = match subject {
        Some(arg) => key_from_arg(arg, KeyRole::Module, "subject seed")?,
        None => from_store(KeyRole::Module)?,
    };
    Ok((issuer, subject))
}

/// Signs the module at `input` into `output`.
pub fn sign_file(
    input: &Path,
    output: &Path,
    name: &str,
    claim_args: &ClaimArgs,
    (issuer, subject): (&KeyPair, &KeyPair),
) -> Result<Claims<Actor>> {
    let module =
        std::fs::read(input).with_context(|| format!("failed to read {}", input.display()))?;
    let claims = claim_args.claims(name, issuer, subject)?;
    let signed = wascap::embed_claims(&module, &claims, issuer)
        .with_context(|| format!("failed to sign {}", input.display()))?;
    if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    // Write beside, then rename: a host loading the file meanwhile sees the old module or the
    // new one, never half of one.
    let partial = output.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, &signed)
        .and_then(|()| std::fs::rename(&partial, output))
        .with_context(|| format!("failed to write {}", output.display()))?;
    Ok(claims)
}

fn sign(args: SignArgs, out: &mut Out) -> Result<()> {
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.input));
    let (issuer, subject) = signing_keys(
        &args.name,
        args.issuer.as_deref(),
        args.subject.as_deref(),
        out,
    )?;
    let claims = sign_file(
        &args.input,
        &output,
        &args.name,
        &args.claims,
        (&issuer, &subject),
    )?;
    writeln!(
        out,
        "Signed {} as {:?} → {}",
        args.input.display(),
        args.name,
        output.display()
    )?;
    writeln!(out, "  Account       {}", claims.issuer)?;
    writeln!(out, "  Module        {}", claims.subject)?;
    let caps = claims
        .metadata
        .as_ref()
        .map(Actor::capabilities)
        .unwrap_or_default();
    writeln!(out, "  Capabilities  {}", friendly_list(caps))?;
    Ok(())
}

fn default_output(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    input.with_file_name(format!("{stem}_s.wasm"))
}

fn friendly_list(caps: &[String]) -> String {
    if caps.is_empty() {
        return "none".to_string();
    }
    caps.iter()
        .map(|c| contracts::friendly_name(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn inspect(args: InspectArgs, out: &mut Out) -> Result<()> {
    let module = std::fs::read(&args.file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let mut options = VerifyOptions::new();
    if !args.issuer_allow.is_empty() {
        options = options.allow_issuers(args.issuer_allow.iter().cloned());
    }
    let verified = wascap::verify_module(&module, &options)
        .with_context(|| format!("{} does not verify", args.file.display()))?;
    let claims = &*verified;
    let actor = claims.metadata.clone().unwrap_or_default();
    let generation = match weft_host::generation::of_module(&module, actor.capabilities()) {
        Ok(generation) => generation.to_string(),
        Err(error) => format!("unknown: {error}"),
    };
    let expires = claims
        .expires
        .map_or("never".to_string(), wascap::human_time);
    let usable = claims
        .not_before
        .map_or("immediately".to_string(), wascap::human_time);

    if args.json {
        let json = serde_json::json!({
            "verified": true,
            "name": actor.name,
            "account": claims.issuer,
            "module": claims.subject,
            "expires": claims.expires,
            "expires_human": expires,
            "not_before": claims.not_before,
            "can_be_used": usable,
            "issued_at": claims.issued_at,
            "version": actor.ver,
            "revision": actor.rev,
            "call_alias": actor.call_alias,
            "capabilities": actor.capabilities(),
            "tags": actor.tags.clone().unwrap_or_default(),
            "hash": actor.module_hash,
            "hash_checked": verified.hash_checked(),
            "wascap_revision": claims.wascap_revision,
            "generation": generation,
            "id": claims.id,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(());
    }

    let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".to_string());
    let tags = actor
        .tags
        .as_ref()
        .filter(|t| !t.is_empty())
        .map(|t| t.join(", "));
    let rows = [
        ("Account", claims.issuer.clone()),
        ("Module", claims.subject.clone()),
        ("Expires", expires),
        ("Can Be Used", usable),
        ("Version", or_none(actor.ver.clone())),
        ("Revision", or_none(actor.rev.map(|r| r.to_string()))),
        ("Call Alias", or_none(actor.call_alias.clone())),
        ("Capabilities", friendly_list(actor.capabilities())),
        ("Tags", or_none(tags)),
        (
            "Hash",
            if verified.hash_checked() {
                actor.module_hash.clone()
            } else {
                format!(
                    "{} (not checked: wascap_revision {} < 3)",
                    actor.module_hash,
                    claims.wascap_revision.unwrap_or(0)
                )
            },
        ),
        ("ABI", generation),
    ];
    let title = format!(
        "{} - Module (verified)",
        actor.name.as_deref().unwrap_or("unnamed")
    );
    let width = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0) + 16;
    writeln!(out, "{title:^width$}")?;
    writeln!(out, "{}", "─".repeat(width))?;
    for (key, value) in rows {
        writeln!(out, "  {key:<13} {value}")?;
    }
    Ok(())
}

fn token(args: TokenArgs, out: &mut Out) -> Result<()> {
    let module = std::fs::read(&args.file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let Some(token) = wascap::extract_token(&module)
        .with_context(|| format!("failed to read claims from {}", args.file.display()))?
    else {
        bail!("{}: {}", args.file.display(), wascap::ClaimsError::Unsigned);
    };
    writeln!(out, "{token}")?;
    Ok(())
}
