//! The host's side of the control interface: every `weft host` answers inventory pings,
//! carries out the control requests addressed to it, and publishes what it did as events,
//! with a heartbeat. It lives in the CLI, not in weft-host, because starting a provider by
//! kind needs the concrete providers, which only this binary links.

use super::revision;
use super::wire::{
    ActorEntry, ControlRequest, Done, Event, EventKind, HostInventory, ProviderEntry,
};
use anyhow::{Context, Result};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use weft_host::{Host, UpdateOptions};
use weft_lattice::{self as lattice, Answer};

/// How long a control request's parts may take to arrive (chunked modules).
const RECEIVE_DEADLINE: Duration = Duration::from_secs(30);

/// A provider this host runs, as started.
#[derive(Clone)]
struct RunningProvider {
    entry: ProviderEntry,
    config: BTreeMap<String, String>,
}

/// One host's control endpoint on the lattice.
pub struct ControlServer {
    host: Host,
    client: async_nats::Client,
    subjects: lattice::Subjects,
    host_id: String,
    labels: BTreeMap<String, String>,
    started: Instant,
    /// The providers this host runs, with their kinds and the config each was started with
    /// (the host itself knows only ids). The config stays here: it may hold secrets, and the
    /// inventory is readable by every member of the lattice.
    providers: Mutex<BTreeMap<String, RunningProvider>>,
}

/// A control request this host refused or could not read; the text says why.
fn refused(reason: String) -> Answer {
    Answer::failed(weft_provider_sdk::FailureKind::BadRequest, reason)
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ControlServer {
    /// A control endpoint for `host` on `lattice`, under a fresh host id (a server nkey, `N…`),
    /// with the operator's `labels` plus the machine's `os` and `arch`.
    pub fn new(
        host: Host,
        client: async_nats::Client,
        lattice: &str,
        mut labels: BTreeMap<String, String>,
    ) -> Self {
        labels
            .entry("os".into())
            .or_insert_with(|| std::env::consts::OS.into());
        labels
            .entry("arch".into())
            .or_insert_with(|| std::env::consts::ARCH.into());
        ControlServer {
            host,
            client,
            subjects: lattice::Subjects::new(lattice),
            host_id: nkeys::KeyPair::new_server().public_key(),
            labels,
            started: Instant::now(),
            providers: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Records a provider the manifest started (in process or as a child process).
    pub fn record_provider(&self, entry: ProviderEntry, config: BTreeMap<String, String>) {
        self.providers_lock()
            .insert(entry.id.clone(), RunningProvider { entry, config });
    }

    fn providers_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RunningProvider>> {
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes an event; a lost event is logged, never an error for the caller.
    pub async fn publish(&self, kind: EventKind, subject: &str, detail: String) {
        let event = Event {
            kind,
            host_id: self.host_id.clone(),
            at_unix_ms: unix_ms(),
            subject: subject.to_string(),
            detail,
        };
        let topic = self.subjects.event(kind.as_str());
        let sent = match lattice::encode(&topic, &event) {
            Ok(body) => self
                .client
                .publish(topic.clone(), body.into())
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = sent {
            tracing::warn!(%topic, %error, "event not published");
        }
    }

    /// What this host runs now.
    pub fn inventory(&self) -> HostInventory {
        let actors = self
            .host
            .actors()
            .into_iter()
            .map(|identity| self.actor_entry(identity))
            .collect();
        HostInventory {
            host_id: self.host_id.clone(),
            labels: self.labels.clone(),
            uptime_secs: self.started.elapsed().as_secs(),
            actors,
            providers: self
                .providers_lock()
                .values()
                .map(|running| running.entry.clone())
                .collect(),
            links: self.host.links(),
        }
    }

    /// Puts the links the lattice's other hosts have and this one lacks (by actor, contract
    /// and link name; its own links, from its manifest, win), so a host that joins a running
    /// lattice serves with the lattice's links, not none. Returns how many it put. A link
    /// that cannot be put is logged, not fatal.
    pub async fn adopt_links(&self, lattice: &str, wait: Duration) -> Result<usize> {
        let peers = super::inventories(&self.client, lattice, wait).await?;
        let key = |l: &weft_provider_sdk::LinkDefinition| {
            (
                l.actor_id.clone(),
                l.contract_id.clone(),
                l.link_name.clone(),
            )
        };
        let mut have: std::collections::BTreeSet<_> = self.host.links().iter().map(key).collect();
        let mut adopted = 0;
        for link in peers
            .into_iter()
            .filter(|peer| peer.host_id != self.host_id)
            .flat_map(|peer| peer.links)
        {
            if !have.insert(key(&link)) {
                continue;
            }
            let what = format!(
                "{} → {} ({})",
                link.actor_id, link.provider_id, link.contract_id
            );
            match self.host.put_link(link).await {
                Ok(()) => adopted += 1,
                Err(error) => {
                    tracing::warn!(link = %what, %error, "could not adopt a link of the lattice")
                }
            }
        }
        Ok(adopted)
    }

    /// Answers pings and control requests until the returned tasks are aborted, and beats
    /// every `heartbeat`. Returns once other members can reach it.
    pub async fn serve(
        self: Arc<Self>,
        heartbeat: Duration,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>> {
        let ping_subject = self.subjects.ping();
        let mut pings = self
            .client
            .subscribe(ping_subject.clone())
            .await
            .with_context(|| format!("cannot subscribe to {ping_subject}"))?;
        let host_subject = self.subjects.control_host(&self.host_id);
        let mut requests = self
            .client
            .subscribe(host_subject.clone())
            .await
            .with_context(|| format!("cannot subscribe to {host_subject}"))?;

        let server = self.clone();
        let answer_pings = tokio::spawn(async move {
            while let Some(ping) = pings.next().await {
                let answer = Answer::encoded(&ping.subject, &server.inventory());
                lattice::respond(&server.client, &ping, &answer).await;
            }
        });
        let server = self.clone();
        let serve_requests = tokio::spawn(async move {
            while let Some(message) = requests.next().await {
                // Each on its own task: a long update must not hold up a ping or a link.
                let server = server.clone();
                tokio::spawn(async move {
                    let answer = match server.receive(&message).await {
                        Ok(request) => match server.handle(request).await {
                            Ok(done) => Answer::encoded(&message.subject, &done),
                            Err(error) => refused(error),
                        },
                        Err(error) => refused(error),
                    };
                    lattice::respond(&server.client, &message, &answer).await;
                });
            }
        });
        let server = self.clone();
        let beat = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(heartbeat);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let inventory = server.inventory();
                let detail = format!(
                    "{} actor(s), {} provider(s), {} link(s), up {} s",
                    inventory.actors.len(),
                    inventory.providers.len(),
                    inventory.links.len(),
                    inventory.uptime_secs
                );
                server
                    .publish(EventKind::HostHeartbeat, &server.host_id, detail)
                    .await;
            }
        });
        lattice::round_trip(&self.client, Duration::from_secs(5)).await?;
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        self.publish(EventKind::HostStarted, &self.host_id, labels.join(" "))
            .await;
        Ok(vec![answer_pings, serve_requests, beat])
    }

    async fn receive(&self, message: &async_nats::Message) -> Result<ControlRequest, String> {
        let body = lattice::receive(&self.client, message, RECEIVE_DEADLINE)
            .await
            .map_err(|failure| failure.message)?;
        lattice::decode(&message.subject, &body).map_err(|e| e.to_string())
    }

    async fn handle(&self, request: ControlRequest) -> Result<Done, String> {
        let host = &self.host;
        match request {
            ControlRequest::StartActor {
                module,
                max_instances,
            } => {
                let identity = host
                    .start_actor_with(&module, max_instances)
                    .await
                    .map_err(|e| e.to_string())?;
                let entry = self.actor_entry(identity.clone());
                let detail = format!("{} revision {}", identity.name, revision(identity.revision));
                self.publish(EventKind::ActorStarted, &identity.id, detail)
                    .await;
                Ok(Done::Actor(entry))
            }
            ControlRequest::StopActor { actor_id } => {
                host.stop_actor(&actor_id).map_err(|e| e.to_string())?;
                self.publish(EventKind::ActorStopped, &actor_id, String::new())
                    .await;
                Ok(Done::Stopped)
            }
            ControlRequest::UpdateActor {
                actor_id,
                module,
                allow_new_capabilities,
            } => {
                let options = UpdateOptions {
                    allow_new_capabilities,
                    ..UpdateOptions::default()
                };
                let identity = host
                    .update_actor(&actor_id, &module, options)
                    .await
                    .map_err(|e| e.to_string())?;
                let detail = format!(
                    "{} now revision {}",
                    identity.name,
                    revision(identity.revision)
                );
                let entry = self.actor_entry(identity);
                self.publish(EventKind::ActorUpdated, &actor_id, detail)
                    .await;
                Ok(Done::Actor(entry))
            }
            ControlRequest::ScaleActor {
                actor_id,
                max_instances,
            } => {
                host.scale_actor(&actor_id, max_instances)
                    .map_err(|e| e.to_string())?;
                let identity = host
                    .actor_pool(&actor_id)
                    .map(|pool| pool.identity().clone())
                    .ok_or_else(|| format!("actor {actor_id} stopped while being scaled"))?;
                let entry = self.actor_entry(identity);
                let detail = format!("max {} instance(s)", entry.max_instances);
                self.publish(EventKind::ActorScaled, &actor_id, detail)
                    .await;
                Ok(Done::Actor(entry))
            }
            ControlRequest::StartProvider { id, kind, config } => {
                let provider =
                    crate::provider::by_kind(&kind, &config).map_err(|e| format!("{e:#}"))?;
                host.add_provider(&id, provider)
                    .await
                    .map_err(|e| e.to_string())?;
                let entry = ProviderEntry {
                    id: id.clone(),
                    kind: kind.clone(),
                    process: false,
                };
                self.record_provider(entry.clone(), config);
                self.publish(EventKind::ProviderStarted, &id, kind).await;
                Ok(Done::Provider(entry))
            }
            ControlRequest::UpdateProvider { id, config } => {
                let RunningProvider {
                    entry,
                    config: running_config,
                } = self
                    .providers_lock()
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("this host runs no provider {id}"))?;
                if entry.process {
                    return Err(format!(
                        "provider {id} runs as a child process of this host's manifest; \
                         restart the host to replace it, or run it in process to replace it live"
                    ));
                }
                let config = config.unwrap_or(running_config);
                let provider =
                    crate::provider::by_kind(&entry.kind, &config).map_err(|e| format!("{e:#}"))?;
                host.replace_provider(&id, provider)
                    .await
                    .map_err(|e| e.to_string())?;
                self.record_provider(entry.clone(), config);
                self.publish(EventKind::ProviderUpdated, &id, entry.kind.clone())
                    .await;
                Ok(Done::Provider(entry))
            }
            ControlRequest::StopProvider { id } => {
                if self
                    .providers_lock()
                    .get(&id)
                    .is_some_and(|p| p.entry.process)
                {
                    return Err(format!(
                        "provider {id} runs as a child process of this host's manifest; \
                         stop the host, or take it out of the manifest"
                    ));
                }
                host.stop_provider(&id).await.map_err(|e| e.to_string())?;
                self.providers_lock().remove(&id);
                self.publish(EventKind::ProviderStopped, &id, String::new())
                    .await;
                Ok(Done::Stopped)
            }
            ControlRequest::PutLink(link) => {
                if host.links().contains(&link) {
                    return Ok(Done::Unchanged);
                }
                let detail = format!(
                    "→ {} ({}, link {:?}) {:?}",
                    link.provider_id, link.contract_id, link.link_name, link.values
                );
                let actor = link.actor_id.clone();
                host.put_link(link).await.map_err(|e| e.to_string())?;
                self.publish(EventKind::LinkPut, &actor, detail).await;
                Ok(Done::Linked)
            }
            ControlRequest::DeleteLink {
                actor_id,
                contract_id,
                link_name,
            } => {
                host.delete_link(&actor_id, &contract_id, &link_name)
                    .await
                    .map_err(|e| e.to_string())?;
                let detail = format!("{contract_id} link {link_name:?}");
                self.publish(EventKind::LinkDeleted, &actor_id, detail)
                    .await;
                Ok(Done::Unlinked)
            }
        }
    }

    fn actor_entry(&self, identity: weft_host::actor::ActorIdentity) -> ActorEntry {
        let max_instances = self
            .host
            .actor_pool(&identity.id)
            .map_or(0, |pool| pool.limits().max_instances);
        ActorEntry {
            id: identity.id,
            name: identity.name,
            revision: identity.revision,
            capabilities: identity.capabilities,
            max_instances,
        }
    }

    /// Says goodbye on the lattice.
    pub async fn stopping(&self) {
        self.publish(EventKind::HostStopped, &self.host_id, String::new())
            .await;
        // Bounded: with NATS unreachable, a flush would wait for a reconnection forever.
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
    }
}
