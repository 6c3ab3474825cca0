//! The bodies of lattice messages: MessagePack with field names, as actor payloads are.

use crate::LatticeError;
use serde::{Deserialize, Serialize};
use weft_contracts::invocation::{Failure, FailureKind};
use weft_contracts::link::LinkKey;

/// A call to an actor over the lattice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorInvocation {
    /// `Interface.Method`.
    pub operation: String,
    /// The request.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Who calls: a provider id or an actor id, for logs.
    pub origin: String,
    /// How long the caller waits for the answer, milliseconds (0: it did not say). The
    /// serving host runs the call within the lesser of this and its own deadline, so a call
    /// never runs after its caller has given up.
    #[serde(default)]
    pub deadline_ms: u64,
    /// The W3C trace context of the span it was sent in, when it is traced
    /// (`crate::trace`).
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// An actor's call to a provider over the lattice, naming the link it goes through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInvocation {
    /// The link it calls through, by name: the provider looks its values up among the links
    /// it was told of (a call never carries them, so none can point a provider at another
    /// backend).
    pub link: LinkKey,
    /// `Interface.Method`.
    pub operation: String,
    /// The request as the actor encoded it.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// How long the calling actor waits for the answer, milliseconds (0: it did not say).
    #[serde(default)]
    pub deadline_ms: u64,
    /// The W3C trace context of the span it was sent in, when it is traced
    /// (`crate::trace`).
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// An instance of a provider saying that it serves, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInstance {
    /// The provider's id.
    pub provider_id: String,
    /// The instance: the member id of the process serving it.
    pub instance: String,
    /// When it started serving, milliseconds since the Unix epoch: of two instances, the
    /// newer is the replacement.
    pub serving_since_ms: u64,
    /// Why another process cannot take over from it, if one cannot (what it holds only a
    /// replacement in its own process can take over).
    #[serde(default)]
    pub not_replaceable: Option<String>,
}

/// A host told to route provider `provider_id`'s calls to `instance` from now on. The host
/// answers once it does, and once every call it had sent to the previous instance is answered
/// (so that instance can leave without a call on its way to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSwitch {
    /// The provider's id.
    pub provider_id: String,
    /// The instance to route to (a member id).
    pub instance: String,
}

/// The answer to any lattice request: the reply's bytes, or what went wrong and of what kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// It worked.
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
    /// It failed; the text names what and why.
    Err(Failure),
}

impl Answer {
    /// A failure of `kind` saying `message`.
    pub fn failed(kind: FailureKind, message: impl Into<String>) -> Self {
        Answer::Err(Failure::new(kind, message))
    }

    /// `value` encoded as the answer, or the failure to encode it.
    pub fn encoded<T: Serialize>(subject: &str, value: &T) -> Self {
        encode(subject, value).map_err(Failure::from).into()
    }
}

impl From<Answer> for Result<Vec<u8>, Failure> {
    fn from(answer: Answer) -> Self {
        match answer {
            Answer::Ok(bytes) => Ok(bytes),
            Answer::Err(failure) => Err(failure),
        }
    }
}

impl From<Result<Vec<u8>, Failure>> for Answer {
    fn from(result: Result<Vec<u8>, Failure>) -> Self {
        match result {
            Ok(bytes) => Answer::Ok(bytes),
            Err(failure) => Answer::Err(failure),
        }
    }
}

/// MessagePack with field names, as everything on the lattice.
pub fn encode<T: Serialize>(subject: &str, value: &T) -> Result<Vec<u8>, LatticeError> {
    // Room for a provider call's or a small answer's names, ids and strings up front: grown
    // from nothing, the buffer was reallocated five or six times a message (4% of a host
    // calling a provider process, by `perf`).
    let mut body = Vec::with_capacity(256);
    rmp_serde::encode::write_named(&mut body, value).map_err(|e| LatticeError::Malformed {
        subject: subject.to_string(),
        reason: e.to_string(),
    })?;
    Ok(body)
}

/// The inverse of [`encode`].
pub fn decode<T: serde::de::DeserializeOwned>(
    subject: &str,
    bytes: &[u8],
) -> Result<T, LatticeError> {
    rmp_serde::from_slice(bytes).map_err(|e| LatticeError::Malformed {
        subject: subject.to_string(),
        reason: e.to_string(),
    })
}
