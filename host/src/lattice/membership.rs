//! The host's membership: its NATS client, the subscriptions serving each actor and provider
//! it has, and a batched caller for each provider in another process that its actors call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_lattice::calls::ProviderCaller;
use weft_lattice::{self as lattice, ActorInvocation, Member, ProviderInvocation, Subjects};
use weft_provider_sdk::{Failure, LinkDefinition, ProviderCall};

/// What a host serves on the lattice: an actor it runs, or a provider in its process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Served {
    Actor(String),
    Provider(String),
    /// Provider processes' requests for links.
    LinkRequests,
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
    /// This host as a member: its client, its seal, the keys of the members it heard from.
    pub(crate) member: Arc<Member>,
    pub(crate) client: async_nats::Client,
    pub(crate) subjects: Subjects,
    pub(crate) name: String,
    serving: Mutex<HashMap<Served, Serving>>,
    callers: Mutex<HashMap<String, Arc<ProviderCaller>>>,
    /// The host's call deadline, which also bounds each pull of a chunked answer.
    pub(crate) call_deadline: Duration,
}

impl Membership {
    /// `call_deadline`: the host's, which also bounds each pull of a chunked answer.
    pub(crate) fn new(member: Arc<Member>, lattice: &str, call_deadline: Duration) -> Self {
        Membership {
            client: member.client().clone(),
            subjects: member.subjects().clone(),
            member,
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
    /// actors here make to it at the same moment: `weft_lattice::calls`).
    pub(crate) async fn call_provider(
        &self,
        call: &ProviderCall,
        deadline: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let invocation = ProviderInvocation {
            link: call.link.key(),
            operation: call.operation.clone(),
            payload: call.payload.clone(),
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
        };
        self.caller(&call.link.provider_id)
            .await?
            .call(&invocation, deadline)
            .await
    }

    /// The caller for `provider_id`, started at its first call.
    async fn caller(&self, provider_id: &str) -> Result<Arc<ProviderCaller>, Failure> {
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
            self.member.clone(),
            self.subjects.provider_calls(provider_id),
            self.call_deadline,
        )
        .await?;
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
    ) -> Result<(), Failure> {
        let subject = if put {
            self.subjects.provider_link_put(&link.provider_id)
        } else {
            self.subjects.provider_link_del(&link.provider_id)
        };
        let body = lattice::encode(&subject, link)?;
        lattice::request(&self.member, subject, body, deadline)
            .await
            .map(|_| ())
    }

    /// Invokes an actor some other host runs; it gets `deadline` for the whole call.
    pub(crate) async fn invoke_remote(
        &self,
        actor_id: &str,
        operation: &str,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let invocation = ActorInvocation {
            operation: operation.to_string(),
            payload: payload.to_vec(),
            origin: "host".into(),
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
        };
        lattice::invoke_actor(&self.member, actor_id, invocation, deadline).await
    }
}
