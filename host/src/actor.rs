//! A loaded actor: its verified identity, its compiled module, and a pool of instances that
//! serve calls one at a time each.
//!
//! A call goes through the first layers of the invocation path here (`crate::invoke`): its
//! deadline, then admission to one of the actor's instances (at most `max_instances` at once,
//! a bounded queue beyond, "busy" past either bound); the guest's host calls go through the
//! claims check to the host's outbound layers.
//!
//! Instances start on demand (from the start-up snapshot where there is one: microseconds)
//! and are kept for reuse only after a clean call: one that trapped, ran out of time or broke
//! a limit is dropped, and the next call gets a fresh one. An actor holds none until called,
//! and the host reaps instances idle for long ([`ActorPool::reap_idle`]), so idle actors hold
//! no instance slot. The pool is shaped for hot swap: a new version is a new `ActorPool`;
//! in-flight calls hold the old one until they end.

use crate::canary::Tally;
use crate::engine::{PreparedModule, WasmEngine};
use crate::guest_log::LogBudget;
pub use crate::identity::{ActorIdentity, LoadError, LoadPolicy};
use crate::instance::WapcInstance;
use crate::invoke::claims::ClaimsCheck;
use crate::invoke::concurrency::{Admission, Permit, Refused};
use crate::invoke::generation::{OlderGeneration, bad_request};
use crate::invoke::{Deadline, HostCalls, InvokeActor, InvokeError};
use crate::limits::Limits;
use crate::metrics::{ActorMetrics, ActorMetricsLabels, Metrics};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use weft_contracts::generations::{self, Generation};
use weft_provider_sdk::async_trait;

/// How many idle instances one instance start may drop to free a slot.
const RECLAIM_TRIES: usize = 4;

/// Frees an instance slot held by an idle instance of any actor, when every slot of the
/// engine is taken; whether it freed one.
pub type ReclaimSlot = Arc<dyn Fn() -> bool + Send + Sync>;

/// A loaded actor and its instances.
pub struct ActorPool {
    identity: Arc<ActorIdentity>,
    /// Its id as its instances' host calls name it.
    id: Arc<str>,
    prepared: PreparedModule,
    limits: Limits,
    /// Admission to its instances, which keeps the idle ones: boxed so that taking one out
    /// for a call and putting it back moves a pointer.
    admission: Admission<Box<WapcInstance>>,
    /// Its outbound layers: the claims check, behind a translation for an older generation.
    calls: Arc<dyn HostCalls>,
    /// Its log budget, shared by its instances.
    log: Arc<LogBudget>,
    /// Its metrics' handles, when the host keeps metrics.
    metrics: Option<ActorMetrics>,
    /// How it frees a slot held by another actor's idle instance, when it needs one.
    reclaim: Option<ReclaimSlot>,
    /// Its calls counted for a canary, once it takes part in one (`crate::canary`).
    tally: OnceLock<Tally>,
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
    /// first call. Its host calls go through its claims check to `calls`.
    pub async fn load(
        engine: &WasmEngine,
        bytes: &[u8],
        policy: &LoadPolicy,
        calls: Arc<dyn HostCalls>,
    ) -> Result<Self, LoadError> {
        let identity = ActorIdentity::of_module_for_engine(bytes, policy, engine).await?;
        Self::build(engine, identity, bytes, policy, calls).await
    }

    /// The second half of [`ActorPool::load`]: compile (cached by hash), link, and start one
    /// instance of a module whose identity [`ActorIdentity::of_module`] established.
    pub async fn build(
        engine: &WasmEngine,
        identity: ActorIdentity,
        bytes: &[u8],
        policy: &LoadPolicy,
        calls: Arc<dyn HostCalls>,
    ) -> Result<Self, LoadError> {
        let prepared = engine
            .prepare(&identity.module_hash, bytes, policy.limits)
            .await?;
        let id: Arc<str> = identity.id.as_str().into();
        let identity = Arc::new(identity);
        let claims = Arc::new(ClaimsCheck::new(identity.clone(), calls));
        let calls: Arc<dyn HostCalls> = match identity.generation {
            Generation::Wasmbus => claims,
            older => Arc::new(OlderGeneration::new(older, claims)),
        };
        let log = LogBudget::new(
            policy.limits.max_log_bytes_per_call,
            policy.limits.max_log_bytes_per_second,
        );
        // Code is started once, by the first actor of it, so a module that cannot start is
        // refused when loaded, not on its first call; that instance is not kept. An actor holds no instance
        // until it is called, and its idle instances are reaped (`reap_idle`).
        if !prepared.started.load(Ordering::Acquire) {
            start_on_a_copy(&prepared, policy.limits, &id, &calls, &log)
                .await
                .map_err(LoadError::Start)?;
            prepared.started.store(true, Ordering::Release);
        }
        let limits = policy.limits;
        Ok(ActorPool {
            identity,
            id,
            prepared,
            limits,
            admission: Admission::new(limits.max_instances, limits.max_queued_calls, Vec::new()),
            calls,
            log,
            metrics: None,
            reclaim: None,
            tally: OnceLock::new(),
        })
    }

    /// The same pool, counting its calls in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = Some(metrics.actor(
            &self.identity.id,
            &self.identity.name,
            self.identity.revision,
        ));
        self
    }

    /// The same pool, freeing a slot with `reclaim` when it needs one and the engine has none.
    pub fn with_slot_reclaim(mut self, reclaim: ReclaimSlot) -> Self {
        self.reclaim = Some(reclaim);
        self
    }

    /// When its longest-idle instance was last used (coarse clock), if it has one idle.
    pub(crate) fn oldest_idle(&self) -> Option<u64> {
        self.admission.oldest_idle()
    }

    /// Drops its longest-idle instance; whether it had one.
    pub(crate) fn drop_oldest_idle(&self) -> bool {
        self.admission.drop_oldest()
    }

    /// Drops its instances idle for longer than `idle_for`; returns how many.
    pub fn reap_idle(&self, idle_for: Duration) -> usize {
        let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
        self.admission
            .reap(crate::clock::now_ms().saturating_sub(idle_ms))
    }

    /// Its instances idle now and busy now, with its metrics' labels (when it has metrics).
    pub(crate) fn instances_for_metrics(&self) -> Option<(ActorMetricsLabels, usize, usize)> {
        let labels = self.metrics.as_ref()?.labels.clone();
        let (idle, running) = self.admission.idle_and_running();
        Some((labels, idle, running))
    }

    /// What it served during a canary (made on first use: an actor that never takes part in
    /// one holds none).
    pub(crate) fn tally(&self) -> &Tally {
        self.tally.get_or_init(Tally::default)
    }

    /// What it served so far, when the host keeps metrics.
    pub fn served_load(&self) -> Option<crate::metrics::ActorLoad> {
        self.metrics.as_ref().map(ActorMetrics::load)
    }

    /// Who this actor is.
    pub fn identity(&self) -> &ActorIdentity {
        &self.identity
    }

    /// The limits its instances run under, with `max_instances` as last scaled.
    pub fn limits(&self) -> Limits {
        Limits {
            max_instances: self.admission.max_running(),
            ..self.limits
        }
    }

    /// Its own call deadline.
    pub fn call_deadline(&self) -> Duration {
        Duration::from_millis(self.limits.call_deadline_ms)
    }

    /// Lets `max_instances` calls run at once from now on (at least one). Scaling down lets
    /// calls already running finish, and drops idle instances over the new cap.
    pub fn scale(&self, max_instances: usize) {
        self.admission.scale(max_instances);
    }

    /// Instances idle in the pool right now.
    pub fn idle_instances(&self) -> usize {
        self.admission.idle()
    }

    /// Calls `operation` on an instance of the actor, within the actor's call deadline.
    pub async fn invoke(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, InvokeError> {
        self.invoke_within(operation, payload, Deadline::after(self.call_deadline()))
            .await
    }

    /// Calls `operation` on an instance of the actor, all of it (the wait for an instance
    /// too) within `deadline`. The operation and payload are wasmbus's; an actor of an older
    /// generation gets them (and answers) in its own SDK's terms.
    pub async fn invoke_within(
        &self,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, InvokeError> {
        let tally = self.tally.get().filter(|tally| tally.is_on());
        let started = (self.metrics.is_some() || tally.is_some()).then(Instant::now);
        // The span only when traces are recorded: untraced, the call is the same future as
        // before traces existed (no span held across its awaits).
        let result = if tracing::level_enabled!(tracing::Level::TRACE) {
            let span = tracing::trace_span!("actor.invoke", actor = %self.identity.name, revision = ?self.identity.revision, operation);
            // Boxed: a second place for the call's future in this one would double its size
            // (and what every call moves), though only traced calls take this branch.
            Box::pin(tracing::Instrument::instrument(
                self.admitted_run(operation, payload, deadline),
                span,
            ))
            .await
        } else {
            self.admitted_run(operation, payload, deadline).await
        };
        if let Some(started) = started {
            let (took, failed) = (started.elapsed(), result.as_ref().err());
            if let Some(metrics) = &self.metrics {
                metrics.call(took, failed.map(InvokeError::kind));
            }
            if let Some(tally) = tally {
                tally.record(took, failed.is_some());
            }
        }
        result
    }

    /// A place among the running calls, then the call on it.
    async fn admitted_run(
        &self,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, InvokeError> {
        match self.admit(deadline).await {
            Ok(running) => self.run(running, operation, payload, deadline).await,
            Err(refused) => Err(refused),
        }
    }

    /// As [`ActorPool::invoke_within`], only on an instance idle now: `None`, and nothing
    /// called, when none is (every one busy). For the host's own checks, which must take no
    /// place a caller needs and start no instance.
    pub async fn invoke_if_idle(
        &self,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Option<Result<Vec<u8>, InvokeError>> {
        let running = self.admission.try_idle()?;
        Some(self.run(running, operation, payload, deadline).await)
    }

    /// The call on the place `running` holds (with its idle instance, if it has one): in
    /// wasmbus terms, translated to and from the actor's own for an older generation.
    async fn run(
        &self,
        mut running: Permit<'_, Box<WapcInstance>>,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, InvokeError> {
        let generation = self.identity.generation;
        let bad = |e| bad_request(&self.identity.id, generation, e);
        let translated = generations::to_actor(generation, operation, payload).map_err(bad)?;
        let (own_operation, own_payload) = match &translated {
            Some(call) => (call.operation, call.payload.as_slice()),
            None => (operation, payload),
        };
        let failed = |error| InvokeError::Guest {
            actor: self.identity.id.clone(),
            name: self.identity.name.clone(),
            operation: own_operation.to_string(),
            error,
        };
        let mut instance = match running.reusable.take() {
            Some(instance) => instance,
            // Boxed: starting an instance is a future of over a kilobyte, which every call
            // would otherwise carry (and move) though few calls start one.
            None => Box::new(Box::pin(self.start_instance()).await.map_err(failed)?),
        };
        let result = instance.call(own_operation, own_payload, deadline).await;
        // Only an instance that did not trap (or run out of time, or break a limit) is reused.
        if result.as_ref().err().is_none_or(|e| !e.poisons_instance()) {
            running.reusable = Some(instance);
        }
        let answer = result.map_err(failed)?;
        match translated {
            Some(call) => call.answer(answer).map_err(bad),
            None => Ok(answer),
        }
    }

    /// A new instance (counted, with metrics). When every slot of the engine is taken, an
    /// idle instance (of any actor, the longest idle) is dropped for it; only when every slot
    /// is busy with a call does the call fail, as busy.
    async fn start_instance(&self) -> Result<WapcInstance, crate::GuestError> {
        let mut reclaimed = 0;
        loop {
            let started = start_on_a_copy(
                &self.prepared,
                self.limits,
                &self.id,
                &self.calls,
                &self.log,
            )
            .await;
            match started {
                // Another call may take the freed slot first: try a few times.
                Err(crate::GuestError::NoSlot(_))
                    if reclaimed < RECLAIM_TRIES && self.reclaim.as_ref().is_some_and(|r| r()) =>
                {
                    reclaimed += 1;
                }
                Ok(instance) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.instance_started();
                    }
                    return Ok(instance);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// A place among the running calls, with an idle instance if there is one.
    async fn admit(
        &self,
        deadline: Deadline,
    ) -> Result<Permit<'_, Box<WapcInstance>>, InvokeError> {
        let actor = || self.identity.id.clone();
        self.admission
            .admit(deadline)
            .await
            .map_err(|refused| match refused {
                Refused::Closed => InvokeError::Stopping { actor: actor() },
                busy => InvokeError::Busy {
                    actor: actor(),
                    reason: busy.to_string(),
                },
            })
    }

    /// Stops taking new calls; calls already admitted finish.
    pub fn close(&self) {
        self.admission.close();
    }
}

/// A new instance of `prepared` on this core's engine copy, or on the next that has a slot
/// free: the copies' slots are one budget. Fails with [`crate::GuestError::NoSlot`], naming
/// the host's slots, only when every copy's are taken.
async fn start_on_a_copy(
    prepared: &PreparedModule,
    limits: Limits,
    id: &Arc<str>,
    calls: &Arc<dyn HostCalls>,
    log: &Arc<LogBudget>,
) -> Result<WapcInstance, crate::GuestError> {
    for pre in prepared.pres_from_own() {
        let started = WapcInstance::new(
            pre,
            limits,
            id.clone(),
            calls.clone(),
            log.clone(),
            prepared.start_up,
        )
        .await;
        if !matches!(started, Err(crate::GuestError::NoSlot(_))) {
            return started;
        }
    }
    Err(crate::GuestError::NoSlot(format!(
        "all {} instance slots of this host are taken",
        prepared.instance_slots
    )))
}

#[async_trait]
impl InvokeActor for ActorPool {
    async fn invoke(
        &self,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, InvokeError> {
        self.invoke_within(operation, payload, deadline).await
    }
}
