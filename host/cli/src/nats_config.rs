//! `weft nats-config`: a nats-server configuration in operator mode (decentralised JWT auth)
//! for one lattice, and the credentials its processes connect with, so that NATS itself
//! enforces who may say what on the lattice's subjects, beneath the seals and signatures:
//!
//! | credentials | for | may publish | may subscribe |
//! |---|---|---|---|
//! | `member.creds` | hosts, provider processes | `weft.L.>` but not `weft.L.ctl.host.>`; `_INBOX.>` | `weft.L.>`, `_INBOX.>` |
//! | `operator.creds` | `weft ctl` | `weft.L.ctl.>`, `weft.L.member.*.key`, `_INBOX.>` | `weft.L.evt.>`, `weft.L.member.*.key`, `_INBOX.>` |
//!
//! So only the operator's credentials publish on the control prefix, a client without
//! credentials is not admitted at all, and `weft ctl`'s credentials cannot join a queue group
//! (take an actor's or a provider's calls). The keys it makes (operator, account, two users)
//! are written next to the config, owner-only, for rotating or adding users later.

use crate::keystore::write_secret;
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct NatsConfigArgs {
    /// The lattice whose subjects the permissions are for
    #[arg(long)]
    lattice: String,
    /// The directory to write nats.conf, member.creds and operator.creds into (created;
    /// existing files are never overwritten)
    #[arg(long, default_value = "nats-config")]
    out: PathBuf,
}

/// The permissions of each kind of credentials, for lattice `lattice`.
fn permissions(lattice: &str, operator: bool) -> Value {
    let prefix = format!("weft.{lattice}");
    if operator {
        json!({
            "pub": {"allow": [format!("{prefix}.ctl.>"), format!("{prefix}.member.*.key"), "_INBOX.>"]},
            "sub": {"allow": [format!("{prefix}.evt.>"), format!("{prefix}.member.*.key"), "_INBOX.>"]},
        })
    } else {
        json!({
            "pub": {"allow": [format!("{prefix}.>"), "_INBOX.>"], "deny": [format!("{prefix}.ctl.host.>")]},
            "sub": {"allow": [format!("{prefix}.>"), "_INBOX.>"]},
        })
    }
}

/// A NATS JWT (`ed25519-nkey`) for `subject` with `nats` claims, signed by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: Value) -> Result<String> {
    use data_encoding::BASE64URL_NOPAD;
    let header = BASE64URL_NOPAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let claims = json!({
        // Unique per token; a fresh public key is.
        "jti": nkeys::KeyPair::new_user().public_key(),
        "iat": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let signed = format!(
        "{header}.{}",
        BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
    );
    let signature = issuer
        .sign(signed.as_bytes())
        .context("cannot sign a NATS JWT")?;
    Ok(format!("{signed}.{}", BASE64URL_NOPAD.encode(&signature)))
}

fn user_creds(account: &nkeys::KeyPair, name: &str, permissions: Value) -> Result<String> {
    let user = nkeys::KeyPair::new_user();
    let mut claims = json!({"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1});
    if let (Some(claims), Value::Object(permissions)) = (claims.as_object_mut(), permissions) {
        claims.extend(permissions);
    }
    let token = jwt(account, &user.public_key(), name, claims)?;
    let seed = user.seed().context("a new user key has a seed")?;
    Ok(format!(
        "-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    ))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    write_secret(&path, text.trim_end())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

pub fn run(args: NatsConfigArgs) -> Result<()> {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "weft",
        json!({"type": "operator", "version": 2}),
    )?;
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        &format!("weft-{}", args.lattice),
        json!({
            "type": "account",
            "version": 2,
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1},
        }),
    )?;
    let config = format!(
        "# Operator mode for lattice {lattice}: made by `weft nats-config`.\n\
         operator: {operator_jwt}\n\
         resolver: MEMORY\n\
         resolver_preload: {{\n  {account}: {account_jwt}\n}}\n",
        lattice = args.lattice,
        account = account.public_key(),
    );
    let out = &args.out;
    let mut written = vec![write(out, "nats.conf", &config)?];
    written.push(write(
        out,
        "member.creds",
        &user_creds(&account, "member", permissions(&args.lattice, false))?,
    )?);
    written.push(write(
        out,
        "operator.creds",
        &user_creds(&account, "operator", permissions(&args.lattice, true))?,
    )?);
    for (name, key) in [("operator", &operator), ("account", &account)] {
        let seed = key.seed().context("a new key has a seed")?;
        written.push(write(out, &format!("{name}.nk"), &seed)?);
    }
    let mut stdout = std::io::stdout().lock();
    for path in written {
        writeln!(stdout, "wrote {}", path.display())?;
    }
    writeln!(
        stdout,
        "nats-server -c {0}/nats.conf; hosts and providers: --nats-creds {0}/member.creds; \
         weft ctl: --nats-creds {0}/operator.creds",
        out.display()
    )?;
    Ok(())
}
