//! The control interface's messages: requests, answers, inventories and events, MessagePack
//! like the rest of the lattice, the same on both transports (NATS and the local endpoint).

use crate::canary::{CanaryPlan, CanaryStatus};
use crate::health::HealthStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use weft_provider_sdk::LinkDefinition;

/// A running actor, as an inventory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorSummary {
    /// Its module key.
    pub id: String,
    /// The name in its claims.
    pub name: String,
    /// Its claims' revision.
    pub revision: Option<i32>,
    /// The contracts it is signed for.
    pub capabilities: Vec<String>,
    /// The ABI generation it was built for (`wascc`, `wasmcloud-0.18`, `wasmbus`).
    #[serde(default)]
    pub generation: String,
    /// How many of its calls run at once.
    pub max_instances: usize,
    /// Who made the last change to it through the control interface: an operator's key,
    /// `local` (the host's socket), or none (the host's own manifest).
    #[serde(default)]
    pub changed_by: Option<String>,
    /// Its health as the host's last round of checks found it (none before the first).
    #[serde(default)]
    pub health: Option<HealthStatus>,
    /// The canary of a new version of it running now, if one is.
    #[serde(default)]
    pub canary: Option<CanaryStatus>,
    /// What it served since it started (its canary's calls included), when the host keeps
    /// metrics.
    #[serde(default)]
    pub load: Option<crate::metrics::ActorLoad>,
}

/// A provider a host runs, in its process or as a supervised child process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSummary {
    /// Its id (what links name).
    pub id: String,
    /// Its kind (`http-server`, `keyvalue-redis`, ...).
    pub kind: String,
    /// Whether it runs as a child process of the host rather than in it.
    pub process: bool,
    /// Who made the last change to it through the control interface (as for actors).
    #[serde(default)]
    pub changed_by: Option<String>,
    /// As a child process: its process id now (none while it is being restarted).
    #[serde(default)]
    pub pid: Option<u32>,
    /// As a child process: how many times it was restarted.
    #[serde(default)]
    pub restarts: u32,
    /// As a child process: seconds the current process has run.
    #[serde(default)]
    pub uptime_secs: Option<u64>,
    /// Its health as the host's last round of checks found it (none before the first).
    #[serde(default)]
    pub health: Option<HealthStatus>,
}

/// What one host runs. Never carries a provider's config (it may hold secrets).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInventory {
    /// The host's id, a server nkey (`N…`).
    pub host_id: String,
    /// The lattice member it is (`X…`): where it is told to route a provider's calls.
    #[serde(default)]
    pub member_id: String,
    /// Its labels: the operator's, plus `os` and `arch`.
    pub labels: BTreeMap<String, String>,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Its actors.
    pub actors: Vec<ActorSummary>,
    /// Its providers.
    pub providers: Vec<ProviderSummary>,
    /// Its links.
    pub links: Vec<LinkDefinition>,
}

/// What an operator asks one host to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlRequest {
    /// What the host runs.
    Inventory,
    /// Start an actor from its module.
    StartActor {
        /// The signed module.
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
        /// Calls at once, instead of the host's default.
        max_instances: Option<usize>,
    },
    /// Stop an actor; its calls in flight finish.
    StopActor {
        /// Its module key.
        actor_id: String,
    },
    /// Hot-swap an actor to a new version of it.
    UpdateActor {
        /// Its module key.
        actor_id: String,
        /// The new version's signed module.
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
        /// Accept capabilities the running version lacks.
        allow_new_capabilities: bool,
        /// Accept a new version signed by another account.
        #[serde(default)]
        allow_new_issuer: bool,
        /// Run the new version as a canary, as this plan says, instead of switching every
        /// call to it at once.
        #[serde(default)]
        canary: Option<CanaryPlan>,
    },
    /// End the canary of an actor now: promote its new version, or roll it back.
    DecideCanary {
        /// The actor's module key.
        actor_id: String,
        /// Promote (else roll back).
        promote: bool,
    },
    /// Change how many calls of an actor run at once.
    ScaleActor {
        /// Its module key.
        actor_id: String,
        /// Calls at once.
        max_instances: usize,
    },
    /// Start a provider of a kind the host's factory knows, in the host's process.
    StartProvider {
        /// Its id.
        id: String,
        /// Its kind.
        kind: String,
        /// Its config.
        config: BTreeMap<String, String>,
        /// Run it as a child process of the host, supervised (restarted when it ends),
        /// instead of in the host's process.
        #[serde(default)]
        process: bool,
    },
    /// Replace a provider running in the host's process with a new instance of its kind:
    /// with `config` when given, else with the config it runs with.
    UpdateProvider {
        /// Its id.
        id: String,
        /// The new instance's config, if not the running one's.
        config: Option<BTreeMap<String, String>>,
    },
    /// Stop a provider running in the host's process.
    StopProvider {
        /// Its id.
        id: String,
    },
    /// Put a link (the same link put again changes nothing).
    PutLink(LinkDefinition),
    /// Delete a link.
    DeleteLink {
        /// The actor.
        actor_id: String,
        /// The contract.
        contract_id: String,
        /// The link name.
        link_name: String,
    },
    /// The host's audit trail: the changes it was asked for, and how each ended.
    Audit,
}

/// What a host did, when it worked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Done {
    /// What it runs.
    Inventory(Box<HostInventory>),
    /// The actor as it runs now.
    Actor(ActorSummary),
    /// Stopped.
    Stopped,
    /// The provider as it runs now.
    Provider(ProviderSummary),
    /// The link is in force.
    Linked,
    /// The link is gone.
    Unlinked,
    /// Nothing to do: the host already was as asked (a link put again unchanged).
    Unchanged,
    /// Its audit trail, oldest first.
    Audit(Vec<super::audit::AuditEntry>),
    /// What became of a canary.
    Canary(crate::canary::CanaryVerdict),
}

/// What happened on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs, reason = "each name says what happened")]
pub enum EventKind {
    HostStarted,
    HostStopped,
    HostHeartbeat,
    ActorStarted,
    ActorStopped,
    ActorUpdated,
    ActorScaled,
    ProviderStarted,
    ProviderUpdated,
    ProviderStopped,
    /// A provider that kept state in its memory was restarted without it (its process
    /// ended): what it held is gone.
    ProviderStateLost,
    LinkPut,
    LinkDeleted,
    /// An actor's health check found something wrong (a capability with no link, an
    /// unhealthy provider behind a link, its own health request failing); the detail says what.
    ActorUnhealthy,
    /// An actor is healthy again.
    ActorHealthy,
    /// A provider reports itself unhealthy, does not answer, or is gone.
    ProviderUnhealthy,
    /// A provider is healthy again.
    ProviderHealthy,
    /// The host's connection to the lattice is down (published once it is back up).
    LatticeUnhealthy,
    /// The host's connection to the lattice is up again.
    LatticeHealthy,
    /// A change the host was asked for was refused (the detail says what and why; a change
    /// done is an event of its own kind).
    ChangeRefused,
    /// A new version of an actor takes a share of its calls, on trial.
    CanaryStarted,
    /// A canary's new version serves every call now; the detail has the figures.
    CanaryPromoted,
    /// A canary's new version is gone (its figures were worse, an operator decided, or the
    /// actor was stopped); the detail says which, with the figures.
    CanaryRolledBack,
}

impl EventKind {
    /// Its name, as in the event's subject.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::HostStarted => "host_started",
            EventKind::HostStopped => "host_stopped",
            EventKind::HostHeartbeat => "host_heartbeat",
            EventKind::ActorStarted => "actor_started",
            EventKind::ActorStopped => "actor_stopped",
            EventKind::ActorUpdated => "actor_updated",
            EventKind::ActorScaled => "actor_scaled",
            EventKind::ProviderStarted => "provider_started",
            EventKind::ProviderUpdated => "provider_updated",
            EventKind::ProviderStopped => "provider_stopped",
            EventKind::ProviderStateLost => "provider_state_lost",
            EventKind::LinkPut => "link_put",
            EventKind::LinkDeleted => "link_deleted",
            EventKind::ActorUnhealthy => "actor_unhealthy",
            EventKind::ActorHealthy => "actor_healthy",
            EventKind::ProviderUnhealthy => "provider_unhealthy",
            EventKind::ProviderHealthy => "provider_healthy",
            EventKind::LatticeUnhealthy => "lattice_unhealthy",
            EventKind::LatticeHealthy => "lattice_healthy",
            EventKind::ChangeRefused => "change_refused",
            EventKind::CanaryStarted => "canary_started",
            EventKind::CanaryPromoted => "canary_promoted",
            EventKind::CanaryRolledBack => "canary_rolled_back",
        }
    }
}

/// One event: its kind, the host, when (Unix milliseconds), and what it is about (an actor,
/// a provider, a link) in words.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// On which host.
    pub host_id: String,
    /// When, Unix milliseconds.
    pub at_unix_ms: u64,
    /// What it is about: an actor, a provider or the host.
    pub subject: String,
    /// In words.
    pub detail: String,
    /// Who made it: the operator key that signed the request, `local` (the local endpoint),
    /// or the host's own id.
    #[serde(default)]
    pub by: String,
}

/// A revision as printed: its number, or `-`.
pub fn revision(revision: Option<i32>) -> String {
    revision.map_or("-".into(), |r| r.to_string())
}
