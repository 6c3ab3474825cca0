//! A Weft host: the actors it runs, the providers it holds, and the links between them.
//!
//! The host names no concrete provider: it holds `Arc<dyn Provider>`s by id and routes each
//! host call by its link (`crate::invoke`). What it does not run itself it reaches through
//! the lattice, once joined, behind the same traits (`crate::lattice`). This file is the
//! facade: actors, links and calls; [`update`] replaces a running actor; [`providers`] starts,
//! replaces and stops providers.

mod canary;
mod checks;
mod error;
mod links;
mod providers;
mod slots;
mod table;
mod update;

pub use error::{HostError, UpdateRefused};
pub use update::UpdateOptions;

use crate::actor::{ActorIdentity, ActorPool, LoadPolicy};
use crate::engine::{EngineConfig, WasmEngine};
use crate::invoke::route::{Callee, Router, Routes};
use crate::invoke::{CallPolicy, Deadline, HostCalls, InvokeError, Policy};
use crate::lattice::Lattice;
use crate::lattice::serving::LocalActors;
use canary::Served;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;
use weft_provider_sdk::{LinkDefinition, Provider};

/// How a host is set up.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Engine-wide settings.
    pub engine: EngineConfig,
    /// Whether and how actors are admitted, and their limits.
    pub policy: LoadPolicy,
    /// The host's own rules for actors' host calls, beyond their claims (none by default).
    pub call_policy: Option<Arc<dyn CallPolicy>>,
    /// How many links it holds, and how large each may be.
    pub links: crate::links::LinkLimits,
    /// Where it counts what its actors and providers serve (none by default: no cost).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

pub(crate) struct HostState {
    engine: WasmEngine,
    policy: LoadPolicy,
    /// Shared with the providers' invokers, whose calls find actors in it without the host.
    actors: Arc<table::ActorTable>,
    /// Its links and the providers in its process, and the routes of actors' calls to those
    /// providers: every write to the tables goes through it.
    provider_routes: Arc<crate::invoke::provider_routes::ProviderRoutes>,
    link_limits: crate::links::LinkLimits,
    lattice: Lattice,
    /// Where every actor's host calls go once its claims allow them: the policy, then routing.
    outbound: Arc<dyn HostCalls>,
    /// One update at a time: two racing updates of one actor must not both win.
    updates: tokio::sync::Mutex<()>,
    /// Its metrics, if it keeps them.
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// What the last round of health checks found (`checks.rs`).
    health: std::sync::Mutex<crate::health::Book>,
    /// Where the parts that turned healthy or unhealthy are told.
    health_changes: tokio::sync::broadcast::Sender<crate::health::HealthChange>,
    /// Where the verdicts of canaries are told (`canary.rs`).
    canary_verdicts: tokio::sync::broadcast::Sender<crate::canary::CanaryVerdict>,
}

impl HostState {
    fn call_deadline(&self) -> Duration {
        Duration::from_millis(self.policy.limits.call_deadline_ms)
    }

    /// The link `key` names, if this host holds it.
    pub(crate) fn link(&self, key: &weft_contracts::link::LinkKey) -> Option<Arc<LinkDefinition>> {
        self.provider_routes
            .links()
            .get(&key.actor_id, &key.contract_id, &key.link_name)
    }

    /// The version of `actor_id` that takes its next call (the canary's, for its share).
    fn local_actor(&self, actor_id: &str) -> Option<Arc<ActorPool>> {
        self.actors
            .handle(actor_id)
            .map(|handle| handle.0.pick().clone())
    }

    /// Calls an actor within this host's call deadline: its pool here, else (on a lattice)
    /// the hosts running it. `provider_contract` is the contract of the provider making the
    /// call, if one is: a local actor must be signed for it (`claims::check_inbound`).
    async fn invoke(
        &self,
        actor_id: &str,
        operation: &str,
        payload: &[u8],
        provider_contract: Option<&str>,
    ) -> Result<Vec<u8>, InvokeError> {
        let deadline = Deadline::after(self.call_deadline());
        let Some(handle) = self.actors.handle(actor_id) else {
            let remote = self
                .lattice
                .actor(actor_id)
                .ok_or_else(|| InvokeError::NotFound {
                    actor: actor_id.to_string(),
                })?;
            return remote.invoke(operation, payload, deadline).await;
        };
        handle
            .invoke(operation, payload, provider_contract, deadline)
            .await
    }
}

impl Drop for HostState {
    /// Its actors go with it: a provider that outlives the host (holding its invoker, and so
    /// the table) finds none.
    fn drop(&mut self) {
        self.actors.write().drain();
    }
}

impl Routes for HostState {
    /// In this process, else (on a lattice) a proxy for the one serving the id elsewhere.
    fn provider(&self, provider_id: &str) -> Option<Arc<dyn Provider>> {
        self.provider_routes
            .local_provider(provider_id)
            .or_else(|| self.lattice.provider(provider_id))
    }

    /// Here by module key or call alias; else on the lattice, by either (whose hosts answer
    /// "no responders" when none runs it).
    fn actor(&self, target: &str) -> Option<Callee> {
        let local = self
            .actors
            .handle(target)
            .or_else(|| self.actors.handle_by_alias(target))
            .map(|handle| handle.0.pick().clone());
        match local {
            Some(pool) => Some(Callee::Local(pool)),
            None if wascap::keys::public_key_with_role(
                target,
                wascap::KeyRole::Module,
                "actor",
            )
            .is_ok() =>
            {
                self.lattice.actor(target).map(Callee::Remote)
            }
            None => self.lattice.actor_by_alias(target).map(Callee::Remote),
        }
    }

    fn on_lattice(&self) -> bool {
        self.lattice.membership().is_some()
    }
}

/// Reads a module file of at most `max_bytes`: a regular file only (a FIFO or a device such
/// as `/dev/zero` is refused before anything is read), and never more than one byte past the
/// limit, so an oversized file is refused by its size check without being held whole.
pub fn read_module(path: &std::path::Path, max_bytes: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    // Asked before opening: opening a FIFO for reading waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A Weft host. Cheap to clone: clones share the same host.
#[derive(Clone)]
pub struct Host {
    state: Arc<HostState>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Host {
    /// A host with no actors, providers or links. Its async methods need a tokio runtime
    /// (compiles go to its blocking pool); either flavour works.
    pub fn new(config: HostConfig) -> Result<Self, HostError> {
        let engine = WasmEngine::new(config.engine)?;
        let provider_routes = Arc::new(crate::invoke::provider_routes::ProviderRoutes::new(
            config.metrics.clone(),
        ));
        let state = Arc::new_cyclic(|host: &Weak<HostState>| {
            let host: Weak<dyn Routes> = host.clone();
            let router: Arc<dyn HostCalls> = Arc::new(Router::new(
                host,
                config.metrics.clone(),
                provider_routes.clone(),
            ));
            let outbound = match config.call_policy {
                Some(policy) => Arc::new(Policy::new(policy, router)),
                None => router,
            };
            HostState {
                engine,
                policy: config.policy,
                actors: Arc::default(),
                provider_routes,
                link_limits: config.links,
                lattice: Lattice::default(),
                outbound,
                updates: tokio::sync::Mutex::new(()),
                metrics: config.metrics,
                health: std::sync::Mutex::default(),
                health_changes: tokio::sync::broadcast::channel(checks::CHANGES_KEPT).0,
                canary_verdicts: tokio::sync::broadcast::channel(canary::VERDICTS_KEPT).0,
            }
        });
        Ok(Host { state })
    }

    /// `pool` as this host runs it: counting its calls if the host keeps metrics, and freeing
    /// a slot held by an idle instance of another actor when it needs one.
    fn hosted(&self, pool: ActorPool) -> ActorPool {
        let host = Arc::downgrade(&self.state);
        let pool = pool.with_slot_reclaim(Arc::new(move || {
            host.upgrade()
                .is_some_and(|state| state.reclaim_idle_slot())
        }));
        match &self.state.metrics {
            Some(metrics) => pool.with_metrics(metrics),
            None => pool,
        }
    }

    /// The host's metrics, if it keeps them.
    pub fn metrics(&self) -> Option<&Arc<crate::metrics::Metrics>> {
        self.state.metrics.as_ref()
    }

    /// Every metric in Prometheus' text format, its gauges read now; `None` when the host
    /// keeps no metrics.
    pub fn metrics_text(&self) -> Option<Vec<u8>> {
        let metrics = self.state.metrics.as_ref()?;
        let instances: Vec<_> = self
            .state
            .actors
            .read()
            .values()
            .flat_map(Served::pools)
            .filter_map(|pool| pool.instances_for_metrics())
            .collect();
        let traffic = self
            .state
            .lattice
            .membership()
            .map(|membership| membership.member.traffic());
        Some(metrics.render(&instances, traffic))
    }

    /// Drops every actor's instances idle for longer than `idle_for`; returns how many.
    pub fn reap_idle_instances(&self, idle_for: Duration) -> usize {
        let pools: Vec<_> = self
            .state
            .actors
            .read()
            .values()
            .flat_map(Served::pools)
            .cloned()
            .collect();
        pools.iter().map(|pool| pool.reap_idle(idle_for)).sum()
    }

    /// Reaps instances idle for longer than `idle_for` every `every`, until the host is
    /// dropped.
    pub fn watch_idle_instances(
        &self,
        every: Duration,
        idle_for: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let host = Arc::downgrade(&self.state);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(state) = host.upgrade() else { return };
                let reaped = Host { state }.reap_idle_instances(idle_for);
                if reaped > 0 {
                    tracing::debug!(reaped, "idle instances dropped");
                }
            }
        })
    }

    /// How this host's lattice serving finds its local actors.
    fn local_actors(&self) -> LocalActors {
        let host = Arc::downgrade(&self.state);
        Arc::new(move |actor_id: &str| host.upgrade()?.local_actor(actor_id))
    }

    /// Lets `max_instances` calls of a running actor run at once (the cap survives updates;
    /// a canary's new version is scaled with it).
    pub fn scale_actor(&self, actor_id: &str, max_instances: usize) -> Result<(), HostError> {
        self.check_instances(max_instances)?;
        let served = self
            .state
            .actors
            .read()
            .get(actor_id)
            .cloned()
            .ok_or_else(|| HostError::UnknownActor(actor_id.to_string()))?;
        for pool in served.pools() {
            pool.scale(max_instances);
        }
        tracing::info!(actor = actor_id, max_instances, "actor scaled");
        Ok(())
    }

    /// Refuses an instance count no actor may have: none, or more than the engine's slots
    /// (checked before anything is loaded or changed).
    fn check_instances(&self, asked: usize) -> Result<(), HostError> {
        let slots = self.state.engine.instance_slots();
        if asked == 0 || asked > slots {
            return Err(HostError::Instances { asked, slots });
        }
        Ok(())
    }

    /// Verifies, compiles and starts an actor from its module bytes.
    pub async fn start_actor(&self, bytes: &[u8]) -> Result<ActorIdentity, HostError> {
        self.start_actor_with(bytes, None).await
    }

    /// Reads a module from `path` and starts it as [`Host::start_actor_with`] does.
    pub async fn start_actor_file(
        &self,
        path: &std::path::Path,
        max_instances: Option<usize>,
    ) -> Result<ActorIdentity, HostError> {
        let bytes =
            read_module(path, self.state.policy.limits.max_module_bytes).map_err(|source| {
                HostError::ReadActor {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        self.start_actor_with(&bytes, max_instances).await
    }

    /// [`Host::start_actor`], with at most `max_instances` calls at once instead of the host's
    /// default.
    pub async fn start_actor_with(
        &self,
        bytes: &[u8],
        max_instances: Option<usize>,
    ) -> Result<ActorIdentity, HostError> {
        let mut policy = self.state.policy.clone();
        if let Some(max) = max_instances {
            policy.limits.max_instances = max;
        }
        self.check_instances(policy.limits.max_instances)?;
        let pool = ActorPool::load(
            &self.state.engine,
            bytes,
            &policy,
            self.state.outbound.clone(),
        )
        .await?;
        let pool = self.hosted(pool);
        let identity = pool.identity().clone();
        {
            let mut actors = self.state.actors.write();
            if actors.contains(&identity.id) {
                return Err(HostError::ActorRunning(identity.id));
            }
            actors.insert(identity.id.clone(), Served::new(Arc::new(pool)));
        }
        self.state
            .lattice
            .serve_actor(&identity.id, identity.call_alias(), self.local_actors())
            .await
            .map_err(|failure| HostError::Lattice(failure.message))?;
        tracing::info!(actor = %identity.id, name = %identity.name, "actor started");
        Ok(identity)
    }

    /// Joins `member`'s lattice (`weft_lattice::Member::join`): serves every actor running
    /// here (and every one started later) on the lattice, and reaches providers and actors
    /// that are not in this process through it. Every message it sends is sealed by `member`;
    /// every one it receives that no member of a trusted issuer sealed is dropped.
    pub async fn join_lattice(&self, member: Arc<weft_lattice::Member>) -> Result<(), HostError> {
        let lattice = member.lattice().to_string();
        self.state
            .lattice
            .join(member, &lattice, self.state.call_deadline())
            .map_err(HostError::AlreadyJoined)?;
        let actors: Vec<ActorIdentity> = self
            .state
            .actors
            .read()
            .values()
            .map(|served| served.stable.identity().clone())
            .collect();
        for identity in actors {
            self.state
                .lattice
                .serve_actor(&identity.id, identity.call_alias(), self.local_actors())
                .await
                .map_err(|failure| HostError::Lattice(failure.message))?;
        }
        let providers: Vec<String> = self.state.provider_routes.provider_ids();
        for provider_id in providers {
            self.serve_provider_on_lattice(&provider_id).await?;
        }
        let host = Arc::downgrade(&self.state);
        self.state
            .lattice
            .serve_link_requests(Arc::new(move |provider_id, key| {
                host.upgrade()
                    .and_then(|state| state.link(key))
                    .filter(|link| link.provider_id == provider_id)
                    .map(|link| (*link).clone())
            }))
            .await
            .map_err(|failure| HostError::Lattice(failure.message))?;
        self.state
            .lattice
            .serve_route_switches()
            .await
            .map_err(|failure| HostError::Lattice(failure.message))?;
        tracing::info!(%lattice, "joined the lattice");
        Ok(())
    }

    /// Stops an actor: it takes no new calls; calls in flight finish.
    pub fn stop_actor(&self, actor_id: &str) -> Result<(), HostError> {
        let served = self
            .state
            .actors
            .write()
            .remove(actor_id)
            .ok_or_else(|| HostError::UnknownActor(actor_id.to_string()))?;
        served.pools().for_each(|pool| pool.close());
        self.state.lattice.stop_serving_actor(actor_id);
        self.evict_unused_modules();
        Ok(())
    }

    /// The pool serving an actor now (a version being replaced keeps running its calls in
    /// flight in its own pool until they end; during a canary, the running version's).
    pub fn actor_pool(&self, actor_id: &str) -> Option<Arc<ActorPool>> {
        self.state
            .actors
            .read()
            .get(actor_id)
            .map(|served| served.stable.clone())
    }

    /// How many compiled modules the engine caches (one per distinct code in use).
    pub fn compiled_modules(&self) -> usize {
        self.state.engine.cached_modules()
    }

    /// The actors running here.
    pub fn actors(&self) -> Vec<ActorIdentity> {
        let mut all: Vec<ActorIdentity> = self
            .state
            .actors
            .read()
            .values()
            .map(|served| served.stable.identity().clone())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        all
    }

    /// Calls `operation` on an actor: one running here, else, on a lattice, one another host
    /// runs. The whole call, the wait for an instance included, is bounded by the host's call
    /// deadline.
    pub async fn invoke(
        &self,
        actor_id: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, InvokeError> {
        self.state.invoke(actor_id, operation, payload, None).await
    }

    /// Stops every actor and shuts every provider down.
    pub async fn shutdown(&self) {
        let stopped: Vec<(String, Served)> = self.state.actors.write().drain();
        for (actor_id, served) in stopped {
            served.pools().for_each(|pool| pool.close());
            self.state.lattice.stop_serving_actor(&actor_id);
        }
        let providers: Vec<String> = self.state.provider_routes.provider_ids();
        for provider_id in providers {
            if let Err(error) = self.stop_provider(&provider_id).await {
                tracing::warn!(provider = %provider_id, %error, "provider not stopped cleanly");
            }
        }
    }
}
