//! Who an actor is, as far as the host is concerned, and the checks that establish it before
//! anything is compiled: the module's size, its claims (or the development switch for unsigned
//! modules), under the host's [`LoadPolicy`].

use crate::engine::{EngineError, WasmEngine};
use crate::generation::{self, GenerationError};
use crate::invoke::GuestError;
use crate::limits::Limits;
use wascap::{Actor, Claims, ClaimsError, KnownCode, Verified, VerifiedModule, VerifyOptions};
use weft_contracts::generations::{Generation, canonical_contract};

/// The largest module checked on the async worker that loads it: its signature (about 45 µs)
/// and its code compared with code the host holds (tens of µs), or at most about 0.2 ms of
/// hashing where the host holds none (only for a module whose signature verified). Handing
/// the check to the blocking pool costs about 20 µs, a fifth of starting an actor of code
/// already loaded.
pub const INLINE_CHECK_BYTES: usize = 256 << 10;

/// Who an actor is, as far as the host is concerned.
#[derive(Debug, Clone)]
pub struct ActorIdentity {
    /// The module key (`M…`), or `unsigned:{hash}` for a module loaded with `allow_unsigned`.
    pub id: String,
    /// The account that signed it (`A…`); `None` when unsigned. Who the actor is, is its
    /// module key *and* its issuer: anyone may sign a module claiming any `sub`, but only the
    /// issuer's key signs as the issuer.
    pub issuer: Option<String>,
    /// The name in its claims, or "unsigned".
    pub name: String,
    /// Capability contracts it may call, by the ids Weft's providers and links use (a waSCC
    /// `wascc:keyvalue` is `wasmcloud:keyvalue` here; its claims keep what was signed).
    pub capabilities: Vec<String>,
    /// The generation of the lineage's ABI it was built for.
    pub generation: Generation,
    /// Whether it was loaded unsigned under the development switch (it may call anything).
    pub unsigned: bool,
    /// SHA-256 of its code without claims (uppercase hex), computed or proved here (not taken
    /// from its claims, which may record a hash of padded sizes or, before wascap revision 3,
    /// an unchecked one): what the module cache is keyed by.
    pub module_hash: String,
    /// Its claims' revision (`rev`); an update may not lower it.
    pub revision: Option<i32>,
    /// Its verified claims; `None` when unsigned.
    pub claims: Option<Verified<Claims<Actor>>>,
}

impl ActorIdentity {
    /// Checks a module's size and claims (or admits it unsigned under the development switch)
    /// without compiling it: the cheap half of loading, done before any compile.
    pub fn of_module(bytes: &[u8], policy: &LoadPolicy) -> Result<Self, LoadError> {
        Self::of_module_knowing(bytes, policy, &|_| None)
    }

    /// [`ActorIdentity::of_module`], proving the hash of code the host already holds by
    /// comparing bytes instead of hashing them ([`wascap::verify_module_code`]).
    pub fn of_module_knowing(
        bytes: &[u8],
        policy: &LoadPolicy,
        known: KnownCode<'_>,
    ) -> Result<Self, LoadError> {
        let limit = policy.limits.max_module_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                len: bytes.len(),
                limit,
            });
        }
        match wascap::verify_module_code(bytes, &policy.verify, known) {
            Ok(VerifiedModule {
                claims: verified,
                code_hash,
            }) => {
                let actor = verified.metadata.clone().unwrap_or_default();
                if !verified.hash_checked() {
                    tracing::warn!(
                        module = %verified.subject,
                        "its claims (wascap_revision {}) predate module hash checks and its \
                         hash does not match: loaded as wascap would load it; re-sign it with \
                         `weft claims sign` to have its code bound to its claims",
                        verified.wascap_revision.unwrap_or(0)
                    );
                }
                let generation = generation::of_module(bytes, actor.capabilities())?;
                Ok(ActorIdentity {
                    id: verified.subject.clone(),
                    issuer: Some(verified.issuer.clone()),
                    name: actor.name.clone().unwrap_or_else(|| "unnamed".into()),
                    capabilities: actor
                        .capabilities()
                        .iter()
                        .map(|c| canonical_contract(c).to_string())
                        .collect(),
                    generation,
                    unsigned: false,
                    module_hash: code_hash,
                    revision: actor.rev,
                    claims: Some(verified),
                })
            }
            Err(ClaimsError::Unsigned) if policy.allow_unsigned => {
                let hash = wascap::module_hash(bytes)?;
                let generation = generation::of_module(bytes, &[])?;
                tracing::warn!(
                    "loading an UNSIGNED module ({hash}) with every capability: --allow-unsigned \
                     is for development only"
                );
                Ok(ActorIdentity {
                    id: format!("unsigned:{hash}"),
                    issuer: None,
                    name: "unsigned".into(),
                    capabilities: Vec::new(),
                    generation,
                    unsigned: true,
                    module_hash: hash,
                    revision: None,
                    claims: None,
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// [`ActorIdentity::of_module_knowing`] against the code `engine` holds: here for a module
    /// of up to [`INLINE_CHECK_BYTES`], on tokio's blocking pool for a larger one, whose hash
    /// would stall the other tasks of an async worker.
    pub async fn of_module_for_engine(
        bytes: &[u8],
        policy: &LoadPolicy,
        engine: &WasmEngine,
    ) -> Result<Self, LoadError> {
        if bytes.len() <= INLINE_CHECK_BYTES {
            return Self::of_module_knowing(bytes, policy, &engine.known_code());
        }
        let (bytes, policy, known) = (bytes.to_vec(), policy.clone(), engine.known_code());
        tokio::task::spawn_blocking(move || Self::of_module_knowing(&bytes, &policy, &known))
            .await
            .map_err(|e| LoadError::Verify(e.to_string()))?
    }

    /// Whether its claims let it call `contract`.
    pub fn may_call(&self, contract: &str) -> bool {
        self.unsigned || self.capabilities.iter().any(|c| c == contract)
    }

    /// The alias other actors may call it by (`call_alias` in its claims), if it has one.
    pub fn call_alias(&self) -> Option<&str> {
        self.claims
            .as_ref()
            .and_then(|claims| claims.metadata.as_ref())
            .and_then(|actor| actor.call_alias.as_deref())
    }
}

/// How the host decides whether to load a module.
#[derive(Debug, Clone, Default)]
pub struct LoadPolicy {
    /// Claims verification: clock, skew, issuer allow-list.
    pub verify: VerifyOptions,
    /// Development switch: load modules without claims (with every capability), logging a
    /// warning. Signed modules are still verified and refused when invalid.
    pub allow_unsigned: bool,
    /// Limits for the actor's instances.
    pub limits: Limits,
}

/// Errors loading an actor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The module is over the size limit.
    #[error("module is {len} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The claims did not verify.
    #[error("{0}")]
    Claims(#[from] ClaimsError),
    /// Which ABI generation it was built for cannot be told.
    #[error("{0}")]
    Generation(#[from] GenerationError),
    /// The verification task itself failed (it panicked or the runtime is shutting down).
    #[error("verifying the module failed: {0}")]
    Verify(String),
    /// Compiling or linking failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The first instance failed to start (`wapc_init` trapped, no `__guest_call`, ...).
    #[error("the actor failed to start: {0}")]
    Start(#[source] GuestError),
}
