//! The flags that join a lattice, shared by `weft up`/`weft host` and `weft provider run`.

use clap::Args;
use std::path::PathBuf;
use weft_lattice::NatsOptions;

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
}

impl LatticeArgs {
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
