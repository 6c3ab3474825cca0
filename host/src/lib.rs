//! # weft-host — Weft's runtime and command line
//!
//! The runtime that loads signed actors, enforces their claims and limits, and runs them over
//! waPC (see `../shared/DESIGN.md`). Its principal type is [`actor::ActorPool`]: a verified,
//! compiled actor with a pool of instances and an async `invoke`. A host call from an actor
//! passes its claims check and then goes to a [`actor::Dispatch`] (links → providers). The
//! crate also holds the [`keystore`] the `weft` command line signs with.
//!
//! **What it is not:** it does not parse, sign or verify claims (that is the `wascap` crate,
//! which does no I/O), and it never names a concrete capability provider: only the CLI and the
//! app manifest wire those in.
//!
//! ```
//! use weft_host::keystore::KeyStore;
//! use wascap::KeyRole;
//!
//! # fn main() -> Result<(), weft_host::keystore::KeyStoreError> {
//! let dir = std::env::temp_dir().join(format!("weft-doc-{}", std::process::id()));
//! let store = KeyStore::at(&dir);
//! let first = store.get_or_create("echo", KeyRole::Module)?;
//! let again = store.get_or_create("echo", KeyRole::Module)?;
//! assert_eq!(first.key.public_key(), again.key.public_key()); // reused, as `wash` does
//! assert!(first.created && !again.created);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod actor;
pub mod engine;
pub mod host;
pub mod instance;
pub mod keystore;
pub mod limits;
pub mod links;
