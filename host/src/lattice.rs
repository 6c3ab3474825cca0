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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_provider_sdk::calls::ProviderCaller;
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

/// The host's side of a lattice: its NATS client, the subscriptions serving each actor and
/// provider, and a caller for each provider in another process that actors here have called.
pub(crate) struct Membership {
    pub(crate) client: async_nats::Client,
    pub(crate) subjects: Subjects,
    pub(crate) name: String,
    serving: Mutex<HashMap<Served, Serving>>,
    callers: Mutex<HashMap<String, Arc<ProviderCaller>>>,
    call_deadline: Duration,
}

impl Membership {
    /// `call_deadline`: the host's, which also bounds each pull of a chunked answer.
    pub(crate) fn new(client: async_nats::Client, lattice: &str, call_deadline: Duration) -> Self {
        Membership {
            client,
            subjects: Subjects::new(lattice),
            name: lattice.to_string(),
            serving: Mutex::new(HashMap::new()),
            callers: Mutex::new(HashMap::new()),
            call_deadline,
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

    /// An actor's call to a provider in another process (coalesced with the calls other
    /// actors here make to it at the same moment: `weft_provider_sdk::calls`).
    pub(crate) async fn call_provider(
        &self,
        call: &ProviderCall,
        deadline: Duration,
    ) -> Result<Vec<u8>, String> {
        let invocation = ProviderInvocation {
            actor_id: call.actor_id.clone(),
            link: (*call.link).clone(),
            operation: call.operation.clone(),
            payload: call.payload.clone(),
        };
        self.caller(&call.link.provider_id)
            .await?
            .call(&invocation, deadline)
            .await
    }

    /// The caller for `provider_id`, started at its first call.
    async fn caller(&self, provider_id: &str) -> Result<Arc<ProviderCaller>, String> {
        let started = self
            .callers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider_id)
            .cloned();
        if let Some(caller) = started {
            return Ok(caller);
        }
        let caller = ProviderCaller::start(
            self.client.clone(),
            self.subjects.provider_calls(provider_id),
            self.call_deadline,
        )
        .await
        .map_err(|e| e.to_string())?;
        // Two first calls at once may both start one; the first recorded is kept.
        Ok(self
            .callers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(provider_id.to_string())
            .or_insert_with(|| Arc::new(caller))
            .clone())
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
