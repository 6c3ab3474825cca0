//! A host's membership of a lattice (subjects and wire in `weft_provider_sdk::lattice`).
//!
//! Once joined, the host serves each actor it runs on the actor's subject, in the queue group
//! every host running that actor shares, so a lattice invocation goes to exactly one of them.
//! What the host cannot serve itself goes out over NATS: a host call whose link names a
//! provider not running in this process, a link put or delete for such a provider, and an
//! invocation of an actor this host does not run.
//!
//! Invocations that arrive from the lattice are served only by local actors, never forwarded
//! again, so a message cannot circle between hosts.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::task::AbortHandle;
use weft_provider_sdk::lattice::{self, ActorInvocation, ProviderInvocation, Subjects};
use weft_provider_sdk::{LinkDefinition, ProviderCall};

/// What a host serves on the lattice: an actor it runs, or a provider in its process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Served {
    Actor(String),
    Provider(String),
}

/// The host's side of a lattice: its NATS client, and the subscriptions serving each actor
/// and provider.
pub(crate) struct Membership {
    pub(crate) client: async_nats::Client,
    pub(crate) subjects: Subjects,
    pub(crate) name: String,
    serving: Mutex<HashMap<Served, AbortHandle>>,
}

impl Membership {
    pub(crate) fn new(client: async_nats::Client, lattice: &str) -> Self {
        Membership {
            client,
            subjects: Subjects::new(lattice),
            name: lattice.to_string(),
            serving: Mutex::new(HashMap::new()),
        }
    }

    /// Records the task serving `what`, ending the one it replaces.
    pub(crate) fn serving(&self, what: Served, task: AbortHandle) {
        let replaced = self
            .serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(what, task);
        if let Some(old) = replaced {
            old.abort();
        }
    }

    /// Stops serving `what` on the lattice (its subscriptions end with the task).
    pub(crate) fn stop_serving(&self, what: &Served) {
        if let Some(task) = self
            .serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(what)
        {
            task.abort();
        }
    }

    /// An actor's call to a provider in another process.
    pub(crate) async fn call_provider(
        &self,
        call: &ProviderCall,
        deadline: Duration,
    ) -> Result<Vec<u8>, String> {
        let subject = self.subjects.provider_calls(&call.link.provider_id);
        let invocation = ProviderInvocation {
            actor_id: call.actor_id.clone(),
            link: (*call.link).clone(),
            operation: call.operation.clone(),
            payload: call.payload.clone(),
        };
        let body = lattice::encode(&subject, &invocation).map_err(|e| e.to_string())?;
        lattice::request(&self.client, subject, body, deadline).await
    }

    /// Tells a provider in another process of a link put (`put`) or deleted.
    pub(crate) async fn tell_provider(
        &self,
        link: &LinkDefinition,
        put: bool,
        deadline: Duration,
    ) -> Result<(), String> {
        let subject = if put {
            self.subjects.provider_link_put(&link.provider_id)
        } else {
            self.subjects.provider_link_del(&link.provider_id)
        };
        let body = lattice::encode(&subject, link).map_err(|e| e.to_string())?;
        lattice::request(&self.client, subject, body, deadline)
            .await
            .map(|_| ())
    }

    /// Invokes an actor some other host runs.
    pub(crate) async fn invoke_remote(
        &self,
        actor_id: &str,
        operation: &str,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<Vec<u8>, String> {
        let invocation = ActorInvocation {
            operation: operation.to_string(),
            payload: payload.to_vec(),
            origin: "host".into(),
        };
        lattice::invoke_actor(&self.client, &self.subjects, actor_id, invocation, deadline).await
    }
}
