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
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_provider_sdk::lattice::{self, ActorInvocation, ProviderInvocation, Subjects};
use weft_provider_sdk::{LinkDefinition, ProviderCall};

/// What a host serves on the lattice: an actor it runs, or a provider in its process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Served {
    Actor(String),
    Provider(String),
}

/// The task serving one actor or provider on the lattice. A provider's can drain: asked to
/// stop, it unsubscribes and answers the calls already routed to it before it ends.
pub(crate) struct Serving {
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl Serving {
    /// A task that ends when aborted.
    pub(crate) fn until_aborted(task: JoinHandle<()>) -> Self {
        Serving { task, stop: None }
    }

    /// A task that drains and ends when `stop` is sent (or dropped).
    pub(crate) fn until_stopped(task: JoinHandle<()>, stop: oneshot::Sender<()>) -> Self {
        Serving {
            task,
            stop: Some(stop),
        }
    }

    /// Ends it now; messages it had not taken yet are lost.
    pub(crate) fn abort(self) {
        self.task.abort();
    }

    /// Ends it once what it took is answered, if it can drain; else now.
    pub(crate) async fn drain(self) {
        match self.stop {
            Some(stop) => {
                let _ = stop.send(());
                let _ = self.task.await;
            }
            None => self.task.abort(),
        }
    }
}

/// The host's side of a lattice: its NATS client, and the subscriptions serving each actor
/// and provider.
pub(crate) struct Membership {
    pub(crate) client: async_nats::Client,
    pub(crate) subjects: Subjects,
    pub(crate) name: String,
    serving: Mutex<HashMap<Served, Serving>>,
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

    /// Records the task serving `what`; returns the one it replaces, for the caller to end.
    #[must_use]
    pub(crate) fn serving(&self, what: Served, task: Serving) -> Option<Serving> {
        self.serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(what, task)
    }

    /// Takes the task serving `what` out, for the caller to end.
    #[must_use]
    pub(crate) fn stop_serving(&self, what: &Served) -> Option<Serving> {
        self.serving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(what)
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
