//! # weft-actor — typed helpers for Weft actors
//!
//! A thin layer over waPC (its guest side is the SDK's own, [`wapc`]): register an HTTP handler with [`http::serve`] (owned
//! contract types) or [`http::serve_borrowed`] (the request read in place), call the
//! key-value store with [`keyvalue`], publish, request and receive messages with
//! [`messaging`], log with [`logging`], call other actors with [`actor`], make HTTP requests with [`httpclient`], store blobs with [`blobstore`], ask the host for GUIDs
//! and random numbers with [`numbergen`]. Payloads are the
//! wasmCloud 0.x contract types from `weft-contracts`, so an actor written with this crate
//! talks to any provider of those contracts.
//!
//! **What it is not:** an async runtime or a second RPC layer; every call is one waPC host call.
#![deny(missing_docs)]

mod same;
pub mod wapc;
pub use weft_contracts as contracts;

use weft_contracts::CodecError;

/// What an actor's helpers return.
pub type Result<T> = std::result::Result<T, Error>;

/// An error inside an actor.
#[derive(Debug)]
pub enum Error {
    /// A payload did not encode or decode.
    Codec(CodecError),
    /// The host refused or failed the call (no link, no capability, provider error).
    Host(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Codec(e) => write!(f, "{e}"),
            Error::Host(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The version of the wasmbus-rpc ABI this crate speaks (operations `Interface.Method`,
/// wasmbus payloads). Exported so that a host tells which generation of the lineage's ABI
/// the actor was built for, as wasmbus-rpc's own SDK does.
// The host looks the export up by this exact name, so the symbol must not be mangled.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn __wasmbus_rpc_version() -> u32 {
    WASMBUS_RPC_VERSION
}

/// The wasmbus-rpc ABI version [`__wasmbus_rpc_version`] reports.
pub const WASMBUS_RPC_VERSION: u32 = 1;

impl From<CodecError> for Error {
    fn from(e: CodecError) -> Self {
        Error::Codec(e)
    }
}

/// Calls `operation` of `contract` through the link named `link`, with typed payloads.
pub fn call<Req, Resp>(link: &str, contract: &str, operation: &str, request: &Req) -> Result<Resp>
where
    Req: serde::Serialize + ?Sized,
    Resp: serde::de::DeserializeOwned,
{
    let payload = contracts::encode(request)?;
    let answer = crate::wapc::host_call(link, contract, operation, &payload)
        .map_err(|e| Error::Host(e.to_string()))?;
    Ok(contracts::decode(&answer)?)
}

/// Calls to other actors (wasmCloud 0.x's actor-to-actor calls).
pub mod actor {
    /// Calls `operation` of the actor `target` (its call alias or its module key) with
    /// `payload`, and returns its answer; the host runs it in process when it is local, over
    /// the lattice when not, within this call's deadline.
    pub fn call(target: &str, operation: &str, payload: &[u8]) -> super::Result<Vec<u8>> {
        crate::wapc::host_call("default", target, operation, payload)
            .map_err(|e| super::Error::Host(e.to_string()))
    }
}

/// `wasmcloud:keyvalue` on the `default` link.
pub mod keyvalue {
    use super::{Result, call};
    use weft_contracts::keyvalue::*;

    const LINK: &str = "default";

    /// The value of `key`, if it exists.
    pub fn get(key: &str) -> Result<Option<String>> {
        let answer: GetResponse = call(LINK, CONTRACT_ID, GET, key)?;
        Ok(answer.exists.then_some(answer.value))
    }

    /// Sets `key` to `value` (no expiry).
    pub fn set(key: &str, value: &str) -> Result<()> {
        let request = SetRequest {
            key: key.into(),
            value: value.into(),
            expires: 0,
        };
        let payload = weft_contracts::encode(&request)?;
        crate::wapc::host_call(LINK, CONTRACT_ID, SET, &payload)
            .map_err(|e| super::Error::Host(e.to_string()))?;
        Ok(())
    }

    /// Adds `by` to the number at `key` (0 when absent) and returns the new value.
    pub fn increment(key: &str, by: i32) -> Result<i32> {
        call(
            LINK,
            CONTRACT_ID,
            INCREMENT,
            &IncrementRequest {
                key: key.into(),
                value: by,
            },
        )
    }

    /// Deletes `key`; whether it existed.
    pub fn del(key: &str) -> Result<bool> {
        call(LINK, CONTRACT_ID, DEL, key)
    }
}

/// `wasmcloud:builtin:logging`, served by the host.
pub mod logging {
    use weft_contracts::logging::*;

    /// Logs `text` at `level` (`debug`, `info`, `warn`, `error`); a failure to log is ignored.
    pub fn log(level: &str, text: &str) {
        let entry = LogEntry {
            level: level.into(),
            text: text.into(),
        };
        if let Ok(payload) = weft_contracts::encode(&entry) {
            let _ = crate::wapc::host_call("default", CONTRACT_ID, WRITE_LOG, &payload);
        }
    }
}

/// `wasmcloud:httpclient`: HTTP requests out, through the provider the actor's link names
/// (which also says which hosts it may reach).
pub mod httpclient {
    use weft_contracts::httpclient::*;

    /// Sends `method` `url` with `body`, no headers; the whole answer, whatever its status.
    pub fn request(method: &str, url: &str, body: &[u8]) -> super::Result<HttpResponse> {
        let request = HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: Default::default(),
            body: body.to_vec(),
        };
        super::call("default", CONTRACT_ID, REQUEST, &request)
    }
}

/// `wasmcloud:blobstore`: objects in containers, whole, through the provider the actor's link
/// names.
pub mod blobstore {
    use weft_contracts::blobstore::*;

    /// Makes container `name` (nothing happens if it exists).
    pub fn create_container(name: &str) -> super::Result<()> {
        super::call("default", CONTRACT_ID, CREATE_CONTAINER, name)
    }

    /// Stores `bytes` as `object` in `container`, replacing what was there.
    pub fn put(container: &str, object: &str, bytes: &[u8]) -> super::Result<()> {
        let request = PutObjectRequest {
            chunk: Chunk {
                object_id: object.into(),
                container_id: container.into(),
                bytes: bytes.to_vec(),
                offset: 0,
                is_last: true,
            },
            ..PutObjectRequest::default()
        };
        super::call::<_, PutObjectResponse>("default", CONTRACT_ID, PUT_OBJECT, &request)
            .map(|_| ())
    }

    /// The bytes of `object` in `container`; `None` if there is no such object.
    pub fn get(container: &str, object: &str) -> super::Result<Option<Vec<u8>>> {
        let request = GetObjectRequest {
            container_id: container.into(),
            object_id: object.into(),
            ..GetObjectRequest::default()
        };
        let answer: GetObjectResponse = super::call("default", CONTRACT_ID, GET_OBJECT, &request)?;
        Ok(answer
            .success
            .then(|| answer.initial_chunk.map(|c| c.bytes).unwrap_or_default()))
    }
}

/// `wasmcloud:builtin:numbergen`: GUIDs and random numbers from the host (an actor has no
/// randomness of its own). The actor must be signed for the contract; no link is needed.
pub mod numbergen {
    use weft_contracts::numbergen::*;

    /// A v4 GUID.
    pub fn generate_guid() -> super::Result<String> {
        super::call("default", CONTRACT_ID, GENERATE_GUID, &())
    }

    /// A random number from `min` to `max`, both included.
    pub fn random_in_range(min: u32, max: u32) -> super::Result<u32> {
        super::call(
            "default",
            CONTRACT_ID,
            RANDOM_IN_RANGE,
            &RangeLimit { min, max },
        )
    }

    /// A random `u32`.
    pub fn random_32() -> super::Result<u32> {
        super::call("default", CONTRACT_ID, RANDOM_32, &())
    }
}

/// `Actor.HealthRequest`: the host asks before switching to a new version of an actor.
pub mod health {
    use weft_contracts::actor::{HEALTH_REQUEST, HealthCheckResponse};

    /// Answers health checks with `healthy: true` (the actor is healthy once it runs).
    pub fn serve() {
        crate::wapc::register_function(HEALTH_REQUEST, healthy);
    }

    fn healthy(_: &[u8]) -> crate::wapc::CallResult {
        Ok(weft_contracts::encode(&HealthCheckResponse {
            healthy: true,
            message: None,
        })?)
    }
}

/// `wasmcloud:messaging` on the `default` link: publish, request, and receive subscribed
/// messages.
pub mod messaging {
    use super::{Result, call};
    use weft_contracts::messaging::*;

    /// Publishes `body` on `subject`, naming `reply_to` for replies.
    pub fn publish(subject: &str, reply_to: Option<&str>, body: &[u8]) -> Result<()> {
        let message = PubMessage {
            subject: subject.to_string(),
            reply_to: reply_to.map(str::to_string),
            body: body.to_vec(),
        };
        let payload = weft_contracts::encode(&message)?;
        crate::wapc::host_call("default", CONTRACT_ID, PUBLISH, &payload)
            .map(|_| ())
            .map_err(|e| super::Error::Host(e.to_string()))
    }

    /// Sends `body` on `subject` and waits up to `timeout_ms` for one reply.
    pub fn request(subject: &str, body: &[u8], timeout_ms: u32) -> Result<ReplyMessage> {
        let request = RequestMessage {
            subject: subject.to_string(),
            body: body.to_vec(),
            timeout_ms,
        };
        call("default", CONTRACT_ID, REQUEST, &request)
    }

    /// An actor's handler of subscribed messages.
    pub type Handler = fn(&SubMessage) -> Result<()>;

    /// Registers `handler` for `MessageSubscriber.HandleMessage`, and the health check. Call
    /// it from `wapc_init`.
    pub fn subscribe(handler: Handler) {
        HANDLER.with(|h| h.set(Some(handler)));
        crate::wapc::register_function(HANDLE_MESSAGE, dispatch);
        super::health::serve();
    }

    thread_local! {
        static HANDLER: std::cell::Cell<Option<Handler>> =
            const { std::cell::Cell::new(None) };
    }

    fn dispatch(payload: &[u8]) -> crate::wapc::CallResult {
        let message: SubMessage = weft_contracts::decode(payload)?;
        let handler = HANDLER
            .with(|h| h.get())
            .ok_or("no message handler registered")?;
        handler(&message)?;
        Ok(Vec::new())
    }
}

pub mod http;
