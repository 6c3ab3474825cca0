//! Connections kept for reuse: hyper-util's pooling client, one for each trust set (the
//! system's roots alone, or with a link's `tls_roots_pem`), so that a connection verified
//! against one link's CAs never carries another link's request. Only the hosts a link lists
//! keep connections: under `allowed_hosts = "*"` an actor could name a new host with every
//! call, and each would leave an idle connection (a file descriptor of the process) behind,
//! so there every connection closes with its response. A connection is made by
//! [`Connector`]: TCP, and TLS for `https`.

use http_body_util::Full;
use hyper::Uri;
use hyper::body::Bytes;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// How long an idle connection is kept.
pub const IDLE_FOR: Duration = Duration::from_secs(30);
/// Most idle connections kept to one host.
pub const IDLE_PER_HOST: usize = 8;
/// Most links' trust sets whose clients are kept, of each kind; past it the cache starts
/// again (a host has a few distinct private CAs, not thousands).
const MAX_KEPT: usize = 64;

/// A pooling client.
pub type Pooled = Client<Connector, Full<Bytes>>;

/// The clients: those that keep connections and those that do not, each by trust set.
#[derive(Debug, Default)]
pub struct Clients {
    keeping: TrustSets,
    not_keeping: TrustSets,
}

impl Clients {
    /// The client for a link that added `link_roots` (PEM) to the system's roots, keeping
    /// its connections if `keep` (the link lists its hosts).
    pub fn get(&self, link_roots: Option<&str>, keep: bool) -> Result<Pooled, String> {
        let sets = if keep {
            &self.keeping
        } else {
            &self.not_keeping
        };
        sets.get(link_roots, keep)
    }
}

/// Clients of one kind (keeping connections or not), by trust set. Looked up on every call:
/// the system's roots without a lock, a link's PEM by reference.
#[derive(Debug, Default)]
struct TrustSets {
    system: OnceLock<Result<Pooled, String>>,
    with_link_roots: Mutex<HashMap<String, Pooled>>,
}

impl TrustSets {
    fn get(&self, link_roots: Option<&str>, keep: bool) -> Result<Pooled, String> {
        let Some(pem) = link_roots else {
            return self.system.get_or_init(|| client(None, keep)).clone();
        };
        let mut kept = self
            .with_link_roots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = kept.get(pem) {
            return Ok(client.clone());
        }
        let client = client(Some(pem), keep)?;
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(pem.to_string(), client.clone());
        Ok(client)
    }
}

fn client(link_roots: Option<&str>, keep: bool) -> Result<Pooled, String> {
    let connector = Connector {
        tls: Arc::new(crate::tls::config(link_roots)?),
    };
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(IDLE_FOR)
        .pool_max_idle_per_host(if keep { IDLE_PER_HOST } else { 0 })
        .build(connector))
}

/// Makes a connection: TCP to the URI's host and port, then TLS for `https`, the server's
/// certificate checked against `tls`'s roots.
#[derive(Clone)]
pub struct Connector {
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

/// Why a connection could not be made, in words that say what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(connect(tls, uri))
    }
}

async fn connect(tls: Arc<rustls::ClientConfig>, uri: Uri) -> Result<Stream, ConnectError> {
    let host = uri.host().unwrap_or_default();
    let secure = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((bare, port))
        .await
        .map_err(|e| ConnectError(format!("could not connect to {uri}: {e}")))?;
    // Requests are small and answered one at a time: send each at once.
    let _ = tcp.set_nodelay(true);
    if !secure {
        return Ok(Stream::Plain(TokioIo::new(tcp)));
    }
    let name = crate::tls::server_name(host).map_err(ConnectError)?;
    let tls = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            ConnectError(format!(
                "TLS with {uri} failed: {e}; if its certificate is from a private CA, give \
                 the CA's certificate in the link value tls_roots_pem"
            ))
        })?;
    Ok(Stream::Tls(Box::new(TokioIo::new(tls))))
}

/// A connection made by [`Connector`].
pub enum Stream {
    Plain(TokioIo<tokio::net::TcpStream>),
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(io) => Pin::new(io).poll_read(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(io) => Pin::new(io).poll_write(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(io) => Pin::new(io).poll_flush(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(io) => Pin::new(io).poll_shutdown(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
    }
}
