//! The one control handler: a [`ControlRequest`] in, what the host did ([`Done`]) out, and
//! an event for each change once the host is on a lattice. Both transports call it.

use super::audit::{self, AuditEntry, AuditLog};
use super::wire::{
    ActorSummary, ControlRequest, Done, EventKind, HostInventory, ProviderSummary, revision,
};
use crate::clock::unix_ms;
use crate::health::Part;
use crate::{ActorIdentity, Host, HostError, UpdateOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;
use weft_provider_sdk::{LinkDefinition, Provider, async_trait};

/// Makes providers by kind: what lets a control request start or replace a provider in a
/// host that itself names no concrete provider. The `weft` binary hands in one that knows
/// the kinds it carries.
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    /// A new, unstarted provider of `kind` configured with `config`; `Err` says what is wrong
    /// (an unknown kind, a bad config) and never repeats a config value.
    fn provider(
        &self,
        kind: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn Provider>, String>;

    /// Starts a provider of `kind` as a child process serving the lattice as `id`, supervised
    /// (restarted when it ends); returns once it serves. Refused by default: only a host that
    /// can run provider processes (the `weft` binary on a lattice) starts them.
    async fn start_process(
        &self,
        id: &str,
        kind: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn ProviderProcess>, String> {
        let _ = (id, config);
        Err(format!(
            "this host does not run provider processes; start {kind} in its process instead"
        ))
    }
}

/// A provider running as a child process that this host supervises.
#[async_trait]
pub trait ProviderProcess: Send + Sync {
    /// Its process now, and its history.
    fn status(&self) -> ProcessStatus;
    /// Stops it and its supervision; it finishes the calls it took first.
    async fn stop(&self);
    /// The lattice member its process is now (the instance hosts route to); `None` while it
    /// is being restarted.
    fn instance(&self) -> Option<String>;
}

/// What a supervised provider process is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessStatus {
    /// Its process id; `None` while it is being restarted.
    pub pid: Option<u32>,
    /// How many times it was restarted.
    pub restarts: u32,
    /// When the current process started.
    pub running_since: Option<Instant>,
}

/// Why a control request was refused. The host is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The host refused (an actor that does not verify, an unknown id, an update refused…).
    #[error(transparent)]
    Host(#[from] HostError),
    /// The provider factory could not make the provider.
    #[error("{0}")]
    Factory(String),
    /// A module that arrived over the control interface carries no claims. The development
    /// switch for unsigned modules applies to a host's own manifest, never to code that
    /// arrives over the control interface.
    #[error(
        "the module carries no claims; modules sent over the control interface must be signed \
         (`weft claims sign`), whatever the host allows for its own manifest"
    )]
    Unsigned,
    /// No provider with that id was started through this host's control plane or manifest.
    #[error("this host runs no provider {0}")]
    UnknownProvider(String),
    /// A provider process that no host supervises is replaced by starting its replacement
    /// first; this many processes serve it now.
    #[error(
        "no host supervises provider {id}, and {serving} process(es) of it answered: start its \
         replacement first (`weft provider run KIND --id {id}`, with the new binary or \
         settings), then run this again to move the lattice's calls to it and stop the old one"
    )]
    NoReplacement {
        /// The provider's id.
        id: String,
        /// How many of its processes answered.
        serving: usize,
    },
    /// A process the host does not supervise takes its settings from whoever starts it.
    #[error(
        "provider {0} is a process this host does not supervise, so its settings are its own: \
         start its replacement with the new ones, then update without --config"
    )]
    ConfigOfStandalone(String),
    /// A provider process holds what a new process cannot take over (data in memory,
    /// subscriptions).
    #[error(
        "provider {id} ({kind}) is not replaced by a new process: {reason}. Run it in the \
         host's process (process = false) to replace it live, or stop it and start it again"
    )]
    InProcessOnly {
        /// The provider's id.
        id: String,
        /// Its kind.
        kind: String,
        /// What it holds.
        reason: String,
    },
    /// A supervised provider process's replacement did not come up as a member.
    #[error("the replacement of provider {0} is not on the lattice; the old process keeps serving")]
    ReplacementNotServing(String),
    /// A provider with that id runs here already.
    #[error("provider {0} runs on this host already; stop it first, or update it")]
    ProviderRunning(String),
    /// The actor stopped while the request was being carried out.
    #[error("actor {0} stopped while the request was carried out")]
    Vanished(String),
    /// An operator's decision on a canary was taken but not carried out in time.
    #[error(
        "the decision on the canary of actor {0} is taken but not carried out yet; \
         `weft ctl inventory` shows when it is"
    )]
    DecisionPending(String),
}

/// A provider this host runs, as started: its kind, and the config it was started with
/// (kept here for a replacement; never in an inventory, since it may hold secrets).
#[derive(Clone)]
pub(super) struct RunningProvider {
    pub(super) summary: ProviderSummary,
    config: BTreeMap<String, String>,
    /// As a child process: its supervision.
    pub(super) process: Option<Arc<dyn ProviderProcess>>,
}

/// A host's control plane: what it runs, and how a request changes that.
pub struct Control {
    host: Host,
    factory: Arc<dyn ProviderFactory>,
    host_id: String,
    labels: BTreeMap<String, String>,
    started: Instant,
    providers: Mutex<BTreeMap<String, RunningProvider>>,
    /// Who made the last change to each actor or provider (by id): the audit trail that
    /// inventories show.
    pub(super) changed_by: Mutex<BTreeMap<String, String>>,
    /// The lattice member events are published as, once on a lattice.
    pub(super) events: OnceLock<Arc<weft_lattice::Member>>,
    /// The changes it was asked for, and how each ended.
    pub(super) audit: AuditLog,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("host_id", &self.host_id)
            .finish_non_exhaustive()
    }
}

/// Refuses a module with no claims before the host sees it (the host verifies the claims of
/// one that has them, as for any other module).
fn require_claims(module: &[u8]) -> Result<(), ControlError> {
    match wascap::extract_token(module) {
        Ok(Some(_)) => Ok(()),
        // Unreadable modules are the host's to refuse, with its own reason.
        Err(_) => Ok(()),
        Ok(None) => Err(ControlError::Unsigned),
    }
}

impl Control {
    /// The control plane of `host`, under a fresh host id (a server nkey, `N…`), with the
    /// operator's `labels` plus the machine's `os` and `arch`.
    pub fn new(
        host: Host,
        factory: Arc<dyn ProviderFactory>,
        mut labels: BTreeMap<String, String>,
    ) -> Self {
        labels
            .entry("os".into())
            .or_insert_with(|| std::env::consts::OS.into());
        labels
            .entry("arch".into())
            .or_insert_with(|| std::env::consts::ARCH.into());
        Control {
            host,
            factory,
            host_id: nkeys::KeyPair::new_server().public_key(),
            labels,
            started: Instant::now(),
            providers: Mutex::new(BTreeMap::new()),
            changed_by: Mutex::new(BTreeMap::new()),
            events: OnceLock::new(),
            audit: AuditLog::default(),
        }
    }

    /// The host's id on the lattice.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// The host it controls.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// What makes its providers.
    pub(super) fn factory(&self) -> &dyn ProviderFactory {
        &*self.factory
    }

    /// Records a provider started outside a control request (by an app manifest, in process
    /// or as a child process), so inventories show it and requests can replace it.
    pub fn record_provider(&self, summary: ProviderSummary, config: BTreeMap<String, String>) {
        self.providers_lock().insert(
            summary.id.clone(),
            RunningProvider {
                summary,
                config,
                process: None,
            },
        );
    }

    /// Records a provider the host runs as a child process, with its supervision (which a
    /// stop request ends).
    pub fn record_process(
        &self,
        summary: ProviderSummary,
        config: BTreeMap<String, String>,
        process: Arc<dyn ProviderProcess>,
    ) {
        self.providers_lock().insert(
            summary.id.clone(),
            RunningProvider {
                summary,
                config,
                process: Some(process),
            },
        );
    }

    /// Stops every provider process this host supervises (as it stops).
    pub async fn stop_processes(&self) {
        let processes: Vec<_> = self
            .providers_lock()
            .values()
            .filter_map(|running| running.process.clone())
            .collect();
        for process in processes {
            process.stop().await;
        }
    }

    pub(super) fn providers_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, RunningProvider>> {
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends events to `client` on `subjects` from now on.
    pub(super) fn publish_events_to(&self, member: Arc<weft_lattice::Member>) {
        let _ = self.events.set(member);
    }

    /// What this host runs now.
    pub fn inventory(&self) -> HostInventory {
        let actors = self
            .host
            .actors()
            .into_iter()
            .map(|identity| self.summary(identity))
            .collect();
        HostInventory {
            host_id: self.host_id.clone(),
            member_id: self
                .host
                .lattice_member()
                .map(|member| member.id().to_string())
                .unwrap_or_default(),
            labels: self.labels.clone(),
            uptime_secs: self.started.elapsed().as_secs(),
            actors,
            providers: self
                .providers_lock()
                .values()
                .map(|running| {
                    let status = running
                        .process
                        .as_ref()
                        .map(|p| p.status())
                        .unwrap_or_default();
                    ProviderSummary {
                        changed_by: self.changed_by(&running.summary.id),
                        pid: status.pid,
                        restarts: status.restarts,
                        uptime_secs: status.running_since.map(|at| at.elapsed().as_secs()),
                        health: self.host.health_of(Part::Provider, &running.summary.id),
                        ..running.summary.clone()
                    }
                })
                .collect(),
            // Secret values (by their keys, and URL passwords) shown masked: an inventory
            // is for reading what runs, not for learning its passwords.
            links: self
                .host
                .links()
                .into_iter()
                .map(|link| LinkDefinition {
                    values: weft_contracts::secret::shown_values(&link.values),
                    ..link
                })
                .collect(),
        }
    }

    pub(super) fn summary(&self, identity: ActorIdentity) -> ActorSummary {
        let max_instances = self
            .host
            .actor_pool(&identity.id)
            .map_or(0, |pool| pool.limits().max_instances);
        let changed_by = self.changed_by(&identity.id);
        let health = self.host.health_of(Part::Actor, &identity.id);
        ActorSummary {
            canary: self.host.canary_of(&identity.id),
            load: self.host.actor_load(&identity.id),
            id: identity.id,
            name: identity.name,
            revision: identity.revision,
            capabilities: identity.capabilities,
            generation: identity.generation.short_name().to_string(),
            max_instances,
            changed_by,
            health,
        }
    }

    /// Who made the last change to actor or provider `id` through this control plane.
    fn changed_by(&self, id: &str) -> Option<String> {
        self.changed_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Carries out one request made by `by`: the operator key that signed it, or `local` for
    /// the local endpoint (which its socket authenticates). Events name it; a change is kept
    /// in the audit trail however it ended, and one refused is a `change_refused` event.
    pub async fn handle(&self, request: ControlRequest, by: &str) -> Result<Done, ControlError> {
        let Some((action, target)) = audit::describe(&request) else {
            return self.carry_out(request, by).await;
        };
        let at_unix_ms = unix_ms();
        let result = self.carry_out(request, by).await;
        let (ok, said) = match &result {
            Ok(done) => (true, audit::done_in_words(done)),
            Err(error) => (false, error.to_string()),
        };
        if !ok {
            let detail = format!("{action} {target}: {said}");
            self.publish(EventKind::ChangeRefused, &target, detail, by)
                .await;
        }
        self.audit.record(AuditEntry {
            at_unix_ms,
            host_id: self.host_id().to_string(),
            by: by.to_string(),
            action: action.to_string(),
            target,
            ok,
            result: said,
        });
        result
    }

    /// The host's audit trail, oldest first.
    pub fn audit_trail(&self) -> Vec<AuditEntry> {
        self.audit.entries()
    }

    /// Carries `request` out (what [`Control::handle`] records in the audit trail).
    async fn carry_out(&self, request: ControlRequest, by: &str) -> Result<Done, ControlError> {
        let host = &self.host;
        match request {
            ControlRequest::Audit => Ok(Done::Audit(self.audit.entries())),
            ControlRequest::Inventory => Ok(Done::Inventory(Box::new(self.inventory()))),
            ControlRequest::StartActor {
                module,
                max_instances,
            } => {
                require_claims(&module)?;
                let identity = host.start_actor_with(&module, max_instances).await?;
                let detail = format!("{} revision {}", identity.name, revision(identity.revision));
                let id = identity.id.clone();
                let summary = self.summary(identity);
                self.publish(EventKind::ActorStarted, &id, detail, by).await;
                Ok(Done::Actor(summary))
            }
            ControlRequest::StopActor { actor_id } => {
                host.stop_actor(&actor_id)?;
                self.publish(EventKind::ActorStopped, &actor_id, String::new(), by)
                    .await;
                Ok(Done::Stopped)
            }
            ControlRequest::UpdateActor {
                actor_id,
                module,
                allow_new_capabilities,
                allow_new_issuer,
                canary,
            } => {
                require_claims(&module)?;
                let options = UpdateOptions {
                    allow_new_capabilities,
                    allow_new_issuer,
                    ..UpdateOptions::default()
                };
                if let Some(plan) = canary {
                    return self
                        .start_canary(&actor_id, &module, options, plan, by)
                        .await;
                }
                let identity = host.update_actor(&actor_id, &module, options).await?;
                let detail = format!(
                    "{} now revision {}",
                    identity.name,
                    revision(identity.revision)
                );
                let summary = self.summary(identity);
                self.publish(EventKind::ActorUpdated, &actor_id, detail, by)
                    .await;
                Ok(Done::Actor(summary))
            }
            ControlRequest::DecideCanary { actor_id, promote } => {
                self.decide_canary(&actor_id, promote).await
            }
            ControlRequest::ScaleActor {
                actor_id,
                max_instances,
            } => {
                host.scale_actor(&actor_id, max_instances)?;
                let identity = host
                    .actor_pool(&actor_id)
                    .map(|pool| pool.identity().clone())
                    .ok_or_else(|| ControlError::Vanished(actor_id.clone()))?;
                let summary = self.summary(identity);
                let detail = format!("max {} instance(s)", summary.max_instances);
                self.publish(EventKind::ActorScaled, &actor_id, detail, by)
                    .await;
                Ok(Done::Actor(summary))
            }
            ControlRequest::StartProvider {
                id,
                kind,
                config,
                process,
            } => {
                if self.providers_lock().contains_key(&id) {
                    return Err(ControlError::ProviderRunning(id));
                }
                let summary = ProviderSummary {
                    id: id.clone(),
                    kind: kind.clone(),
                    process,
                    changed_by: Some(by.to_string()),
                    ..ProviderSummary::default()
                };
                if process {
                    let supervised = self
                        .factory
                        .start_process(&id, &kind, &config)
                        .await
                        .map_err(ControlError::Factory)?;
                    self.record_process(summary.clone(), config, supervised);
                } else {
                    let provider = self
                        .factory
                        .provider(&kind, &config)
                        .map_err(ControlError::Factory)?;
                    host.add_provider(&id, provider).await?;
                    self.record_provider(summary.clone(), config);
                }
                self.publish(EventKind::ProviderStarted, &id, kind, by)
                    .await;
                Ok(Done::Provider(summary))
            }
            ControlRequest::UpdateProvider { id, config } => {
                let running = self.providers_lock().get(&id).cloned();
                let Some(running) = running else {
                    if config.is_some() {
                        return Err(ControlError::ConfigOfStandalone(id));
                    }
                    return self.replace_standalone(&id, by).await;
                };
                let config = config.unwrap_or(running.config);
                if let Some(old) = running.process {
                    return self.replace_process(running.summary, config, old, by).await;
                }
                let provider = self
                    .factory
                    .provider(&running.summary.kind, &config)
                    .map_err(ControlError::Factory)?;
                host.replace_provider(&id, provider).await?;
                let summary = running.summary;
                self.record_provider(summary.clone(), config);
                self.publish(EventKind::ProviderUpdated, &id, summary.kind.clone(), by)
                    .await;
                Ok(Done::Provider(summary))
            }
            ControlRequest::StopProvider { id } => {
                let running = self.providers_lock().get(&id).cloned();
                match running.and_then(|r| r.process) {
                    Some(process) => process.stop().await,
                    None => host.stop_provider(&id).await?,
                }
                self.providers_lock().remove(&id);
                self.publish(EventKind::ProviderStopped, &id, String::new(), by)
                    .await;
                Ok(Done::Stopped)
            }
            ControlRequest::PutLink(link) => {
                if host.links().contains(&link) {
                    return Ok(Done::Unchanged);
                }
                // The values are not in the event: they may hold secrets.
                let detail = format!(
                    "→ {} ({}, link {:?})",
                    link.provider_id, link.contract_id, link.link_name
                );
                let actor = link.actor_id.clone();
                host.put_link(link).await?;
                self.publish(EventKind::LinkPut, &actor, detail, by).await;
                Ok(Done::Linked)
            }
            ControlRequest::DeleteLink {
                actor_id,
                contract_id,
                link_name,
            } => {
                host.delete_link(&actor_id, &contract_id, &link_name)
                    .await?;
                let detail = format!("{contract_id} link {link_name:?}");
                self.publish(EventKind::LinkDeleted, &actor_id, detail, by)
                    .await;
                Ok(Done::Unlinked)
            }
        }
    }
}
