//! Joining a lattice: one NATS connection with the operator's auth and TLS, reconnecting by
//! itself quickly (every 100 ms, rising to 1 s, forever), so a restarted NATS server is back in
//! use within about a second of accepting connections.

use std::path::PathBuf;
use std::time::Duration;

/// How a process connects to a lattice's NATS.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// `nats://host:port` (or several, comma-separated).
    pub url: String,
    /// A `.creds` file (JWT and nkey seed).
    pub credentials_file: Option<PathBuf>,
    /// An nkey seed (`SU…`).
    pub nkey_seed: Option<String>,
    /// User and password.
    pub user_password: Option<(String, String)>,
    /// A CA certificate (PEM) to trust for TLS.
    pub tls_ca_file: Option<PathBuf>,
    /// Refuse to connect without TLS.
    pub require_tls: bool,
    /// How this connection names itself to the server (shows in its monitoring).
    pub name: Option<String>,
}

/// Errors joining or using the lattice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LatticeError {
    /// The NATS connection could not be made.
    #[error(
        "cannot connect to NATS at {url}: {reason}; is nats-server running there (and are the credentials right)?"
    )]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// Subscribing failed.
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// A message could not be encoded or decoded.
    #[error("malformed lattice message on {subject}: {reason}")]
    Malformed {
        /// The subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// This process cannot be a member of the lattice (its issuer key is unusable).
    #[error("cannot join the lattice: {0}")]
    Membership(String),
}

impl From<LatticeError> for weft_contracts::invocation::Failure {
    fn from(error: LatticeError) -> Self {
        use weft_contracts::invocation::FailureKind;
        let kind = match error {
            LatticeError::Malformed { .. } => FailureKind::BadRequest,
            LatticeError::Connect { .. }
            | LatticeError::Subscribe { .. }
            | LatticeError::Membership(_) => FailureKind::Unavailable,
        };
        Self::new(kind, error.to_string())
    }
}

/// Messages one subscription holds unread, at most (async-nats's default is 65,536: with
/// messages of up to the server's `max_payload`, gigabytes). Past it the client drops them
/// for that subscription, as the server drops a slow consumer's: under a flood a message is
/// lost rather than the process's memory.
const SUBSCRIPTION_CAPACITY: usize = 1024;

/// The delay before reconnect attempt `attempts`: 100 ms, rising by 100 ms to 1 s.
fn reconnect_delay(attempts: usize) -> Duration {
    Duration::from_millis(100 * attempts.clamp(1, 10) as u64)
}

/// Connects with `options`: auth and TLS passed through to async-nats, quick reconnects.
pub async fn connect(options: &NatsOptions) -> Result<async_nats::Client, LatticeError> {
    let failed = |reason: String| LatticeError::Connect {
        url: options.url.clone(),
        reason,
    };
    let mut connect = async_nats::ConnectOptions::new()
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .reconnect_delay_callback(reconnect_delay)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .require_tls(options.require_tls);
    if let Some(path) = &options.credentials_file {
        connect = connect
            .credentials_file(path)
            .await
            .map_err(|e| failed(format!("credentials file {}: {e}", path.display())))?;
    }
    if let Some(seed) = &options.nkey_seed {
        connect = connect.nkey(seed.clone());
    }
    if let Some((user, password)) = &options.user_password {
        connect = connect.user_and_password(user.clone(), password.clone());
    }
    if let Some(ca) = &options.tls_ca_file {
        connect = connect.add_root_certificates(ca.clone());
    }
    if let Some(name) = &options.name {
        connect = connect.name(name);
    }
    // Several servers of one cluster, comma-separated: the client fails over between them
    // (and learns the cluster's others from the server, too).
    let servers = options
        .url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| failed(format!("{u:?} is not a NATS URL: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    connect
        .connect(servers.as_slice())
        .await
        .map_err(|e| failed(e.to_string()))
}
