//! A Weft host: the actors it runs, the providers it holds, and the links between them.
//!
//! The host names no concrete provider: it holds `Arc<dyn Provider>`s by id and routes each
//! host call by its link. The guest waits, suspended on its fiber (see [`crate::instance`]),
//! while the host awaits the provider's `handle_call`, bounded by the actor's call deadline, so
//! a provider that hangs costs the caller an error, never a stuck instance or thread.

use crate::IdMap;
use crate::actor::{
    ActorIdentity, ActorPool, Dispatch, HostCall, InvokeError, LoadError, LoadPolicy,
};
use crate::engine::{EngineConfig, EngineError, WasmEngine};
use crate::lattice::{Membership, Served, Serving};
use crate::links::LinkTable;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;
use weft_contracts::logging;
use weft_provider_sdk::lattice::{self, ActorInvocation, Answer};
use weft_provider_sdk::runner;
use weft_provider_sdk::{
    ActorInvoker, LinkDefinition, Provider, ProviderCall, ProviderError, async_trait,
};

/// How a host is set up.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// Engine-wide settings.
    pub engine: EngineConfig,
    /// Whether and how actors are admitted, and their limits.
    pub policy: LoadPolicy,
}

/// What an update may do beyond the defaults.
#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions {
    /// Accept capabilities the running version was not signed for (an operator's decision).
    pub allow_new_capabilities: bool,
    /// Call `Actor.HealthRequest` on the new version before switching, and refuse it unless it
    /// answers healthy.
    pub health_check: bool,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            allow_new_capabilities: false,
            health_check: true,
        }
    }
}

/// Why an update was refused. In every case the running version keeps serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateRefused {
    /// The new module failed verification, compilation or start-up (`wapc_init` trapped).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The new module is another actor.
    #[error(
        "the new module is actor {new}, not {old}; an update keeps the module key (sign it with the same --subject)"
    )]
    SubjectChanged {
        /// The running actor.
        old: String,
        /// The new module's subject.
        new: String,
    },
    /// The new module's revision is lower.
    #[error("the new module's revision {new} is lower than the running revision {old}")]
    RevisionLowered {
        /// Running revision.
        old: i32,
        /// New revision.
        new: i32,
    },
    /// The new module asks for capabilities the running version lacks.
    #[error("the new module adds capabilities the running version lacks ({}); allow them explicitly", added.join(", "))]
    NewCapabilities {
        /// The capabilities added.
        added: Vec<String>,
    },
    /// The new version's health check failed.
    #[error("the new version failed its health check: {0}")]
    Unhealthy(String),
}

/// What can go wrong asking the host for something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The engine could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An actor was refused.
    #[error("actor refused: {0}")]
    Load(#[from] LoadError),
    /// A call failed.
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// No actor with that id runs here.
    #[error("no actor {0} runs on this host; start it first (`weft up` with it in the manifest)")]
    UnknownActor(String),
    /// A call or a link over the lattice failed (nothing serves the subject, no answer in
    /// time, NATS down).
    #[error("over the lattice: {0}")]
    Lattice(String),
    /// The host is already a member of a lattice.
    #[error("this host already joined lattice {0}")]
    AlreadyJoined(String),
    /// The actor already runs; replacing it is an update.
    #[error("actor {0} already runs on this host")]
    ActorRunning(String),
    /// No provider with that id runs here.
    #[error("no provider {0} runs on this host; add it to the manifest's providers")]
    UnknownProvider(String),
    /// A provider with that id already runs.
    #[error("a provider with id {0} already runs on this host")]
    ProviderRunning(String),
    /// A provider refused a link or failed to start.
    #[error("provider {provider_id}: {source}")]
    Provider {
        /// The provider.
        provider_id: String,
        /// What it said.
        #[source]
        source: ProviderError,
    },
    /// No link to delete.
    #[error("actor {actor_id} has no link for {contract_id} named {link_name:?}")]
    NoSuchLink {
        /// The actor.
        actor_id: String,
        /// The contract.
        contract_id: String,
        /// The link name.
        link_name: String,
    },
    /// An update was refused; the running version keeps serving.
    #[error("update of actor {actor} refused, the running version keeps serving: {reason}")]
    UpdateRefused {
        /// The actor.
        actor: String,
        /// Why.
        #[source]
        reason: UpdateRefused,
    },
    /// An actor file could not be read.
    #[error("cannot read actor file {}: {source}", path.display())]
    ReadActor {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

struct HostState {
    engine: WasmEngine,
    policy: LoadPolicy,
    actors: RwLock<IdMap<Arc<ActorPool>>>,
    providers: RwLock<IdMap<Arc<dyn Provider>>>,
    links: LinkTable,
    /// Set once the host joins a lattice.
    lattice: std::sync::OnceLock<Membership>,
    /// One update at a time: two racing updates of one actor must not both win.
    updates: tokio::sync::Mutex<()>,
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
        let state = HostState {
            engine: WasmEngine::new(config.engine)?,
            policy: config.policy,
            actors: RwLock::default(),
            providers: RwLock::default(),
            links: LinkTable::default(),
            lattice: std::sync::OnceLock::new(),
            updates: tokio::sync::Mutex::new(()),
        };
        Ok(Host {
            state: Arc::new(state),
        })
    }

    /// Lets `max_instances` calls of a running actor run at once (the cap survives updates).
    pub fn scale_actor(&self, actor_id: &str, max_instances: usize) -> Result<(), HostError> {
        let pool = self
            .actor_pool(actor_id)
            .ok_or_else(|| HostError::UnknownActor(actor_id.to_string()))?;
        pool.scale(max_instances);
        tracing::info!(actor = actor_id, max_instances, "actor scaled");
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
        let bytes = std::fs::read(path).map_err(|source| HostError::ReadActor {
            path: path.to_path_buf(),
            source,
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
        let router = Arc::new(Router {
            host: Arc::downgrade(&self.state),
        });
        let mut policy = self.state.policy.clone();
        if let Some(max) = max_instances {
            policy.limits.max_instances = max;
        }
        let pool = ActorPool::load(&self.state.engine, bytes, &policy, router).await?;
        let identity = pool.identity().clone();
        {
            let mut actors = write(&self.state.actors);
            if actors.contains_key(&identity.id) {
                return Err(HostError::ActorRunning(identity.id));
            }
            actors.insert(identity.id.clone(), Arc::new(pool));
        }
        if self.state.lattice.get().is_some() {
            self.serve_on_lattice(&identity.id).await?;
        }
        tracing::info!(actor = %identity.id, name = %identity.name, "actor started");
        Ok(identity)
    }

    /// Joins a lattice over `client`: serves every actor running here (and every one started
    /// later) on the lattice, and reaches providers and actors that are not in this process
    /// through it.
    pub async fn join_lattice(
        &self,
        client: async_nats::Client,
        lattice: &str,
    ) -> Result<(), HostError> {
        if let Err(refused) =
            self.state
                .lattice
                .set(Membership::new(client, lattice, self.call_deadline()))
        {
            return Err(HostError::AlreadyJoined(refused.name));
        }
        let actors: Vec<String> = read(&self.state.actors).keys().cloned().collect();
        for actor_id in actors {
            self.serve_on_lattice(&actor_id).await?;
        }
        let providers: Vec<String> = read(&self.state.providers).keys().cloned().collect();
        for provider_id in providers {
            self.serve_provider_on_lattice(&provider_id).await?;
        }
        tracing::info!(lattice, "joined the lattice");
        Ok(())
    }

    /// Subscribes to `actor_id`'s subject in the queue group of the hosts running it, and
    /// serves each invocation that arrives with the local actor.
    async fn serve_on_lattice(&self, actor_id: &str) -> Result<(), HostError> {
        let Some(membership) = self.state.lattice.get() else {
            return Ok(());
        };
        let subject = membership.subjects.actor(actor_id);
        let mut subscription = membership
            .client
            .queue_subscribe(subject.clone(), subject.clone())
            .await
            .map_err(|e| HostError::Lattice(format!("cannot subscribe to {subject}: {e}")))?;
        let (host, client, actor) = (
            Arc::downgrade(&self.state),
            membership.client.clone(),
            actor_id.to_string(),
        );
        let task = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(message) = subscription.next().await {
                let (host, client, actor) = (host.clone(), client.clone(), actor.clone());
                tokio::spawn(async move {
                    let answer = match host.upgrade() {
                        None => Answer::Err("the host is shutting down".into()),
                        Some(state) => serve_invocation(&state, &client, &actor, &message).await,
                    };
                    lattice::respond(&client, &message, &answer).await;
                });
            }
        });
        let replaced = membership.serving(
            Served::Actor(actor_id.to_string()),
            Serving::until_aborted(task),
        );
        if let Some(replaced) = replaced {
            replaced.abort();
        }
        // Returns once other hosts and providers can reach the actor.
        lattice::round_trip(&membership.client, Duration::from_secs(5))
            .await
            .map_err(|e| HostError::Lattice(e.to_string()))?;
        Ok(())
    }

    /// Serves an in-process provider on the lattice too, so actors on other hosts reach it
    /// (and a link put through another host reaches it). Each message goes to whatever runs
    /// as `provider_id` here at that moment: a replacement takes over these subscriptions.
    async fn serve_provider_on_lattice(&self, provider_id: &str) -> Result<(), HostError> {
        let Some(membership) = self.state.lattice.get() else {
            return Ok(());
        };
        let subscriptions =
            runner::subscribe_all(&membership.client, &membership.subjects, provider_id)
                .await
                .map_err(|e| HostError::Lattice(e.to_string()))?;
        let client = membership.client.clone();
        let deadline = self.call_deadline();
        let (host, id) = (Arc::downgrade(&self.state), provider_id.to_string());
        let current = move || {
            host.upgrade()
                .and_then(|state| read(&state.providers).get(&id).cloned())
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            subscriptions.run(&client, current, deadline, stopped).await;
        });
        let replaced = membership.serving(
            Served::Provider(provider_id.to_string()),
            Serving::until_stopped(task, stop),
        );
        if let Some(replaced) = replaced {
            replaced.drain().await;
        }
        Ok(())
    }

    /// Stops an actor: it takes no new calls; calls in flight finish.
    pub fn stop_actor(&self, actor_id: &str) -> Result<(), HostError> {
        let pool = write(&self.state.actors)
            .remove(actor_id)
            .ok_or_else(|| HostError::UnknownActor(actor_id.to_string()))?;
        pool.close();
        if let Some(serving) = self
            .state
            .lattice
            .get()
            .and_then(|m| m.stop_serving(&Served::Actor(actor_id.to_string())))
        {
            serving.abort();
        }
        self.evict_unused_modules();
        Ok(())
    }

    /// Replaces a running actor with a new version of it, without dropping a call: verify
    /// (same module key, revision not lower, no new capability unless allowed), compile,
    /// start, health-check, then switch. Calls already running finish on the old version; new
    /// calls go to the new one. Any refusal leaves the old version serving.
    pub async fn update_actor(
        &self,
        actor_id: &str,
        bytes: &[u8],
        options: UpdateOptions,
    ) -> Result<ActorIdentity, HostError> {
        let _one_at_a_time = self.state.updates.lock().await;
        let refused = |reason: UpdateRefused| HostError::UpdateRefused {
            actor: actor_id.to_string(),
            reason,
        };
        let old = read(&self.state.actors)
            .get(actor_id)
            .cloned()
            .ok_or_else(|| HostError::UnknownActor(actor_id.to_string()))?;
        let mut policy = self.state.policy.clone();
        policy.limits = old.limits();
        let identity = ActorIdentity::of_module_off_worker(bytes, &policy)
            .await
            .map_err(|e| refused(e.into()))?;
        let running = old.identity();
        if identity.id != running.id {
            return Err(refused(UpdateRefused::SubjectChanged {
                old: running.id.clone(),
                new: identity.id,
            }));
        }
        let (old_rev, new_rev) = (
            running.revision.unwrap_or(0),
            identity.revision.unwrap_or(0),
        );
        if new_rev < old_rev {
            return Err(refused(UpdateRefused::RevisionLowered {
                old: old_rev,
                new: new_rev,
            }));
        }
        let added: Vec<String> = identity
            .capabilities
            .iter()
            .filter(|c| !running.capabilities.contains(c))
            .cloned()
            .collect();
        if !added.is_empty() && !options.allow_new_capabilities {
            return Err(refused(UpdateRefused::NewCapabilities { added }));
        }

        let router = Arc::new(Router {
            host: Arc::downgrade(&self.state),
        });
        let pool = ActorPool::build(&self.state.engine, identity, bytes, &policy, router)
            .await
            .map_err(|e| refused(e.into()))?;
        if options.health_check {
            check_health(&pool)
                .await
                .map_err(|e| refused(UpdateRefused::Unhealthy(e)))?;
        }
        let identity = pool.identity().clone();
        // The switch: new calls find the new pool; calls in flight hold the old one, which is
        // dropped, with its instances, when the last of them ends.
        write(&self.state.actors).insert(actor_id.to_string(), Arc::new(pool));
        self.evict_unused_modules();
        tracing::info!(actor = %actor_id, revision = ?identity.revision, "actor updated");
        Ok(identity)
    }

    /// Drops compiled modules that no running actor uses (a draining old version keeps its
    /// own reference until it ends).
    fn evict_unused_modules(&self) {
        let live: std::collections::HashSet<String> = read(&self.state.actors)
            .values()
            .map(|p| p.identity().module_hash.clone())
            .collect();
        self.state.engine.retain_modules(|hash| live.contains(hash));
    }

    /// The pool serving an actor now (a version being replaced keeps running its calls in
    /// flight in its own pool until they end).
    pub fn actor_pool(&self, actor_id: &str) -> Option<Arc<ActorPool>> {
        read(&self.state.actors).get(actor_id).cloned()
    }

    /// How many compiled modules the engine caches (one per distinct code in use).
    pub fn compiled_modules(&self) -> usize {
        self.state.engine.cached_modules()
    }

    /// The actors running here.
    pub fn actors(&self) -> Vec<ActorIdentity> {
        let mut all: Vec<ActorIdentity> = read(&self.state.actors)
            .values()
            .map(|p| p.identity().clone())
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        all
    }

    /// Calls `operation` on a running actor.
    pub async fn invoke(
        &self,
        actor_id: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, HostError> {
        invoke(&self.state, actor_id, operation, payload).await
    }

    /// Starts a provider under `provider_id`, hands it the way to reach actors, and tells it
    /// of the links already naming it.
    pub async fn add_provider(
        &self,
        provider_id: &str,
        provider: Arc<dyn Provider>,
    ) -> Result<(), HostError> {
        if read(&self.state.providers).contains_key(provider_id) {
            return Err(HostError::ProviderRunning(provider_id.to_string()));
        }
        // A link it refuses is logged, not fatal: the others still work, and it may be put
        // again.
        for (link, error) in self.start_with_links(provider_id, &provider).await? {
            tracing::warn!(provider = provider_id, actor = %link.actor_id, %error, "provider refused a link it was started with");
        }
        write(&self.state.providers).insert(provider_id.to_string(), HostHeld::wrap(provider));
        tracing::info!(provider = provider_id, "provider started");
        self.serve_provider_on_lattice(provider_id).await
    }

    /// Starts `provider` and tells it of the links naming `provider_id`; returns the links
    /// it refused, with why.
    async fn start_with_links(
        &self,
        provider_id: &str,
        provider: &Arc<dyn Provider>,
    ) -> Result<Vec<(LinkDefinition, ProviderError)>, HostError> {
        let invoker = Arc::new(HostInvoker {
            host: Arc::downgrade(&self.state),
        });
        provider
            .start(invoker)
            .await
            .map_err(|source| HostError::Provider {
                provider_id: provider_id.to_string(),
                source,
            })?;
        let mut refused = Vec::new();
        for link in self
            .links()
            .into_iter()
            .filter(|l| l.provider_id == provider_id)
        {
            if let Err(error) = provider.put_link(&link).await {
                refused.push((link, error));
            }
        }
        Ok(refused)
    }

    /// Replaces the provider running here as `provider_id` with `new` without a failed call:
    /// the new one is started and told of its links, then takes every call from then on,
    /// local or from the lattice (whose subscriptions stay as they are); the old one finishes
    /// the calls it has before it is shut down. If the new one fails to start or refuses one
    /// of the links the old one serves, the old one keeps serving and nothing changes.
    pub async fn replace_provider(
        &self,
        provider_id: &str,
        new: Arc<dyn Provider>,
    ) -> Result<(), HostError> {
        let _one_at_a_time = self.state.updates.lock().await;
        self.provider(provider_id)?;
        let refused = self.start_with_links(provider_id, &new).await?;
        if let Some((_, source)) = refused.into_iter().next() {
            new.shutdown().await;
            return Err(HostError::Provider {
                provider_id: provider_id.to_string(),
                source,
            });
        }
        let replaced =
            write(&self.state.providers).insert(provider_id.to_string(), HostHeld::wrap(new));
        if let Some(old) = replaced {
            self.wait_for_calls_in_flight(provider_id, &old).await;
            old.shutdown().await;
        }
        tracing::info!(provider = provider_id, "provider replaced");
        Ok(())
    }

    /// Waits (up to the call deadline) until no call holds `provider` (a [`HostHeld`] taken
    /// out of the map) any more: each call, local or from the lattice, holds a clone for its
    /// length.
    async fn wait_for_calls_in_flight(&self, provider_id: &str, provider: &Arc<dyn Provider>) {
        let deadline = tokio::time::Instant::now() + self.call_deadline();
        while Arc::strong_count(provider) > 1 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    provider = provider_id,
                    "calls still in flight on the replaced provider after the call deadline"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops a provider running in this process: it takes no new calls, and answers the calls
    /// it took before it shuts down. Links naming it stay: calls through them fail, naming the
    /// provider, until one is started again under the same id.
    pub async fn stop_provider(&self, provider_id: &str) -> Result<(), HostError> {
        self.provider(provider_id)?;
        // The lattice's calls drain while it still serves them; then local calls stop.
        if let Some(serving) = self
            .state
            .lattice
            .get()
            .and_then(|m| m.stop_serving(&Served::Provider(provider_id.to_string())))
        {
            serving.drain().await;
        }
        let provider = write(&self.state.providers)
            .remove(provider_id)
            .ok_or_else(|| HostError::UnknownProvider(provider_id.to_string()))?;
        self.wait_for_calls_in_flight(provider_id, &provider).await;
        provider.shutdown().await;
        tracing::info!(provider = provider_id, "provider stopped");
        Ok(())
    }

    /// Puts a link: the provider is told first and may refuse; a link replaced for the same
    /// (actor, contract, link name) is deleted from its provider when that is another one.
    pub async fn put_link(&self, link: LinkDefinition) -> Result<(), HostError> {
        match (self.provider(&link.provider_id), self.state.lattice.get()) {
            (Ok(provider), _) => {
                provider
                    .put_link(&link)
                    .await
                    .map_err(|source| HostError::Provider {
                        provider_id: link.provider_id.clone(),
                        source,
                    })?
            }
            (Err(_), Some(membership)) => membership
                .tell_provider(&link, true, self.call_deadline())
                .await
                .map_err(|e| {
                    HostError::Lattice(format!(
                        "provider {} refused the link: {e}",
                        link.provider_id
                    ))
                })?,
            (Err(unknown), None) => return Err(unknown),
        }
        // The provider of a replaced link is told it is gone, unless it is the one just told
        // of the new link: for it, a put for a link it has is the replacement.
        let provider_id = link.provider_id.clone();
        if let Some(old) = self.state.links.put(link)
            && old.provider_id != provider_id
        {
            self.tell_link_deleted(&old).await;
        }
        Ok(())
    }

    /// Deletes a link; its provider is told. Calls through it fail from now on.
    pub async fn delete_link(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Result<(), HostError> {
        let old = self
            .state
            .links
            .delete(actor_id, contract_id, link_name)
            .ok_or_else(|| HostError::NoSuchLink {
                actor_id: actor_id.to_string(),
                contract_id: contract_id.to_string(),
                link_name: link_name.to_string(),
            })?;
        self.tell_link_deleted(&old).await;
        Ok(())
    }

    async fn tell_link_deleted(&self, link: &LinkDefinition) {
        let told = match (self.provider(&link.provider_id), self.state.lattice.get()) {
            (Ok(provider), _) => provider.delete_link(link).await.map_err(|e| e.to_string()),
            (Err(_), Some(membership)) => {
                membership
                    .tell_provider(link, false, self.call_deadline())
                    .await
            }
            (Err(_), None) => Ok(()),
        };
        if let Err(error) = told {
            tracing::warn!(provider = %link.provider_id, %error, "provider failed to drop a link");
        }
    }

    fn call_deadline(&self) -> Duration {
        Duration::from_millis(self.state.policy.limits.call_deadline_ms)
    }

    /// Every link in force.
    pub fn links(&self) -> Vec<LinkDefinition> {
        self.state.links.list()
    }

    fn provider(&self, provider_id: &str) -> Result<Arc<dyn Provider>, HostError> {
        read(&self.state.providers)
            .get(provider_id)
            .cloned()
            .ok_or_else(|| HostError::UnknownProvider(provider_id.to_string()))
    }

    /// Stops every actor and shuts every provider down.
    pub async fn shutdown(&self) {
        let stopped: Vec<(String, Arc<ActorPool>)> = write(&self.state.actors).drain().collect();
        for (actor_id, pool) in stopped {
            pool.close();
            if let Some(serving) = self
                .state
                .lattice
                .get()
                .and_then(|m| m.stop_serving(&Served::Actor(actor_id)))
            {
                serving.abort();
            }
        }
        let providers: Vec<String> = read(&self.state.providers).keys().cloned().collect();
        for provider_id in providers {
            if let Err(error) = self.stop_provider(&provider_id).await {
                tracing::warn!(provider = %provider_id, %error, "provider not stopped cleanly");
            }
        }
    }
}

/// Invokes a local actor, or, on a lattice, one another host runs.
async fn invoke(
    state: &HostState,
    actor_id: &str,
    operation: &str,
    payload: &[u8],
) -> Result<Vec<u8>, HostError> {
    let pool = read(&state.actors).get(actor_id).cloned();
    match (pool, state.lattice.get()) {
        (Some(pool), _) => Ok(pool.invoke(operation, payload).await?),
        (None, Some(membership)) => {
            let deadline = Duration::from_millis(state.policy.limits.call_deadline_ms);
            membership
                .invoke_remote(actor_id, operation, payload, deadline)
                .await
                .map_err(HostError::Lattice)
        }
        (None, None) => Err(HostError::UnknownActor(actor_id.to_string())),
    }
}

/// Answers an invocation that came from the lattice, with the local actor only.
async fn serve_invocation(
    state: &HostState,
    client: &async_nats::Client,
    actor_id: &str,
    message: &async_nats::Message,
) -> Answer {
    let deadline = Duration::from_millis(state.policy.limits.call_deadline_ms);
    let body = match lattice::receive(client, message, deadline).await {
        Ok(body) => body,
        Err(error) => return Answer::Err(error),
    };
    match lattice::decode::<ActorInvocation>(message.subject.as_str(), &body) {
        Ok(call) => invoke_local(state, actor_id, &call.operation, &call.payload)
            .await
            .into(),
        Err(error) => Answer::Err(error.to_string()),
    }
}

/// Invokes a local actor only: what serves invocations that came from the lattice.
async fn invoke_local(
    state: &HostState,
    actor_id: &str,
    operation: &str,
    payload: &[u8],
) -> Result<Vec<u8>, HostError> {
    let pool = read(&state.actors)
        .get(actor_id)
        .cloned()
        .ok_or_else(|| HostError::UnknownActor(actor_id.to_string()))?;
    Ok(pool.invoke(operation, payload).await?)
}

/// Calls `Actor.HealthRequest` (payload: an empty map) and requires `healthy: true`.
async fn check_health(pool: &ActorPool) -> Result<(), String> {
    let answer = pool
        .invoke(weft_contracts::actor::HEALTH_REQUEST, &[0x80])
        .await
        .map_err(|e| e.to_string())?;
    let health: weft_contracts::actor::HealthCheckResponse =
        weft_contracts::decode(&answer).map_err(|e| e.to_string())?;
    if health.healthy {
        Ok(())
    } else {
        Err(health
            .message
            .unwrap_or_else(|| "it reported itself unhealthy".into()))
    }
}

/// A provider as the host's map holds it. The `Arc` around it is the host's alone (whoever
/// added the provider may keep their own), so its count is the map plus the calls in flight:
/// what a replacement or a stop waits on.
struct HostHeld(Arc<dyn Provider>);

impl HostHeld {
    fn wrap(provider: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(HostHeld(provider))
    }
}

#[async_trait]
impl Provider for HostHeld {
    fn contract_id(&self) -> &str {
        self.0.contract_id()
    }
    async fn start(&self, host: Arc<dyn ActorInvoker>) -> Result<(), ProviderError> {
        self.0.start(host).await
    }
    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.0.put_link(link).await
    }
    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.0.delete_link(link).await
    }
    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        self.0.handle_call(call).await
    }
    async fn health(&self) -> weft_provider_sdk::Health {
        self.0.health().await
    }
    async fn shutdown(&self) {
        self.0.shutdown().await
    }
}

/// What providers get to reach actors: invoke, and nothing else of the host.
struct HostInvoker {
    host: Weak<HostState>,
}

#[async_trait]
impl ActorInvoker for HostInvoker {
    async fn invoke_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let state = self.host.upgrade().ok_or("the host has shut down")?;
        invoke(&state, actor_id, operation, &payload)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Routes host calls that passed the claims check: logging to the host's own log, everything
/// else by its link to a provider.
struct Router {
    host: Weak<HostState>,
}

#[async_trait]
impl Dispatch for Router {
    async fn dispatch(&self, call: HostCall<'_>) -> Result<Vec<u8>, String> {
        let state = self.host.upgrade().ok_or("the host has shut down")?;
        if call.contract == logging::CONTRACT_ID {
            return write_log(&call);
        }
        let link = state.links.get(call.actor, call.contract, call.link_name).ok_or_else(|| {
            format!(
                "actor {} has no link for {} on link '{}'; add one to the app manifest's links or \
                 run `weft link put {} {} PROVIDER_ID --link-name {}`",
                call.actor, call.contract, call.link_name, call.actor, call.contract, call.link_name
            )
        })?;
        let provider = read(&state.providers).get(&link.provider_id).cloned();
        let request = ProviderCall {
            actor_id: call.actor.to_string(),
            link: link.clone(),
            operation: call.operation.to_string(),
            payload: call.payload.to_vec(),
        };
        let deadline = provider_deadline(call.time_left);
        let provider = match (provider, state.lattice.get()) {
            (Some(provider), _) => provider,
            (None, Some(membership)) => {
                return membership
                    .call_provider(&request, deadline)
                    .await
                    .map_err(|e| format!("provider {}: {e}", link.provider_id));
            }
            (None, None) => {
                return Err(format!(
                    "actor {}'s link for {} names provider {}, which is not running on this host",
                    call.actor, call.contract, link.provider_id
                ));
            }
        };
        let answer = tokio::time::timeout(deadline, provider.handle_call(request)).await;
        match answer {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(error)) => Err(format!("provider {}: {error}", link.provider_id)),
            Err(_) => Err(format!(
                "provider {} did not answer {} within {} ms",
                link.provider_id,
                call.operation,
                deadline.as_millis()
            )),
        }
    }
}

/// What a provider leaves the calling actor: the actor's deadline is checked at epoch ticks,
/// so a provider that times out this much before it lets the actor handle the error and
/// answer, instead of being stopped for its deadline.
const ACTOR_MARGIN: Duration = Duration::from_millis(50);

/// How long a provider call may take, given what remains of the actor's deadline.
fn provider_deadline(time_left: Duration) -> Duration {
    time_left
        .saturating_sub(ACTOR_MARGIN)
        .max(Duration::from_millis(1))
}

fn write_log(call: &HostCall<'_>) -> Result<Vec<u8>, String> {
    if call.operation != logging::WRITE_LOG {
        return Err(format!(
            "{} has no operation {}",
            logging::CONTRACT_ID,
            call.operation
        ));
    }
    let entry: logging::LogEntry =
        weft_contracts::decode(call.payload).map_err(|e| e.to_string())?;
    let actor = call.actor;
    match entry.level.as_str() {
        "error" => tracing::error!(actor, "{}", entry.text),
        "warn" => tracing::warn!(actor, "{}", entry.text),
        "debug" => tracing::debug!(actor, "{}", entry.text),
        _ => tracing::info!(actor, "{}", entry.text),
    }
    Ok(Vec::new())
}
