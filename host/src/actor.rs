//! A loaded actor: its verified identity, its compiled module, and a pool of instances that
//! serve calls one at a time each.
//!
//! The invocation path, outermost first, each step its own piece of code:
//! 1. **deadline**: every call into the guest carries a deadline, checked at epoch ticks
//!    ([`Limits`]);
//! 2. **concurrency**: at most `max_instances` calls run at once; more wait for a permit;
//! 3. **claims**: a host call to a contract the actor was not signed for is refused by
//!    [`ClaimsGuard`] before any [`Dispatch`] sees it;
//! 4. **dispatch**: the host call goes to whatever routes it (links → providers).
//!
//! Instances are kept for reuse only after a clean call: one that trapped, ran out of time or
//! broke a limit is dropped, and the next call gets a fresh one. The pool is shaped for hot
//! swap: a new version is a new `ActorPool`; in-flight calls hold the old one until they end.

use crate::engine::{EngineError, PreparedModule, WasmEngine};
use crate::instance::{CallError, HostCallHandler, WapcInstance};
use crate::limits::Limits;
use std::sync::{Arc, Mutex, PoisonError};
use wascap::{Actor, Claims, ClaimsError, Verified, VerifyOptions};
use weft_provider_sdk::async_trait;

/// Who an actor is, as far as the host is concerned.
#[derive(Debug, Clone)]
pub struct ActorIdentity {
    /// The module key (`M…`), or `unsigned:{hash}` for a module loaded with `allow_unsigned`.
    pub id: String,
    /// The name in its claims, or "unsigned".
    pub name: String,
    /// Capability contracts it may call.
    pub capabilities: Vec<String>,
    /// Whether it was loaded unsigned under the development switch (it may call anything).
    pub unsigned: bool,
    /// SHA-256 of its code without claims (uppercase hex): what the module cache is keyed by.
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
        let limit = policy.limits.max_module_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                len: bytes.len(),
                limit,
            });
        }
        match wascap::verify_module(bytes, &policy.verify) {
            Ok(verified) => {
                let actor = verified.metadata.clone().unwrap_or_default();
                Ok(ActorIdentity {
                    id: verified.subject.clone(),
                    name: actor.name.clone().unwrap_or_else(|| "unnamed".into()),
                    capabilities: actor.capabilities().to_vec(),
                    unsigned: false,
                    module_hash: actor.module_hash.clone(),
                    revision: actor.rev,
                    claims: Some(verified),
                })
            }
            Err(ClaimsError::Unsigned) if policy.allow_unsigned => {
                let hash = wascap::module_hash(bytes)?;
                tracing::warn!(
                    "loading an UNSIGNED module ({hash}) with every capability: --allow-unsigned \
                     is for development only"
                );
                Ok(ActorIdentity {
                    id: format!("unsigned:{hash}"),
                    name: "unsigned".into(),
                    capabilities: Vec::new(),
                    unsigned: true,
                    module_hash: hash,
                    revision: None,
                    claims: None,
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// [`ActorIdentity::of_module`] on tokio's blocking pool: parsing, hashing and checking
    /// the signature of a module takes about a millisecond for a 150 KiB actor, which would
    /// stall the other tasks of an async worker.
    pub async fn of_module_off_worker(
        bytes: &[u8],
        policy: &LoadPolicy,
    ) -> Result<Self, LoadError> {
        let (bytes, policy) = (bytes.to_vec(), policy.clone());
        tokio::task::spawn_blocking(move || Self::of_module(&bytes, &policy))
            .await
            .map_err(|e| LoadError::Verify(e.to_string()))?
    }

    fn may_call(&self, contract: &str) -> bool {
        self.unsigned || self.capabilities.iter().any(|c| c == contract)
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

/// A host call the claims allowed, on its way to a provider.
#[derive(Debug, Clone, Copy)]
pub struct HostCall<'a> {
    /// The calling actor's id.
    pub actor: &'a str,
    /// The link name (waPC's "binding"); `default` when the actor names none.
    pub link_name: &'a str,
    /// The contract id (waPC's "namespace").
    pub contract: &'a str,
    /// `Interface.Method`.
    pub operation: &'a str,
    /// The request, as the actor encoded it.
    pub payload: &'a [u8],
    /// What remains of the calling actor's deadline: a provider must answer well within it,
    /// so the actor still has time to handle the answer (or the error).
    pub time_left: std::time::Duration,
}

/// Routes host calls that passed the claims check. `Err` reaches the actor as its host error.
#[async_trait]
pub trait Dispatch: Send + Sync {
    /// Serves one host call.
    async fn dispatch(&self, call: HostCall<'_>) -> Result<Vec<u8>, String>;
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
    /// The verification task itself failed (it panicked or the runtime is shutting down).
    #[error("verifying the module failed: {0}")]
    Verify(String),
    /// Compiling or linking failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The first instance failed to start (`wapc_init` trapped, no `__guest_call`, ...).
    #[error("the actor failed to start: {0}")]
    Start(#[source] CallError),
}

/// Errors invoking an actor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The call failed in or at the guest.
    #[error("actor {actor} ({name}), operation {operation}: {error}")]
    Call {
        /// The actor's id.
        actor: String,
        /// Its name.
        name: String,
        /// The operation called.
        operation: String,
        /// What went wrong.
        #[source]
        error: CallError,
    },
    /// The actor is being stopped and takes no new calls.
    #[error("actor {0} is stopping and takes no new calls")]
    Stopped(String),
}

impl InvokeError {
    /// The guest-level error, if the call reached the guest.
    pub fn call_error(&self) -> Option<&CallError> {
        match self {
            InvokeError::Call { error, .. } => Some(error),
            InvokeError::Stopped(_) => None,
        }
    }
}

/// Checks each host call against the actor's claims, then hands it to the dispatcher.
struct ClaimsGuard {
    identity: Arc<ActorIdentity>,
    dispatch: Arc<dyn Dispatch>,
}

#[async_trait]
impl HostCallHandler for ClaimsGuard {
    async fn host_call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
        time_left: std::time::Duration,
    ) -> Result<Vec<u8>, String> {
        let identity = &self.identity;
        if !identity.may_call(namespace) {
            return Err(format!(
                "actor {} ({}) is not signed for capability {namespace}; re-sign it with \
                 `weft claims sign --cap {namespace}` to let it call {operation}",
                identity.id, identity.name
            ));
        }
        let link_name = if binding.is_empty() {
            "default"
        } else {
            binding
        };
        self.dispatch
            .dispatch(HostCall {
                actor: &identity.id,
                link_name,
                contract: namespace,
                operation,
                payload,
                time_left,
            })
            .await
    }

    fn console_log(&self, line: &str) {
        tracing::info!(actor = %self.identity.id, "{line}");
    }
}

/// A loaded actor and its instances.
pub struct ActorPool {
    identity: Arc<ActorIdentity>,
    prepared: PreparedModule,
    limits: Limits,
    slots: Mutex<Slots>,
    /// Signalled when a call ends or the pool closes, for callers waiting on `max_instances`.
    freed: tokio::sync::Notify,
    guard: Arc<ClaimsGuard>,
}

/// The pool's bookkeeping, under one lock taken once as a call starts and once as it ends.
struct Slots {
    /// Instances ready for a call.
    #[expect(
        clippy::vec_box,
        reason = "boxed so that taking one out for a call and putting it back moves a pointer"
    )]
    idle: Vec<Box<WapcInstance>>,
    /// Calls running now, at most `max_instances`.
    running: usize,
    max_running: usize,
    /// Closed pools admit no new call.
    closed: bool,
}

/// A call's place in the pool. Dropping it (at the end of the call, or when the caller stops
/// waiting mid-call) frees the place and puts back the instance, if it is fit for reuse.
struct Running<'a> {
    pool: &'a ActorPool,
    reusable: Option<Box<WapcInstance>>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let mut slots = lock(&self.pool.slots);
        slots.running = slots.running.saturating_sub(1);
        if let Some(instance) = self.reusable.take() {
            slots.idle.push(instance);
        }
        drop(slots);
        self.pool.freed.notify_one();
    }
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for ActorPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorPool")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl ActorPool {
    /// Verifies, compiles and starts an actor: size, claims, compile (cached by hash), link,
    /// then one instance, so that a module that cannot start is refused here, not on its
    /// first call.
    pub async fn load(
        engine: &WasmEngine,
        bytes: &[u8],
        policy: &LoadPolicy,
        dispatch: Arc<dyn Dispatch>,
    ) -> Result<Self, LoadError> {
        let identity = ActorIdentity::of_module_off_worker(bytes, policy).await?;
        Self::build(engine, identity, bytes, policy, dispatch).await
    }

    /// The second half of [`ActorPool::load`]: compile (cached by hash), link, and start one
    /// instance of a module whose identity [`ActorIdentity::of_module`] established.
    pub async fn build(
        engine: &WasmEngine,
        identity: ActorIdentity,
        bytes: &[u8],
        policy: &LoadPolicy,
        dispatch: Arc<dyn Dispatch>,
    ) -> Result<Self, LoadError> {
        let prepared = engine
            .prepare(&identity.module_hash, bytes, policy.limits)
            .await?;
        let identity = Arc::new(identity);
        let guard = Arc::new(ClaimsGuard {
            identity: identity.clone(),
            dispatch,
        });
        let first = WapcInstance::new(
            &prepared.pre,
            policy.limits,
            guard.clone(),
            prepared.start_up,
        )
        .await
        .map_err(LoadError::Start)?;
        Ok(ActorPool {
            identity,
            prepared,
            limits: policy.limits,
            slots: Mutex::new(Slots {
                idle: vec![Box::new(first)],
                running: 0,
                max_running: policy.limits.max_instances.max(1),
                closed: false,
            }),
            freed: tokio::sync::Notify::new(),
            guard,
        })
    }

    /// Who this actor is.
    pub fn identity(&self) -> &ActorIdentity {
        &self.identity
    }

    /// The limits its instances run under, with `max_instances` as last scaled.
    pub fn limits(&self) -> Limits {
        Limits {
            max_instances: lock(&self.slots).max_running,
            ..self.limits
        }
    }

    /// Lets `max_instances` calls run at once from now on (at least one). Scaling down lets
    /// calls already running finish, and drops idle instances over the new cap.
    pub fn scale(&self, max_instances: usize) {
        let max_instances = max_instances.max(1);
        let mut slots = lock(&self.slots);
        slots.max_running = max_instances;
        slots.idle.truncate(max_instances);
        drop(slots);
        // Callers waiting for a place may now have one.
        self.freed.notify_waiters();
    }

    /// Instances idle in the pool right now.
    pub fn idle_instances(&self) -> usize {
        lock(&self.slots).idle.len()
    }

    /// Calls `operation` on an instance of the actor. Waits for a free instance when
    /// `max_instances` calls are already running.
    pub async fn invoke(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, InvokeError> {
        let (mut running, idle) = self.admit().await?;
        let error = |error| InvokeError::Call {
            actor: self.identity.id.clone(),
            name: self.identity.name.clone(),
            operation: operation.to_string(),
            error,
        };
        let mut instance = match idle {
            Some(instance) => instance,
            // Boxed: starting an instance is a future of over a kilobyte, which every call
            // would otherwise carry (and move) though few calls start one.
            None => Box::new(
                Box::pin(WapcInstance::new(
                    &self.prepared.pre,
                    self.limits,
                    self.guard.clone(),
                    self.prepared.start_up,
                ))
                .await
                .map_err(error)?,
            ),
        };
        let result = instance.call(operation, payload).await;
        // Only an instance that did not trap (or run out of time, or break a limit) is reused.
        if result.as_ref().err().is_none_or(|e| !e.poisons_instance()) {
            running.reusable = Some(instance);
        }
        result.map_err(error)
    }

    /// Waits for a place among the `max_instances` running calls; hands out an idle instance
    /// with it if there is one.
    async fn admit(&self) -> Result<(Running<'_>, Option<Box<WapcInstance>>), InvokeError> {
        loop {
            // Made before looking, so a place freed between the look and the wait is not
            // missed (`notify_one` leaves a permit when nobody waits yet).
            let freed = self.freed.notified();
            {
                let mut slots = lock(&self.slots);
                if slots.closed {
                    return Err(InvokeError::Stopped(self.identity.id.clone()));
                }
                if slots.running < slots.max_running {
                    slots.running += 1;
                    let idle = slots.idle.pop();
                    let running = Running {
                        pool: self,
                        reusable: None,
                    };
                    return Ok((running, idle));
                }
            }
            freed.await;
        }
    }

    /// Stops taking new calls; calls already admitted finish.
    pub fn close(&self) {
        lock(&self.slots).closed = true;
        self.freed.notify_waiters();
    }
}
