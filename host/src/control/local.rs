//! The control plane on this machine: the endpoint `weft up` serves on loopback, which
//! `weft link`, `weft actors` and `weft update` talk to. The same [`ControlRequest`]s as on
//! the lattice, through the same handler, in frames: a 4-byte big-endian length, then the
//! MessagePack body; a request answered by one `Answer` frame around a [`Done`].
//!
//! It binds to loopback and has no authentication yet: anyone who can run programs on this
//! machine can change what the host runs (the lattice control interface is the one for shared
//! machines). Bounds, each checked before memory is committed:
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
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weft_lattice::Answer;
use weft_provider_sdk::{Failure, FailureKind};

/// Default address of the local control endpoint.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:7070";
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
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
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

/// Serves `control` on `listener` until the task is aborted.
pub async fn serve(control: Arc<Control>, listener: TcpListener) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
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
async fn serve_connection(control: &Control, mut stream: TcpStream) -> Result<(), LocalError> {
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
                Ok(request) => match control.handle(request).await {
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

async fn write_answer(stream: &mut TcpStream, answer: &Answer) -> Result<(), LocalError> {
    let body = weft_lattice::encode("control", answer).map_err(|e| LocalError::Malformed {
        what: "answer",
        reason: e.to_string(),
    })?;
    write_frame(stream, &body, "answer").await
}

fn decode_frame<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    weft_lattice::decode("control", bytes).map_err(|e| e.to_string())
}

/// Sends `request` to the local control endpoint at `address` and returns what the host did.
pub async fn request(address: &str, request: &ControlRequest) -> Result<Done, LocalError> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|source| LocalError::Connect {
            address: address.to_string(),
            source,
        })?;
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
