//! # wascap — Weft's claims library
//!
//! Signs WebAssembly actors and verifies them. An actor's identity and permissions travel inside
//! the module as a JWT (its *claims*): who issued it (an account key `A…`), which module it is
//! (a module key `M…`), the SHA-256 of the module's code, the capability contracts it may call,
//! its revision and its validity window. The token format is the one wasmCloud's `wascap`
//! crate and `wash` use, so modules signed here verify there and the other way round.
//!
//! The principal entry points are [`embed_claims`] (sign a module) and [`verify_module`], which
//! returns [`Verified<Claims<Actor>>`](Verified) only when the signature, the module hash, the
//! key roles, the time bounds and the issuer allow-list all pass. There is no "validation
//! report" to forget to read: an unverified token cannot be mistaken for a verified one.
//!
//! **What it is not:** it does no I/O (bytes in, bytes out; keys are stored by the CLI), it
//! does not run or compile modules, and it does not decide policy such as which capabilities a
//! host grants: it only proves what the claims say.
//!
//! ```
//! use wascap::{Actor, Claims, KeyRole, VerifyOptions, contracts};
//!
//! # fn main() -> Result<(), wascap::ClaimsError> {
//! let module = b"\0asm\x01\0\0\0"; // the smallest valid module
//! let account = KeyRole::Account.generate().ok_or(wascap::ClaimsError::NotWasm)?;
//! let identity = KeyRole::Module.generate().ok_or(wascap::ClaimsError::NotWasm)?;
//! let claims = Claims::new(
//!     account.public_key(),
//!     identity.public_key(),
//!     Actor {
//!         name: Some("echo".into()),
//!         caps: Some(vec![contracts::KEYVALUE.into()]),
//!         ..Actor::default()
//!     },
//! );
//! let signed = wascap::embed_claims(module, &claims, &account)?;
//!
//! let verified = wascap::verify_module(&signed, &VerifyOptions::new())?;
//! assert_eq!(verified.subject, identity.public_key());
//! assert!(verified.metadata.as_ref().is_some_and(|a| a.has_capability(contracts::KEYVALUE)));
//!
//! // Only listed issuers are trusted once a list is given.
//! let elsewhere = VerifyOptions::new().allow_issuers(["AOTHER"]);
//! assert!(wascap::verify_module(&signed, &elsewhere).is_err());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod claims;
mod error;
pub mod jwt;
pub mod keys;
mod verify;
pub mod wasm;

pub use claims::{Actor, Claims, Provider, WASCAP_REVISION, contracts, unix_now};
pub use error::{ClaimsError, TokenPart, human as human_time};
pub use keys::{KeyPair, KeyRole};
pub use verify::{DEFAULT_CLOCK_SKEW_SECS, Verified, VerifyOptions};
pub use wasm::{
    KnownCode, VerifiedModule, embed_claims, extract_token, module_hash, strip_claims,
    verify_module, verify_module_code,
};
