//! The invocation path: one layer per file, outermost first. Reading this folder top to bottom
//! is reading what happens to a call.
//!
//! | layer | file | what it decides | its error ([`InvokeError`] → HTTP) |
//! |---|---|---|---|
//! | deadline | [`deadline`] | when the call must be over: the caller's remaining time, else the actor's call deadline. It covers everything below, the wait for an instance included | `Deadline` → 504 |
//! | concurrency | [`concurrency`] | whether the call runs now, waits for one of the actor's instances (in a bounded queue, within its deadline), or is shed | `Busy` → 503 + `Retry-After` |
//! | *the guest runs* | `crate::instance` | | `Guest` → 504 (deadline) / 500 (trap, its own error) |
//! | generation | [`generation`] | for an actor of an older ABI generation (waSCC, wasmCloud 0.15–0.18): its call as the wasmbus call providers serve, and the answer back in its SDK's shape | `BadRequest` → 400 |
//! | claims | [`claims`] | may this actor call this contract (its signed claims) | `Denied` → 403 |
//! | policy | [`policy`] | may it, by the host's own rules ([`CallPolicy`], an embedder's) | `Denied` → 403 |
//! | route | [`route`] | who serves it: the host itself ([`builtins`]: logging, numbergen), the provider its link names, or the actor it names (its call alias or module key), in this process or on the lattice | `NoLink`, `Provider` → 500, `NoActor` → 404 |
//!
//! The first two run for every invocation of an actor, whoever makes it (a provider, the
//! lattice, `Host::invoke`); the last three (four for an older-generation actor) for every host call an actor makes, as a stack of
//! [`HostCalls`], each holding the next. A provider or actor on the lattice sits behind the
//! same traits as a local one (`crate::lattice`), so this path has one shape whether or not a
//! lattice is joined.

pub mod builtins;
pub mod claims;
pub mod concurrency;
pub mod deadline;
mod error;
pub mod generation;
pub mod policy;
pub mod provider_routes;
pub mod route;

pub use deadline::Deadline;
pub use error::{GuestError, InvokeError};
pub use policy::{CallPolicy, Policy};

use std::future::Future;
use std::pin::Pin;
use weft_provider_sdk::async_trait;

/// Whether a host call's namespace names an actor (its call alias or module key) rather than
/// a capability contract: contract ids always hold a `:` (`wasmcloud:keyvalue`,
/// `wascc:http_server`), module keys and call aliases never do (wasmCloud 0.x's rule).
pub fn names_an_actor(namespace: &str) -> bool {
    !namespace.is_empty() && !namespace.contains(':')
}

/// A guest's `__host_call`, on its way down the outbound layers.
#[derive(Debug, Clone, Copy)]
pub struct HostCall<'a> {
    /// The calling actor's id.
    pub actor: &'a str,
    /// The link name (waPC's "binding"); the claims layer turns an empty one into
    /// `default`.
    pub link_name: &'a str,
    /// The contract id (waPC's "namespace"), or the call alias or module key of the actor
    /// called ([`names_an_actor`]).
    pub contract: &'a str,
    /// `Interface.Method`.
    pub operation: &'a str,
    /// The request, as the actor encoded it.
    pub payload: &'a [u8],
    /// When the calling actor's call must be over: a provider must answer well within it, so
    /// the actor still has time to handle the answer (or the error).
    pub deadline: Deadline,
    /// The calling instance's log meter: a line written through the logging capability
    /// counts against the same budget as its console lines.
    pub log: &'a crate::guest_log::CallLog,
}

/// A host call's answer to come: what [`HostCalls::host_call`] returns (written out, where a
/// layer hands a call on without waiting, so that it adds no future of its own).
pub type HostCallFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, InvokeError>> + Send + 'a>>;

/// A host call refused before it went anywhere, as a [`HostCallFuture`].
pub fn refused<'a>(error: InvokeError) -> HostCallFuture<'a> {
    Box::pin(std::future::ready(Err(error)))
}

/// Answers a guest's host calls: every outbound layer is one, holding the next.
#[async_trait]
pub trait HostCalls: Send + Sync {
    /// Serves one host call. `Err` reaches the guest as its host error (its text), not a
    /// trap; the guest waits, suspended, while this runs.
    async fn host_call(&self, call: HostCall<'_>) -> Result<Vec<u8>, InvokeError>;

    /// A guest's `__console_log` line: the host's log, by default.
    fn console_log(&self, actor: &str, line: &str) {
        tracing::info!(actor, "{line}");
    }
}

/// Something that runs an actor's calls: its instances in this process
/// (`crate::actor::ActorPool`), or, on a lattice, the hosts that run it elsewhere.
#[async_trait]
pub trait InvokeActor: Send + Sync {
    /// Calls `operation` with `payload`, all of it within `deadline`.
    async fn invoke(
        &self,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, InvokeError>;
}
