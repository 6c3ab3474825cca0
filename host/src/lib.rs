//! # weft-host — Weft's runtime
//!
//! Runs signed WebAssembly actors over waPC, in the waSCC / wasmCloud 0.x lineage. Its
//! principal type is [`Host`]: it verifies and starts actors, holds
//! capability providers and the link definitions between them, routes each host call through
//! the claims check to its provider, swaps a running actor for a new version without dropping
//! a call, and joins a NATS lattice to serve its actors there and reach what other members
//! run.
//!
//! A call goes down the invocation path, one layer per file in [`invoke`], outermost first:
//!
//! | layer | decides | refuses with |
//! |---|---|---|
//! | [`invoke::deadline`] | when the call must be over (the wait for an instance included) | deadline (504) |
//! | [`invoke::concurrency`] | run now, wait in a bounded queue, or shed | busy (503) |
//! | the guest ([`instance`]) | runs, within the deadline and every [`Limits`] | trapped, deadline (500, 504) |
//! | [`invoke::claims`] | may the actor call this contract (its claims) | denied (403) |
//! | [`invoke::policy`] | may it by the host's rules ([`CallPolicy`]) | denied (403) |
//! | [`invoke::route`] | the logger, or the provider its link names, here or on the lattice | no link, provider failed (500) |
//!
//! [`control`] is the control plane: one handler for start / stop / scale / update, providers
//! and links, served over NATS to `weft ctl` and on this machine to `weft link`.
//!
//! Underneath: [`engine`] (the wasmtime engine, a copy per core; epoch ticker, module cache),
//! [`instance`] (one waPC instance with checked guest memory), [`actor`] (a verified actor
//! and its instances), [`links`], [`limits`], and the lattice membership (internal: remote
//! actors and providers behind the same traits as local ones).
//!
//! **What it is not:** it does not parse, sign or verify claims itself (that is the `wascap`
//! crate, which does no I/O), it has no command line and keeps no keys (the `weft` CLI), and
//! it never names a concrete capability provider: only the CLI and the app manifest wire
//! those in.
//!
//! ```
//! use wascap::{Actor, Claims, KeyRole};
//! use weft_host::{Host, HostConfig};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The smallest waPC actor: answers every call with its payload.
//! let echo = wat::parse_str(r#"(module
//!     (import "wapc" "__guest_request" (func $request (param i32 i32)))
//!     (import "wapc" "__guest_response" (func $respond (param i32 i32)))
//!     (memory (export "memory") 1) (func (export "__wasmbus_rpc_version") (result i32) i32.const 1)
//!     (func (export "__guest_call") (param $op_len i32) (param $len i32) (result i32)
//!       (call $request (i32.const 0) (i32.const 64))
//!       (call $respond (i32.const 64) (local.get $len))
//!       (i32.const 1)))"#)?;
//! let (account, module) = (KeyRole::Account.generate(), KeyRole::Module.generate());
//! let (account, module) = (account.ok_or("no key")?, module.ok_or("no key")?);
//! let claims = Claims::new(account.public_key(), module.public_key(), Actor::default());
//! let signed = wascap::embed_claims(&echo, &claims, &account)?;
//!
//! let host = Host::new(HostConfig::default())?;
//! let actor = host.start_actor(&signed).await?;
//! assert_eq!(host.invoke(&actor.id, "echo", b"hello").await?, b"hello");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod actor;
pub mod canary;
pub mod clock;
pub mod control;
pub mod engine;
pub mod generation;
pub mod guest_log;
pub mod health;
mod host;
mod identity;
pub mod instance;
pub mod invoke;
mod lattice;
pub mod limits;
pub mod links;
pub mod metrics;
mod per_core;
mod snapshot;

pub use actor::{ActorIdentity, ActorPool, LoadError, LoadPolicy};
pub use engine::{EngineConfig, EngineError, WasmEngine};
pub use host::{Host, HostConfig, HostError, UpdateOptions, UpdateRefused, read_module};
pub use invoke::{CallPolicy, Deadline, GuestError, HostCall, HostCalls, InvokeError};
pub use limits::Limits;

/// Maps keyed by actor or provider id, looked up on every call: foldhash instead of std's
/// SipHash (ids are trusted configuration, and lookups never insert).
pub(crate) type IdMap<V> = std::collections::HashMap<String, V, foldhash::quality::RandomState>;
