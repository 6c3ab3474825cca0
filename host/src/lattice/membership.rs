//! The host's membership: its NATS client, the subscriptions serving each actor and provider
//! it has, and where it routes each provider in another process that its actors call: one
//! instance of it, through a batched caller for that instance's subject.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_lattice::calls::ProviderCaller;
use weft_lattice::{
    self as lattice, ActorInvocation, Member, ProviderInvocation, RouteSwitch, Subjects,
};
use weft_provider_sdk::{Failure, LinkDefinition, ProviderCall};

/// What a host serves on the lattice: an actor it runs, or a provider in its process.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Served {
    Actor(String),
    Provider(String),
    /// Provider processes' requests for links.
    LinkRequests,
    /// Being told to route a provider's calls to another instance.
    RouteSwitches,
}

/// Where this host sends one provider id's calls: one instance of it (a member id), through a
/// caller for that instance's subject.
pub(crate) struct Route {
    pub(crate) instance: String,
    caller: ProviderCaller,
}

/// How long a host waits for an instance of a provider to say that it serves.
const FIND_WITHIN: Duration = Duration::from_secs(2);

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
    routes: Mutex<HashMap<String, Arc<Route>>>,
    /// One route found or switched at a time, so a route found from an answer that was
    /// already stale never replaces one a switch just made.
    routing: tokio::sync::Mutex<()>,
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
            routes: Mutex::new(HashMap::new()),
            routing: tokio::sync::Mutex::new(()),
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
    /// actors here make to it at the same moment: `weft_lattice::calls`), sent to the instance
    /// this host routes the id to. If that instance is gone (the server says nothing
    /// subscribes: the call reached no one), the host finds the one serving now and makes the
    /// call there, once, within what is left of `deadline`.
    pub(crate) async fn call_provider(
        &self,
        call: &ProviderCall,
        deadline: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let started = tokio::time::Instant::now();
        let invocation = ProviderInvocation {
            link: call.link.key(),
            operation: call.operation.clone(),
            payload: call.payload.clone(),
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            traceparent: lattice::trace::traceparent(),
        };
        let provider_id = &call.link.provider_id;
        let route = self.route(provider_id, deadline).await?;
        match route.caller.call(&invocation, deadline).await {
            Err(_) if route.caller.nothing_serves() => {
                self.forget_route(provider_id, &route);
                let left = deadline.saturating_sub(started.elapsed());
                let route = self.route(provider_id, left).await?;
                route.caller.call(&invocation, left).await
            }
            answered => answered,
        }
    }

    /// The route for `provider_id`: the one this host has, or one to the instance that says
    /// it serves (asked within `within`).
    async fn route(&self, provider_id: &str, within: Duration) -> Result<Arc<Route>, Failure> {
        match self.routed(provider_id) {
            Some(route) => Ok(route),
            // Boxed: finding an instance is a future of kilobytes, which every call (and the
            // box each provider call is made in) would otherwise carry and copy, though only
            // the first call to a provider takes it.
            None => Box::pin(self.new_route(provider_id, within)).await,
        }
    }

    /// A route to the instance of `provider_id` that answers first that it serves, made once
    /// for calls that find none at the same moment.
    async fn new_route(&self, provider_id: &str, within: Duration) -> Result<Arc<Route>, Failure> {
        let _one_at_a_time = self.routing.lock().await;
        if let Some(route) = self.routed(provider_id) {
            return Ok(route);
        }
        let instance = self.find_instance(provider_id, within).await?;
        let route = Arc::new(self.route_to(provider_id, &instance).await?);
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(provider_id.to_string(), route.clone());
        tracing::debug!(provider = provider_id, %instance, "calls routed to an instance");
        Ok(route)
    }

    fn routed(&self, provider_id: &str) -> Option<Arc<Route>> {
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider_id)
            .cloned()
    }

    /// Forgets `route` (not one that replaced it meanwhile).
    fn forget_route(&self, provider_id: &str, route: &Arc<Route>) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if routes
            .get(provider_id)
            .is_some_and(|r| Arc::ptr_eq(r, route))
        {
            routes.remove(provider_id);
        }
    }

    /// A caller for instance `instance` of `provider_id`.
    async fn route_to(&self, provider_id: &str, instance: &str) -> Result<Route, Failure> {
        let caller = ProviderCaller::start(
            self.member.clone(),
            self.subjects.provider_instance_calls(provider_id, instance),
            self.call_deadline,
        )
        .await?;
        Ok(Route {
            instance: instance.to_string(),
            caller,
        })
    }

    /// The instance of `provider_id` that answers first that it serves.
    async fn find_instance(&self, provider_id: &str, within: Duration) -> Result<String, Failure> {
        lattice::calls::find_instance(&self.member, provider_id, within.min(FIND_WITHIN))
            .await
            .map_err(|failure| {
                Failure::new(
                    failure.kind,
                    format!(
                        "no instance of provider {provider_id} serves on lattice {} ({failure}); \
                         start it (`weft provider run KIND --id {provider_id}`, or \
                         `weft ctl start provider --process`)",
                        self.name
                    ),
                )
            })
    }

    /// Routes `switch.provider_id`'s calls to `switch.instance` from now on, then waits (up
    /// to the call deadline) until every call sent to the instance it replaces is answered;
    /// `false` if some were not by then.
    pub(crate) async fn switch_route(&self, switch: &RouteSwitch) -> Result<bool, Failure> {
        let _one_at_a_time = self.routing.lock().await;
        if self
            .routed(&switch.provider_id)
            .is_some_and(|route| route.instance == switch.instance)
        {
            return Ok(true);
        }
        let route = Arc::new(self.route_to(&switch.provider_id, &switch.instance).await?);
        let replaced = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(switch.provider_id.clone(), route);
        tracing::info!(provider = %switch.provider_id, instance = %switch.instance, "calls switched to a new instance");
        Ok(match replaced {
            Some(old) => old.caller.settled(self.call_deadline).await,
            None => true,
        })
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

    /// Invokes an actor some other host runs, on `subject` (`Subjects::actor` or
    /// `Subjects::actor_alias`); it gets `deadline` for the whole call.
    pub(crate) async fn invoke_remote(
        &self,
        subject: &str,
        operation: &str,
        payload: &[u8],
        deadline: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let invocation = ActorInvocation {
            operation: operation.to_string(),
            payload: payload.to_vec(),
            origin: "host".into(),
            deadline_ms: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            traceparent: lattice::trace::traceparent(),
        };
        let body = lattice::encode(subject, &invocation)?;
        lattice::request(&self.member, subject.to_string(), body, deadline).await
    }
}
