//! What can go wrong asking a host for something, and why an update was refused.

use crate::actor::LoadError;
use crate::engine::EngineError;
use weft_provider_sdk::ProviderError;

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
    /// The new module was signed by another account than the running one.
    #[error(
        "the new module is signed by {new}, not by the running version's issuer {old}; an \
         update keeps the issuer (sign it with the same account, or let the operator allow a new \
         issuer explicitly)"
    )]
    IssuerChanged {
        /// The running version's issuer.
        old: String,
        /// The new module's issuer.
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
    /// A canary of the actor runs: one new version at a time.
    #[error(
        "a canary of revision {canary} is running; wait for its verdict, or end it with \
         `weft ctl canary promote|rollback`"
    )]
    CanaryRunning {
        /// The canary's revision.
        canary: String,
    },
    /// The canary's plan is out of bounds.
    #[error("{0}")]
    CanaryPlan(String),
    /// The actor was stopped while its new version was being readied.
    #[error("the actor was stopped while its new version was being readied")]
    Stopped,
}

/// What can go wrong asking the host for something (calls themselves fail with
/// [`crate::InvokeError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The engine could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An actor was refused.
    #[error("actor refused: {0}")]
    Load(#[from] LoadError),
    /// No actor with that id runs here.
    #[error("no actor {0} runs on this host; start it first (`weft up` with it in the manifest)")]
    UnknownActor(String),
    /// Serving on the lattice failed (a subscription, NATS down).
    #[error("over the lattice: {0}")]
    Lattice(String),
    /// A provider's calls could not be handed over to its new instance on the lattice.
    #[error("provider {provider_id} was not handed over to its new instance: {reason}")]
    NotHandedOver {
        /// The provider's id.
        provider_id: String,
        /// What failed (a link refused, hosts that did not confirm).
        reason: String,
    },
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
    /// A provider failed to start.
    #[error("provider {provider_id}: {source}")]
    Provider {
        /// The provider.
        provider_id: String,
        /// What it said.
        #[source]
        source: ProviderError,
    },
    /// An actor allowed no instance, or more than the engine has slots for.
    #[error(
        "{asked} instances is outside 1..={slots}: the host has {slots} instance slots for all its actors"
    )]
    Instances {
        /// What was asked.
        asked: usize,
        /// The engine's slots.
        slots: usize,
    },
    /// A link for a contract the actor is not signed for: it could neither call it nor be
    /// called through it.
    #[error(
        "actor {actor_id} is not signed for {contract_id} (its claims name {claimed}); \
         a link for it is refused: sign the actor with that capability"
    )]
    ContractNotClaimed {
        /// The actor.
        actor_id: String,
        /// The link's contract.
        contract_id: String,
        /// What its claims name.
        claimed: String,
    },
    /// A provider (here or on the lattice) refused a link.
    #[error("provider {provider_id} refused the link: {source}")]
    LinkRefused {
        /// The provider.
        provider_id: String,
        /// What it (or the way to it) said.
        #[source]
        source: ProviderError,
    },
    /// A replacement could not take over the running provider's in-memory state; the running
    /// one keeps serving, its state intact.
    #[error(
        "provider {provider_id} was not replaced: the new instance cannot take over the state the running one keeps in memory ({source}); the running one keeps serving"
    )]
    StateNotTakenOver {
        /// The provider.
        provider_id: String,
        /// Why the new instance refused.
        #[source]
        source: ProviderError,
    },
    /// A link past the host's bounds on one link's size.
    #[error(
        "the link of actor {actor_id} for {contract_id} is refused: {reason}; keep large data elsewhere and name it in the link"
    )]
    LinkTooLarge {
        /// The actor.
        actor_id: String,
        /// The contract.
        contract_id: String,
        /// Which bound, by how much.
        reason: String,
    },
    /// The host holds as many links as it may.
    #[error("this host already holds {max} links, its most; delete links it no longer needs first")]
    TooManyLinks {
        /// The most it holds.
        max: usize,
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
    /// No canary of the actor runs.
    #[error(
        "no canary of actor {0} runs on this host; `weft ctl inventory` shows the ones that do"
    )]
    NoCanary(String),
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
