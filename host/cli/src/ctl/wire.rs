//! The control interface's wire: subjects, requests, answers and events, MessagePack like the
//! rest of the lattice (bodies over NATS's max payload are chunked by
//! `weft_lattice`, so a module of any size can be started or updated).
//!
//! | subject | who listens | body | answer |
//! |---|---|---|---|
//! | `weft.{lattice}.ctl.ping` | every host | empty | [`HostInventory`] (one per host) |
//! | `weft.{lattice}.ctl.host.{host_id}` | that host | [`ControlRequest`] | `Answer` around [`Done`] |
//! | `weft.{lattice}.evt.{kind}` | `weft ctl watch` | | [`Event`], published by hosts |

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use weft_provider_sdk::LinkDefinition;

/// An actor as the inventory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorEntry {
    pub id: String,
    pub name: String,
    pub revision: Option<i32>,
    pub capabilities: Vec<String>,
    pub max_instances: usize,
}

/// A provider a host runs, in its process or as a supervised child process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEntry {
    pub id: String,
    pub kind: String,
    pub process: bool,
}

/// What one host runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInventory {
    pub host_id: String,
    pub labels: BTreeMap<String, String>,
    pub uptime_secs: u64,
    pub actors: Vec<ActorEntry>,
    pub providers: Vec<ProviderEntry>,
    pub links: Vec<LinkDefinition>,
}

/// What an operator asks one host to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControlRequest {
    StartActor {
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
        max_instances: Option<usize>,
    },
    StopActor {
        actor_id: String,
    },
    UpdateActor {
        actor_id: String,
        #[serde(with = "serde_bytes")]
        module: Vec<u8>,
        allow_new_capabilities: bool,
    },
    ScaleActor {
        actor_id: String,
        max_instances: usize,
    },
    StartProvider {
        id: String,
        kind: String,
        config: BTreeMap<String, String>,
    },
    /// Replace a provider running in the host's process with a new instance of its kind:
    /// with `config` when given, else with the config it runs with.
    UpdateProvider {
        id: String,
        config: Option<BTreeMap<String, String>>,
    },
    StopProvider {
        id: String,
    },
    PutLink(LinkDefinition),
    DeleteLink {
        actor_id: String,
        contract_id: String,
        link_name: String,
    },
}

/// What a host did, when it worked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Done {
    Actor(ActorEntry),
    Stopped,
    Provider(ProviderEntry),
    Linked,
    Unlinked,
    /// Nothing to do: the lattice already was as asked (a link put again unchanged).
    Unchanged,
}

/// What happened on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    LinkPut,
    LinkDeleted,
}

impl EventKind {
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
            EventKind::LinkPut => "link_put",
            EventKind::LinkDeleted => "link_deleted",
        }
    }
}

/// One event: its kind, the host, when (Unix milliseconds), and what it is about (an actor,
/// a provider, a link) in words.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub host_id: String,
    pub at_unix_ms: u64,
    pub subject: String,
    pub detail: String,
}
