//! # weft-host — Weft's runtime
//!
//! Runs signed WebAssembly actors over waPC (see `../shared/DESIGN.md`). Its principal type is
//! [`host::Host`]: it verifies and starts actors, holds capability providers and the link
//! definitions between them, routes each host call through the claims check to its provider,
//! and swaps a running actor for a new version without dropping a call. Underneath:
//! [`engine`] (one shared wasmtime engine, epoch ticker, module cache), [`instance`] (one waPC
//! instance with checked guest memory), [`actor`] (a verified actor's instance pool and the
//! invocation layers), [`links`], [`limits`]; and the [`keystore`] the `weft` CLI signs with.
//!
//! **What it is not:** it does not parse, sign or verify claims itself (that is the `wascap`
//! crate, which does no I/O), it has no command line (`weft-cli`), and it never names a
//! concrete capability provider: only the CLI and the app manifest wire those in.
//!
//! ```
//! use wascap::{Actor, Claims, KeyRole};
//! use weft_host::host::{Host, HostConfig};
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The smallest waPC actor: answers every call with its payload.
//! let echo = wat::parse_str(r#"(module
//!     (import "wapc" "__guest_request" (func $request (param i32 i32)))
//!     (import "wapc" "__guest_response" (func $respond (param i32 i32)))
//!     (memory (export "memory") 1)
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
pub mod engine;
pub mod host;
pub mod instance;
pub mod keystore;
mod lattice;
pub mod limits;
pub mod links;
mod snapshot;

/// Maps keyed by actor or provider id, looked up on every call: foldhash instead of std's
/// SipHash (ids are trusted configuration, and lookups never insert).
pub(crate) type IdMap<V> = std::collections::HashMap<String, V, foldhash::quality::RandomState>;
