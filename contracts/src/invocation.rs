//! Why a call failed, as it travels: between the host and its providers, and over the
//! lattice. The host's own error type says much more (which actor, which limit, which
//! link); what crosses a process boundary or reaches a provider is its [`FailureKind`] and
//! its text, so that whoever answers the outside world picks the right answer — the HTTP
//! provider maps each kind to a status ([`FailureKind::http_status`]) instead of answering
//! 500 for everything.
//!
//! A failure's text names the failing part and the way out. It never carries a link's
//! values: they may hold secrets.

use serde::{Deserialize, Serialize};

/// What kind of failure ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The actor is not signed for the contract, or a policy refused the call.
    Denied,
    /// The actor has no link for the contract (and link name) it called.
    NoLink,
    /// The actor is saturated: every instance is busy and the wait queue is full, or a place
    /// did not free up within the call's deadline. Try again shortly.
    Busy,
    /// The call ran past its deadline.
    Deadline,
    /// The actor trapped, broke a limit, or is not a working waPC actor; its instance is gone.
    Trapped,
    /// The actor ran to completion and reported an error of its own.
    ActorFailed,
    /// The provider that served the call reported an error or did not answer in time.
    ProviderFailed,
    /// No such actor (or provider) runs where the call was sent.
    NotFound,
    /// What would serve the call cannot be reached now (the lattice is down, nothing
    /// answers, the actor is stopping). Try again shortly.
    Unavailable,
    /// The request itself is malformed.
    BadRequest,
}

impl FailureKind {
    /// The HTTP status that answers a request failing this way: 403, 404, 503 (send
    /// `Retry-After`), 504, 400, else 500.
    pub fn http_status(self) -> u16 {
        match self {
            FailureKind::Denied => 403,
            FailureKind::NotFound => 404,
            FailureKind::Busy | FailureKind::Unavailable => 503,
            FailureKind::Deadline => 504,
            FailureKind::BadRequest => 400,
            FailureKind::NoLink
            | FailureKind::Trapped
            | FailureKind::ActorFailed
            | FailureKind::ProviderFailed => 500,
        }
    }

    /// Whether the same call may well succeed if tried again shortly.
    pub fn is_transient(self) -> bool {
        matches!(self, FailureKind::Busy | FailureKind::Unavailable)
    }
}

/// A failed call: its kind and a text naming what failed and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What failed and the way out, for a person.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` saying `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_travel_as_snake_case_and_map_to_http_statuses() {
        let failure = Failure::new(FailureKind::NoLink, "no link");
        let bytes = crate::encode(&failure).unwrap_or_default();
        assert_eq!(crate::decode::<Failure>(&bytes).ok(), Some(failure));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.contains("no_link"), "{text}");
        assert_eq!(FailureKind::Busy.http_status(), 503);
        assert_eq!(FailureKind::Deadline.http_status(), 504);
        assert_eq!(FailureKind::Denied.http_status(), 403);
        assert_eq!(FailureKind::NotFound.http_status(), 404);
        assert_eq!(FailureKind::Trapped.http_status(), 500);
    }
}
