//! # weft-lattice — the wire between the members of a Weft lattice
//!
//! Hosts and out-of-process providers join one NATS server (a lattice). This crate is what
//! travels between them and how: the [`Subjects`] (built here and nowhere else), the bodies
//! ([`wire`]: invocations and [`Answer`]s, MessagePack), bodies too large for one message
//! ([`chunks`]), request-reply with typed failures ([`request()`]), the batched caller of
//! provider calls ([`calls`]), membership and the seal on every message ([`member`]), and
//! operators' signed envelopes ([`envelope`]). Its principal types are [`Subjects`] and
//! [`calls::ProviderCaller`].
//!
//! **What it is not:** a host or a provider. It serves nothing by itself and holds no actor,
//! link table or provider; `weft-host` and `weft-provider-sdk`'s runner build on it.
//!
//! | subject | who subscribes | request → reply |
//! |---|---|---|
//! | `weft.{lattice}.actor.{actor_id}` | every host running the actor, one queue group | [`ActorInvocation`] → [`Answer`] |
//! | `weft.{lattice}.provider.{provider_id}.call` | every instance of the provider, one queue group | a batch of `[call id, ProviderInvocation]` → batches of `[call id, Answer]` ([`calls`]) |
//! | `weft.{lattice}.provider.{provider_id}.link.put` / `.link.del` | every instance | `LinkDefinition` → [`Answer`] (empty) |
//! | `weft.{lattice}.provider.{provider_id}.link.get` | every host | a `LinkKey` → [`Answer`] holding the link (only from a host that holds it) |
//! | `weft.{lattice}.member.{member_id}.key` | that member | a member's token → its key, sealed to the asker ([`member`]) |
//! | `weft.{lattice}.provider.{provider_id}.health` | every instance | nothing → [`Answer`] holding a provider's health |
//! | `weft.{lattice}.ctl.ping` | every host | nothing → [`Answer`] holding the host's inventory |
//! | `weft.{lattice}.ctl.host.{host_id}` | that host | a control request → [`Answer`] |
//! | `weft.{lattice}.evt.{kind}` | `weft ctl watch` | an event, published by hosts |
//!
//! Decisions:
//! - **Core NATS request-reply, not JetStream.** Calls are answered or fail; nothing is
//!   queued for later, so a lattice needs nothing but `nats-server`.
//! - **Every message is sealed by a member** ([`member`]): a process whose token no trusted
//!   lattice issuer signed is heard by nobody, whatever subject it uses.
//! - **Queue groups** spread calls over the hosts (or provider instances) that serve the same
//!   subject. A provider call names its link and carries none of its values: a provider
//!   serves only links it was told of, and an instance that started after a link was put
//!   asks the hosts for it (`…link.get`).
//! - **Typed failures.** An [`Answer::Err`] carries a `weft_contracts::invocation::Failure`:
//!   its kind survives the hop, so a host that is busy on one side is "busy" (HTTP 503) on
//!   the other, not a generic error.
//!
//! ```
//! use weft_lattice::{Answer, Subjects, decode, encode};
//!
//! let subjects = Subjects::new("demo");
//! assert_eq!(subjects.actor("MABC"), "weft.demo.actor.MABC");
//! let body = encode("weft.demo.actor.MABC", &Answer::Ok(b"hi".to_vec())).unwrap_or_default();
//! let answer: Answer = decode("weft.demo.actor.MABC", &body).unwrap_or(Answer::Ok(Vec::new()));
//! assert_eq!(answer, Answer::Ok(b"hi".to_vec()));
//! ```
#![deny(missing_docs)]

pub mod calls;
pub mod chunks;
mod connect;
pub mod envelope;
#[cfg(test)]
mod fuzz;
pub mod member;
mod request;
mod subjects;
pub mod trace;
pub mod wire;

/// Messages of one subscription being served at once (actor invocations on a host, provider
/// calls in a provider process): past it the subscription is not read until one ends, so a
/// flood waits in the server (and past NATS's slow-consumer limit is dropped there) instead of
/// each message holding a task and its body here.
pub const MESSAGES_IN_FLIGHT: usize = 256;

pub use chunks::{publish, receive, receive_at_most, respond};
pub use connect::{LatticeError, NatsOptions, connect};
pub use member::{Credentials, Member, Refusal, Traffic};
pub use request::{
    gather, invoke_actor, refuse_while_disconnected, request, request_from, round_trip,
};
pub use subjects::Subjects;
pub use wire::{
    ActorInvocation, Answer, ProviderInstance, ProviderInvocation, RouteSwitch, decode, encode,
};
