//! The flags that join a lattice, shared by `weft up`/`weft host` and `weft provider run`.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::PathBuf;
use weft_lattice::{Credentials, NatsOptions};

/// The environment variable a supervising host hands its provider processes the lattice
/// issuer's seed in (never argv, which every user of the machine can read).
pub const LATTICE_ISSUER_ENV: &str = "WEFT_LATTICE_ISSUER";

#[derive(Args, Debug, Clone, Default)]
pub struct LatticeArgs {
    /// Join this lattice (subjects `weft.LATTICE.…` on the NATS server of --nats)
    #[arg(long, env = "WEFT_LATTICE")]
    pub lattice: Option<String>,
    /// The lattice's NATS server(s)
    #[arg(long, env = "WEFT_NATS", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// NATS credentials file (.creds)
    #[arg(long, value_name = "FILE")]
    pub nats_creds: Option<PathBuf>,
    /// NATS nkey seed (SU…)
    #[arg(
        long,
        env = "WEFT_NATS_NKEY",
        value_name = "SEED",
        hide_env_values = true
    )]
    pub nats_nkey: Option<String>,
    /// NATS user (with --nats-password)
    #[arg(long, requires = "nats_password")]
    pub nats_user: Option<String>,
    /// NATS password (with --nats-user)
    #[arg(
        long,
        env = "WEFT_NATS_PASSWORD",
        requires = "nats_user",
        hide_env_values = true
    )]
    pub nats_password: Option<String>,
    /// CA certificate (PEM) to trust for the NATS server's TLS
    #[arg(long, value_name = "FILE")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Refuse to talk to NATS without TLS
    #[arg(long)]
    pub nats_require_tls: bool,
    /// The lattice issuer that signs this process's membership: a cluster seed (SC…) or a
    /// file holding one [default: the key store's, made on first use]
    #[arg(long, env = LATTICE_ISSUER_ENV, value_name = "SEED|FILE", hide_env_values = true)]
    pub lattice_issuer: Option<String>,
    /// Also accept members signed by this lattice issuer (its public key, C…); repeat
    #[arg(long, value_name = "KEY")]
    pub lattice_trust: Vec<String>,
}

impl LatticeArgs {
    /// Membership: `--lattice-issuer` (else the key store's issuer) signs this process's
    /// token; members of it and of each `--lattice-trust` are accepted.
    pub fn credentials(&self) -> Result<Credentials> {
        let issuer = match &self.lattice_issuer {
            Some(arg) => issuer_from_arg(arg)?,
            None => crate::keystore::KeyStore::from_env()?
                .lattice_issuer()
                .context("failed to read or make the lattice issuer key")?,
        };
        for key in &self.lattice_trust {
            let valid = nkeys::KeyPair::from_public_key(key)
                .is_ok_and(|k| matches!(k.key_pair_type(), nkeys::KeyPairType::Cluster));
            if !valid {
                bail!("--lattice-trust {key:?} is not a lattice issuer's public key (C…)");
            }
        }
        Ok(Credentials::new(issuer, self.lattice_trust.clone())?)
    }

    /// The connection options, naming the connection `name`.
    pub fn nats_options(&self, name: &str) -> NatsOptions {
        NatsOptions {
            url: self.nats.clone(),
            credentials_file: self.nats_creds.clone(),
            nkey_seed: self.nats_nkey.clone(),
            user_password: self.nats_user.clone().zip(self.nats_password.clone()),
            tls_ca_file: self.nats_tls_ca.clone(),
            require_tls: self.nats_require_tls,
            name: Some(name.to_string()),
        }
    }
}

/// A cluster seed given directly, or the path of a file holding one.
fn issuer_from_arg(arg: &str) -> Result<nkeys::KeyPair> {
    let seed = if arg.starts_with("SC") {
        arg.to_string()
    } else {
        crate::keystore::read_seed(std::path::Path::new(arg))
            .with_context(|| {
                format!(
                    "--lattice-issuer: cannot read {arg} (give a seed, SC…, or a file holding one)"
                )
            })?
            .trim()
            .to_string()
    };
    nkeys::KeyPair::from_seed(&seed)
        .ok()
        .filter(|key| matches!(key.key_pair_type(), nkeys::KeyPairType::Cluster))
        .context("--lattice-issuer is not a lattice issuer's seed (SC…; make one with `weft claims keygen --kind cluster`)")
}
