//! What can end a call on the invocation path, by kind: [`InvokeError`] for the path, and
//! [`GuestError`] for what went wrong in or at the guest itself. Each variant names the failing part
//! and the way out; [`InvokeError::kind`] is what crosses a process boundary (a provider, the
//! lattice) and what the HTTP provider turns into a status.

use weft_provider_sdk::{Failure, FailureKind};

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// No actor with that id runs here (nor, on a lattice, anywhere it could be reached).
    #[error(
        "no actor {actor} runs on this host; start it first (`weft up` with it in the manifest)"
    )]
    NotFound {
        /// The actor asked for.
        actor: String,
    },
    /// An actor called another that runs nowhere it can reach: not here by that call alias or
    /// module key, nor (by module key) on the lattice.
    #[error(
        "actor {caller} called actor {target}, which does not run on this host{lattice}; start \
         it, or check the call alias or module key it is called by"
    )]
    NoActor {
        /// The calling actor.
        caller: String,
        /// The call alias or module key it called.
        target: String,
        /// Where else it was looked for (`" or on the lattice"`), if anywhere.
        lattice: &'static str,
    },
    /// The actor is being stopped or replaced and takes no new calls here.
    #[error("actor {actor} is stopping and takes no new calls")]
    Stopping {
        /// The actor.
        actor: String,
    },
    /// All the actor's instances are busy and no place freed up in time, or too many calls
    /// already wait for one.
    #[error(
        "actor {actor} is busy: {reason}; try again shortly, or scale it up (`weft ctl scale`)"
    )]
    Busy {
        /// The actor.
        actor: String,
        /// Which bound was hit.
        reason: String,
    },
    /// The call failed in or at the guest.
    #[error("actor {actor} ({name}), operation {operation}: {error}")]
    Guest {
        /// The actor's id.
        actor: String,
        /// Its name.
        name: String,
        /// The operation called.
        operation: String,
        /// What went wrong.
        #[source]
        error: GuestError,
    },
    /// The claims or the host's policy do not allow this call (the actor calling a contract,
    /// or a provider of a contract calling the actor).
    #[error("{reason}")]
    Denied {
        /// The actor.
        actor: String,
        /// The contract called.
        contract: String,
        /// The operation called.
        operation: String,
        /// Why, and what to do, in a sentence naming the actor and the contract.
        reason: String,
    },
    /// The actor has no link for the contract and link name it called.
    #[error(
        "actor {actor} has no link for {contract} on link '{link_name}'; add one to the app \
         manifest's links or run `weft link put {actor} {contract} PROVIDER_ID --link-name {link_name}`"
    )]
    NoLink {
        /// The calling actor.
        actor: String,
        /// The contract.
        contract: String,
        /// The link name.
        link_name: String,
    },
    /// The provider the link names failed the call, did not answer in time, or cannot be
    /// reached.
    #[error("provider {provider}: {failure}")]
    Provider {
        /// The provider's id.
        provider: String,
        /// What it (or the way to it) said.
        failure: Failure,
    },
    /// The provider the link names did not answer within the time the calling actor had.
    #[error("provider {provider} did not answer {operation} within {within_ms} ms")]
    ProviderTimeout {
        /// The provider's id.
        provider: String,
        /// The operation called.
        operation: String,
        /// The time it was given, milliseconds.
        within_ms: u128,
    },
    /// An actor on another host failed the call, or could not be reached; the kind is the
    /// one the lattice reported.
    #[error("over the lattice: {0}")]
    Remote(Failure),
    /// The host called with a malformed request (a log entry that does not decode, an
    /// operation the host's own contract lacks).
    #[error("{0}")]
    BadRequest(String),
}

impl InvokeError {
    /// The kind of failure, as it travels.
    pub fn kind(&self) -> FailureKind {
        match self {
            InvokeError::NotFound { .. } | InvokeError::NoActor { .. } => FailureKind::NotFound,
            InvokeError::Stopping { .. } => FailureKind::Unavailable,
            InvokeError::Busy { .. } => FailureKind::Busy,
            InvokeError::Guest { error, .. } => error.kind(),
            InvokeError::Denied { .. } => FailureKind::Denied,
            InvokeError::NoLink { .. } => FailureKind::NoLink,
            InvokeError::Provider { .. } | InvokeError::ProviderTimeout { .. } => {
                FailureKind::ProviderFailed
            }
            InvokeError::Remote(failure) => failure.kind,
            InvokeError::BadRequest(_) => FailureKind::BadRequest,
        }
    }

    /// The guest-level error, if the call reached the guest here.
    pub fn guest_error(&self) -> Option<&GuestError> {
        match self {
            InvokeError::Guest { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<InvokeError> for Failure {
    fn from(error: InvokeError) -> Self {
        match error {
            // Already a failure from the other side: pass it on as it came.
            InvokeError::Remote(failure) => failure,
            other => Failure::new(other.kind(), other.to_string()),
        }
    }
}

/// How a call into a guest went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    /// The guest ran past its deadline and was interrupted.
    #[error("the actor ran past its {deadline_ms} ms deadline and was stopped")]
    DeadlineExceeded {
        /// The deadline in force.
        deadline_ms: u64,
    },
    /// The guest tried to grow its memory past the cap.
    #[error(
        "the actor tried to grow its memory to {desired} bytes, over its limit of {limit} bytes"
    )]
    MemoryLimit {
        /// Size asked for.
        desired: usize,
        /// The cap.
        limit: usize,
    },
    /// The guest passed a pointer range outside its memory to a waPC import.
    #[error(
        "the actor passed an out-of-bounds {what} ({len} bytes at {ptr}, memory is {memory} bytes)"
    )]
    OutOfBounds {
        /// What the range was for.
        what: &'static str,
        /// Start address.
        ptr: usize,
        /// Length.
        len: usize,
        /// Memory size at the time.
        memory: usize,
    },
    /// The guest passed more bytes to a waPC import than the limit allows.
    #[error("the actor's {what} is {len} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// A name passed to `__host_call` is not UTF-8.
    #[error("the actor passed a {what} that is not UTF-8")]
    NotUtf8 {
        /// Which name.
        what: &'static str,
    },
    /// Any other trap: unreachable, stack overflow, division by zero, ...
    #[error("the actor trapped: {0}")]
    Trap(String),
    /// The module is not a waPC actor (no memory, no `__guest_call`, ...).
    #[error("the module is not a waPC actor: {0}")]
    NotAnActor(String),
    /// The guest completed the call and reported an error of its own.
    #[error("the actor returned an error: {0}")]
    Guest(String),
    /// The guest reported success but set no response.
    #[error("the actor reported success but set no response")]
    NoResponse,
    /// No instance could start: every one of the host's instance slots is in use.
    #[error(
        "no instance could start: {0}, each by another call: try again shortly, or give the \
         host more (`weft up --instance-slots N`, `EngineConfig::instance_slots`)"
    )]
    NoSlot(String),
}

impl GuestError {
    /// Whether the instance is unusable after this error (a trap). Only an error the guest
    /// reported itself leaves the instance fit for another call.
    pub fn poisons_instance(&self) -> bool {
        !matches!(self, GuestError::Guest(_) | GuestError::NoResponse)
    }

    /// The kind of failure, as it travels.
    pub fn kind(&self) -> FailureKind {
        match self {
            GuestError::DeadlineExceeded { .. } => FailureKind::Deadline,
            GuestError::Guest(_) | GuestError::NoResponse => FailureKind::ActorFailed,
            GuestError::NoSlot(_) => FailureKind::Busy,
            _ => FailureKind::Trapped,
        }
    }
}
