//! The control plane on this machine: the endpoint `weft up` serves, which `weft link`,
//! `weft actors` and `weft update` talk to. The same [`ControlRequest`]s as on the lattice,
//! through the same handler, in frames: a 4-byte big-endian length, then the MessagePack body;
//! a request answered by one `Answer` frame around a [`Done`].
//!
//! It is authenticated by where it listens: by default a Unix socket of mode 0600 in a
//! directory of mode 0700 in the user's runtime directory ([`Endpoint::default_socket`]), so
//! only its owner (and root) can connect; a web page cannot reach it. A loopback TCP address
//! can be asked for instead, for a machine with one user; any other address is refused.
//! Bounds, each checked before memory is committed:
//!
//! | bound | value |
//! |---|---|
//! | one request | [`MAX_REQUEST_BYTES`] (a module of the largest size, and room) |
//! | one answer, read by the client | [`MAX_ANSWER_BYTES`] |
//! | time to send a whole request | [`REQUEST_WITHIN`] |
//! | connections served at once | [`MAX_CONNECTIONS`]; more wait to be accepted |

use super::handler::Control;
use super::wire::{ControlRequest, Done};
use crate::limits::DEFAULT_MAX_MODULE_BYTES;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use weft_lattice::Answer;
use weft_provider_sdk::{Failure, FailureKind};

/// Who the requests of this transport come from, in events: its socket authenticates them.
pub const LOCAL: &str = "local";
/// How much of a frame is allocated ahead of the bytes that fill it.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// The socket's file name in its directory.
const SOCKET_FILE: &str = "control.sock";
/// Largest request, bytes: a module of the default largest size, plus room for the rest.
pub const MAX_REQUEST_BYTES: usize = DEFAULT_MAX_MODULE_BYTES + (1 << 20);
/// Largest answer a client reads, bytes (an inventory of thousands of actors and links).
pub const MAX_ANSWER_BYTES: usize = 16 << 20;
/// How long a client has to send a whole request once it started, and how long an idle
/// connection is kept.
pub const REQUEST_WITHIN: Duration = Duration::from_secs(30);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// What can go wrong talking to a local control endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// Nothing listens there.
    #[error(
        "cannot reach a running `weft up` at {address}: {source}; is it running (its --control address)?"
    )]
    Connect {
        /// The address tried.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint cannot listen there.
    #[error("cannot listen for control requests on {address}: {reason}; pass --control ADDRESS")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        reason: String,
    },
    /// An address that is neither a socket path nor a loopback `HOST:PORT`.
    #[error(
        "{0:?} is not a control address: give a socket path, or a loopback HOST:PORT \
         (127.0.0.1:7070); the local endpoint never listens beyond this machine"
    )]
    Address(String),
    /// The connection failed mid-request, or took too long.
    #[error("the control connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over its bound.
    #[error("a control {what} of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Request or answer.
        what: &'static str,
        /// Its announced length.
        len: usize,
        /// The bound.
        limit: usize,
    },
    /// A frame that is not the message expected.
    #[error("malformed control {what}: {reason}")]
    Malformed {
        /// Request or answer.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The host refused the request; it is unchanged.
    #[error("{0}")]
    Refused(Failure),
}

async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin),
    limit: usize,
    what: &'static str,
) -> Result<Option<Vec<u8>>, LocalError> {
    let mut length = [0u8; 4];
    match stream.read_exact(&mut length).await {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error.into()),
    }
    let len = usize::try_from(u32::from_be_bytes(length)).unwrap_or(usize::MAX);
    if len > limit {
        return Err(LocalError::TooLarge { what, len, limit });
    }
    // Memory grows as bytes arrive, not as the prefix announces: a client that announces
    // the largest request and sends nothing holds little.
    let mut body = Vec::with_capacity(len.min(READ_CHUNK_BYTES));
    let announced = u64::try_from(len).unwrap_or(u64::MAX);
    let read = (&mut *stream)
        .take(announced)
        .read_to_end(&mut body)
        .await?;
    if read < len {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(body))
}

async fn write_frame(
    stream: &mut (impl AsyncWrite + Unpin),
    body: &[u8],
    what: &'static str,
) -> Result<(), LocalError> {
    let len = u32::try_from(body.len()).map_err(|_| LocalError::TooLarge {
        what,
        len: body.len(),
        limit: u32::MAX as usize,
    })?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    Ok(())
}

/// Where the local endpoint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket (mode 0600, in a directory of mode 0700 when Weft makes it).
    Socket(PathBuf),
    /// A TCP address on loopback.
    Loopback(SocketAddr),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Socket(path) => write!(f, "{}", path.display()),
            Endpoint::Loopback(address) => write!(f, "{address}"),
        }
    }
}

impl Endpoint {
    /// A loopback `HOST:PORT` (`127.0.0.1:7070`, `[::1]:7070`), or else a socket path (any
    /// text with a `/`).
    pub fn parse(text: &str) -> Result<Self, LocalError> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            if address.ip().is_loopback() {
                return Ok(Endpoint::Loopback(address));
            }
            return Err(LocalError::Address(text.to_string()));
        }
        if text.contains('/') {
            return Ok(Endpoint::Socket(PathBuf::from(text)));
        }
        Err(LocalError::Address(text.to_string()))
    }

    /// `$XDG_RUNTIME_DIR/weft/control.sock`, else `$WEFT_HOME/run/control.sock`, else
    /// `~/.weft/run/control.sock`.
    pub fn default_socket() -> Self {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = env("XDG_RUNTIME_DIR")
            .map(|run| run.join("weft"))
            .or_else(|| env("WEFT_HOME").map(|home| home.join("run")))
            .or_else(|| env("HOME").map(|home| home.join(".weft").join("run")))
            .unwrap_or_else(|| std::env::temp_dir().join("weft"));
        Endpoint::Socket(dir.join(SOCKET_FILE))
    }
}

/// A bound local endpoint. Dropping it removes its socket file.
#[derive(Debug)]
pub enum Listener {
    /// On a Unix socket at this path.
    Socket(UnixListener, PathBuf),
    /// On loopback TCP.
    Loopback(TcpListener),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Socket(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Listener {
    /// Listens at `endpoint`. A socket's directory is made with mode 0700 if missing; a stale
    /// socket file (nothing answers on it) is replaced; a live one is refused.
    pub async fn bind(endpoint: &Endpoint) -> Result<Self, LocalError> {
        let failed = |reason: String| LocalError::Bind {
            address: endpoint.to_string(),
            reason,
        };
        match endpoint {
            Endpoint::Loopback(address) => TcpListener::bind(address)
                .await
                .map(Listener::Loopback)
                .map_err(|e| failed(e.to_string())),
            Endpoint::Socket(path) => {
                prepare_socket_path(path).await.map_err(failed)?;
                let listener = UnixListener::bind(path).map_err(|e| failed(e.to_string()))?;
                set_mode(path, 0o600).map_err(|e| failed(e.to_string()))?;
                Ok(Listener::Socket(listener, path.clone()))
            }
        }
    }

    /// Where it listens (a loopback port asked as 0 is the one given).
    pub fn endpoint(&self) -> Endpoint {
        match self {
            Listener::Socket(_, path) => Endpoint::Socket(path.clone()),
            Listener::Loopback(listener) => match listener.local_addr() {
                Ok(address) => Endpoint::Loopback(address),
                Err(_) => Endpoint::Loopback(SocketAddr::from(([127, 0, 0, 1], 0))),
            },
        }
    }

    async fn accept(&self) -> std::io::Result<Connection> {
        match self {
            Listener::Socket(listener, _) => Ok(Connection::Socket(listener.accept().await?.0)),
            Listener::Loopback(listener) => Ok(Connection::Loopback(listener.accept().await?.0)),
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Makes the socket's directory (mode 0700) if missing, and clears a stale socket file.
async fn prepare_socket_path(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        set_mode(dir, 0o700).map_err(|e| e.to_string())?;
    }
    if let Ok(existing) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        // Only a socket is ever replaced: `--control` naming any other file is refused.
        if !existing.file_type().is_socket() {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(
                "another `weft up` serves there; stop it, or pass another --control".into(),
            );
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot replace a stale socket: {e}"))?;
    }
    Ok(())
}

/// One client's connection, on either kind of endpoint.
enum Connection {
    Socket(UnixStream),
    Loopback(TcpStream),
}

impl Connection {
    async fn open(endpoint: &Endpoint) -> Result<Self, LocalError> {
        let failed = |source| LocalError::Connect {
            address: endpoint.to_string(),
            source,
        };
        match endpoint {
            Endpoint::Socket(path) => UnixStream::connect(path)
                .await
                .map(Connection::Socket)
                .map_err(failed),
            Endpoint::Loopback(address) => TcpStream::connect(address)
                .await
                .map(Connection::Loopback)
                .map_err(failed),
        }
    }
}

/// Reads and writes pass to whichever stream it is.
macro_rules! either {
    ($self:ident, $stream:ident => $call:expr) => {
        match $self.get_mut() {
            Connection::Socket($stream) => $call,
            Connection::Loopback($stream) => $call,
        }
    };
}

impl AsyncRead for Connection {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        either!(self, stream => std::pin::Pin::new(stream).poll_read(cx, buf))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        either!(self, stream => std::pin::Pin::new(stream).poll_write(cx, buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        either!(self, stream => std::pin::Pin::new(stream).poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        either!(self, stream => std::pin::Pin::new(stream).poll_shutdown(cx))
    }
}

/// Serves `control` on `listener` until the task is aborted.
pub async fn serve(control: Arc<Control>, listener: Listener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "control accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let control = control.clone();
        tokio::spawn(async move {
            if let Err(error) = serve_connection(&control, stream).await {
                tracing::warn!(%error, "control connection ended");
            }
            drop(slot);
        });
    }
}

/// Answers the requests of one connection, one at a time, until it closes or idles.
async fn serve_connection(control: &Control, mut stream: Connection) -> Result<(), LocalError> {
    loop {
        let frame = tokio::time::timeout(
            REQUEST_WITHIN,
            read_frame(&mut stream, MAX_REQUEST_BYTES, "request"),
        )
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?;
        let answer = match frame {
            Ok(None) => return Ok(()),
            Ok(Some(body)) => match decode_frame::<ControlRequest>(&body) {
                Ok(request) => match control.handle(request, LOCAL).await {
                    Ok(done) => Answer::encoded("control", &done),
                    Err(error) => Answer::failed(FailureKind::BadRequest, error.to_string()),
                },
                Err(reason) => Answer::failed(
                    FailureKind::BadRequest,
                    format!("malformed control request: {reason}"),
                ),
            },
            // Too large: answered, then the connection is closed (the rest of the frame is
            // not read).
            Err(error @ LocalError::TooLarge { .. }) => {
                let answer = Answer::failed(FailureKind::BadRequest, error.to_string());
                write_answer(&mut stream, &answer).await?;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        write_answer(&mut stream, &answer).await?;
    }
}

async fn write_answer(stream: &mut Connection, answer: &Answer) -> Result<(), LocalError> {
    let body = weft_lattice::encode("control", answer).map_err(|e| LocalError::Malformed {
        what: "answer",
        reason: e.to_string(),
    })?;
    write_frame(stream, &body, "answer").await
}

fn decode_frame<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    weft_lattice::decode("control", bytes).map_err(|e| e.to_string())
}

/// Sends `request` to the local control endpoint at `endpoint` and returns what the host did.
pub async fn request(endpoint: &Endpoint, request: &ControlRequest) -> Result<Done, LocalError> {
    let mut stream = Connection::open(endpoint).await?;
    let body = weft_lattice::encode("control", request).map_err(|e| LocalError::Malformed {
        what: "request",
        reason: e.to_string(),
    })?;
    if body.len() > MAX_REQUEST_BYTES {
        return Err(LocalError::TooLarge {
            what: "request",
            len: body.len(),
            limit: MAX_REQUEST_BYTES,
        });
    }
    write_frame(&mut stream, &body, "request").await?;
    let answer = read_frame(&mut stream, MAX_ANSWER_BYTES, "answer")
        .await?
        .ok_or_else(|| LocalError::Malformed {
            what: "answer",
            reason: "the host closed the connection without answering".into(),
        })?;
    let answer: Answer = decode_frame(&answer).map_err(|reason| LocalError::Malformed {
        what: "answer",
        reason,
    })?;
    match answer {
        Answer::Ok(done) => decode_frame(&done).map_err(|reason| LocalError::Malformed {
            what: "answer",
            reason,
        }),
        Answer::Err(failure) => Err(LocalError::Refused(failure)),
    }
}
