//! # weft-provider-sdk — what a capability provider is
//!
//! A capability provider serves one capability contract (`wasmcloud:keyvalue`,
//! `wasmcloud:httpserver`, ...) for any number of actors, each bound to it by a
//! [`LinkDefinition`]. Its principal type is the [`Provider`] trait: start, link put, link
//! delete, handle an actor's call, health, shutdown, each with a sensible default except
//! handling calls. A provider reaches actors only through the narrow [`ActorInvoker`] the host
//! hands it at start, never through the host's internals.
//!
//! **What it is not:** a host, nor the lattice's wire. In-process, the host holds the provider
//! and calls the trait directly; out of process, [`runner::run`] serves the same provider over
//! a NATS lattice (subjects and wire in the `weft-lattice` crate).
//!
//! ```
//! use weft_provider_sdk::{Provider, ProviderCall, ProviderError, async_trait};
//!
//! struct Clock;
//!
//! #[async_trait]
//! impl Provider for Clock {
//!     fn contract_id(&self) -> &str {
//!         "acme:clock"
//!     }
//!     async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
//!         match call.operation.as_str() {
//!             "Clock.Zero" => Ok(vec![0]),
//!             _ => Err(ProviderError::unknown_operation(self.contract_id(), &call.operation)),
//!         }
//!     }
//! }
//! ```
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

pub use async_trait::async_trait;
pub use weft_contracts::invocation::{Failure, FailureKind};
pub use weft_contracts::link::{DEFAULT_LINK_NAME, LinkDefinition};
/// Trace context across processes (W3C `traceparent`), for a provider that takes requests
/// from outside (an HTTP server) or calls out.
pub use weft_lattice::trace;

pub mod connections;
pub mod runner;

/// An actor's call to a provider.
#[derive(Debug, Clone)]
pub struct ProviderCall {
    /// The calling actor.
    pub actor_id: String,
    /// The link it called through (shared with the host's link table: no copy per call).
    pub link: Arc<LinkDefinition>,
    /// `Interface.Method`.
    pub operation: String,
    /// The request as the actor encoded it.
    pub payload: Vec<u8>,
    /// How long the calling actor waits for the answer: a provider that cannot answer within
    /// it should fail the call (naming what it waited on) rather than answer too late.
    pub time_left: Duration,
}

/// What a provider can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The operation is not part of the contract.
    #[error("{contract} has no operation {operation}")]
    UnknownOperation {
        /// The contract.
        contract: String,
        /// The operation asked for.
        operation: String,
    },
    /// The request could not be decoded or makes no sense.
    #[error("bad request to {operation}: {reason}")]
    BadRequest {
        /// The operation.
        operation: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The link's settings are unusable.
    #[error("link of actor {actor_id} is unusable: {reason}")]
    Link {
        /// The actor whose link it is.
        actor_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The backing service failed (Redis down, port taken, ...).
    #[error("{0}")]
    Backend(String),
}

/// Whatever a provider reports, the call it failed is a provider failure: a request it could
/// not read came from the actor, not from whoever called the actor.
/// What an actor (or an HTTP client behind it) is told: the error, with any URL password in
/// it masked (`weft_contracts::secret`), since a backend's error often quotes its URL.
impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Failure::new(
            FailureKind::ProviderFailed,
            weft_contracts::secret::scrub(&error.to_string()),
        )
    }
}

impl ProviderError {
    /// An operation the contract does not have.
    pub fn unknown_operation(contract: &str, operation: &str) -> Self {
        ProviderError::UnknownOperation {
            contract: contract.to_string(),
            operation: operation.to_string(),
        }
    }

    /// A request that could not be decoded.
    pub fn bad_request(operation: &str, reason: impl std::fmt::Display) -> Self {
        ProviderError::BadRequest {
            operation: operation.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A provider's view of its own health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Whether it can serve.
    pub healthy: bool,
    /// Why not, when it cannot.
    pub message: Option<String>,
}

impl Health {
    /// Healthy.
    pub fn ok() -> Self {
        Health {
            healthy: true,
            message: None,
        }
    }

    /// Healthy when nothing is wrong, else unhealthy with every problem in its message.
    pub fn from_problems(problems: Vec<String>) -> Self {
        if problems.is_empty() {
            return Health::ok();
        }
        Health {
            healthy: false,
            message: Some(problems.join("; ")),
        }
    }
}

/// What a provider may ask of the host: call an actor. Nothing else of the host is reachable.
#[async_trait]
pub trait ActorInvoker: Send + Sync {
    /// Calls `operation` on the actor `actor_id` with `payload`. A failure's
    /// [`FailureKind`] says how to answer the outside world (busy: try again; denied; ...).
    async fn invoke_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, Failure>;
}

/// State a provider keeps in its own memory (an in-memory store), as its replacement in the
/// same process takes it over: shared, not copied, so a call the old instance is still
/// finishing and the new instance's first calls see the same data (DESIGN, Provider
/// replacement).
pub type HeldState = Arc<dyn std::any::Any + Send + Sync>;

/// A capability provider. Every method but [`Provider::handle_call`] and
/// [`Provider::contract_id`] has a default that does nothing and succeeds, except
/// [`Provider::take_over`], which refuses.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The contract it serves.
    fn contract_id(&self) -> &str;

    /// Called once before any link; `host` is how it reaches actors.
    async fn start(&self, host: Arc<dyn ActorInvoker>) -> Result<(), ProviderError> {
        let _ = host;
        Ok(())
    }

    /// A link to this provider was put: set up per-actor resources (a listener, a client).
    /// A put for a link it already has (same actor and link name) replaces that one; the same
    /// link put again (each host of a lattice puts its app's links) should change nothing.
    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let _ = link;
        Ok(())
    }

    /// A link was deleted: release what [`Provider::put_link`] set up.
    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let _ = link;
        Ok(())
    }

    /// An actor's call through a link to this provider.
    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError>;

    /// Whether it can serve.
    async fn health(&self) -> Health {
        Health::ok()
    }

    /// Release everything; no call follows.
    async fn shutdown(&self) {}

    /// The state it keeps in memory, if any, for a replacement in the same process to take
    /// over: data (an in-memory store) or live resources (subscriptions, which a replacement
    /// opening its own would deliver twice). `None` (the default) for a provider that has
    /// nothing to hand over.
    fn held_state(&self) -> Option<HeldState> {
        None
    }

    /// Whether what it holds in memory is data that a restart of its process loses (an
    /// in-memory store), rather than what a restart rebuilds (subscriptions, connections).
    fn keeps_data(&self) -> bool {
        false
    }

    /// Whether a new process of this provider can take over from a running process of it with
    /// nothing lost or done twice; `Err` says why not (what it holds only a replacement in the
    /// same process can take over).
    fn replaceable_by_process(&self) -> Result<(), String> {
        Ok(())
    }

    /// Takes over `state`, its predecessor's [`Provider::held_state`], before its first link
    /// or call. A provider that cannot (the default: another kind, another layout) refuses,
    /// and then the replacement is refused and the running provider keeps serving.
    async fn take_over(&self, state: HeldState) -> Result<(), ProviderError> {
        let _ = state;
        Err(ProviderError::Backend(format!(
            "a {} provider of this kind cannot take over another's in-memory state",
            self.contract_id()
        )))
    }
}
