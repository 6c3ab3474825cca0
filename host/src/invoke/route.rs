//! The last layer: who serves a host call that the claims and the policy allowed.
//!
//! - `wasmcloud:builtin:logging` and `wasmcloud:builtin:numbergen` are the host's own
//!   ([`super::builtins`]).
//! - A namespace that names an actor (its call alias or module key) goes to that actor: in
//!   this process when it runs here (the payload passed as it is, no network), else over the
//!   lattice; within what is left of the caller's deadline less [`ACTOR_MARGIN`], which
//!   travels with the call.
//! - Every other contract goes by the actor's link (actor, contract, link name) to the
//!   provider the link names, with the link itself (a provider keeps its values; the call
//!   carries no copy). That provider is in this process or, on a lattice, a proxy for the one
//!   that serves it elsewhere: the host hands out either behind the same `Provider` trait, so
//!   routing does not ask which.
//!
//! A provider must answer within the calling actor's deadline less [`ACTOR_MARGIN`], so the
//! actor still has time to handle the answer or the error instead of being stopped for its
//! deadline.

use super::builtins::{self, Builtins};
use super::provider_routes::{Found, ProviderRoute, ProviderRoutes};
use super::{HostCall, HostCallFuture, HostCalls, InvokeActor, InvokeError, refused};
use crate::limits::MIN_CALL_TIME_MS;
use crate::metrics::Metrics;
use std::sync::{Arc, Weak};
use std::time::Duration;
use weft_provider_sdk::{Failure, FailureKind, LinkDefinition, Provider, ProviderCall};

/// What a provider leaves the calling actor: the actor's deadline is checked at epoch ticks,
/// so a provider that times out this much before it lets the actor answer.
pub const ACTOR_MARGIN: Duration = Duration::from_millis(MIN_CALL_TIME_MS);
/// How much longer than the time it was given the host waits for a provider before cutting
/// it off: a provider that honours its time left reports its own error (naming what it waited
/// on) instead of the host's. Well inside [`ACTOR_MARGIN`].
pub const PROVIDER_GRACE: Duration = Duration::from_millis(20);

/// What routing asks of the host beyond its links and providers here (`ProviderRoutes`):
/// providers on the lattice (proxies), and actors here or there.
pub trait Routes: Send + Sync {
    /// The provider serving `provider_id` for this host, if any.
    fn provider(&self, provider_id: &str) -> Option<Arc<dyn Provider>>;
    /// The actor `target` (a call alias or a module key) names: the one running here, else
    /// (on a lattice) the hosts running it elsewhere.
    fn actor(&self, target: &str) -> Option<Callee>;
    /// Whether this host is on a lattice (where else an actor is looked for).
    fn on_lattice(&self) -> bool;
}

/// An actor another actor calls: its pool here (called directly: no boxed future on the
/// fast path), or the hosts running it elsewhere.
pub enum Callee {
    /// Running in this host.
    Local(Arc<crate::actor::ActorPool>),
    /// Run by other hosts of the lattice.
    Remote(Arc<dyn InvokeActor>),
}

/// Routes the host calls of every actor of one host.
pub struct Router {
    host: Weak<dyn Routes>,
    builtins: Builtins,
    metrics: Option<Arc<Metrics>>,
    /// Calls to providers here: resolved without the host (whose count every call would
    /// otherwise write, taking a reference to it).
    provider_routes: Arc<ProviderRoutes>,
}

impl Router {
    /// The router of the host `host` (held weakly: the host holds its router), counting
    /// provider calls in `metrics` if given; calls to providers in the host's process go by
    /// `provider_routes`.
    pub fn new(
        host: Weak<dyn Routes>,
        metrics: Option<Arc<Metrics>>,
        provider_routes: Arc<ProviderRoutes>,
    ) -> Self {
        Router {
            host,
            builtins: Builtins::default(),
            metrics,
            provider_routes,
        }
    }
}

impl HostCalls for Router {
    // Not `async fn`: where the call goes is decided without waiting, and a call to an actor
    // here then runs as its pool's own future, with no routing future around it (nor a span,
    // unless traces are recorded).
    fn host_call<'life0, 'life1, 'async_trait>(
        &'life0 self,
        call: HostCall<'life1>,
    ) -> HostCallFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let span = tracing::trace_span!(
            "actor.host_call",
            actor = call.actor,
            contract = call.contract,
            operation = call.operation
        );
        let routed = self.route(call);
        if span.is_disabled() {
            routed
        } else {
            Box::pin(tracing::Instrument::instrument(routed, span))
        }
    }
}

impl Router {
    /// Where `call` goes, as a future.
    fn route<'a>(&'a self, call: HostCall<'a>) -> HostCallFuture<'a> {
        if builtins::serves(call.contract) {
            return Box::pin(std::future::ready(self.builtins.call(&call)));
        }
        let is_provider_call = !super::names_an_actor(call.contract);
        let elsewhere = if is_provider_call {
            match self
                .provider_routes
                .route(call.actor, call.contract, call.link_name)
            {
                Found::Here(route) => return Box::pin(call_provider(route, call)),
                Found::Elsewhere(link) => Some(link),
                Found::NoLink => {
                    return refused(InvokeError::NoLink {
                        actor: call.actor.to_string(),
                        contract: call.contract.to_string(),
                        link_name: call.link_name.to_string(),
                    });
                }
            }
        } else {
            None
        };
        let Some(host) = self.host.upgrade() else {
            return refused(InvokeError::Stopping {
                actor: call.actor.to_string(),
            });
        };
        if let Some(link) = elsewhere {
            let metrics = self.metrics.clone();
            return Box::pin(async move {
                call_provider(
                    elsewhere_route(&*host, link, &call, metrics.as_deref())?,
                    call,
                )
                .await
            });
        }
        let Some(target) = host.actor(call.contract) else {
            return refused(InvokeError::NoActor {
                caller: call.actor.to_string(),
                target: call.contract.to_string(),
                lattice: if host.on_lattice() {
                    " or on the lattice"
                } else {
                    ""
                },
            });
        };
        // As for a provider: the callee ends early enough for the caller to answer.
        let deadline = call.deadline.less(ACTOR_MARGIN);
        match target {
            Callee::Local(pool) => Box::pin(async move {
                pool.invoke_within(call.operation, call.payload, deadline)
                    .await
            }),
            Callee::Remote(remote) => {
                Box::pin(async move { remote.invoke(call.operation, call.payload, deadline).await })
            }
        }
    }
}

/// The route of a call to a capability whose link (`link`, the calling actor's) names a
/// provider not in this process: the one the host reaches on the lattice.
fn elsewhere_route(
    host: &dyn Routes,
    link: Arc<LinkDefinition>,
    call: &HostCall<'_>,
    metrics: Option<&Metrics>,
) -> Result<Arc<ProviderRoute>, InvokeError> {
    let provider = host
        .provider(&link.provider_id)
        .ok_or_else(|| InvokeError::Provider {
            provider: link.provider_id.clone(),
            failure: Failure::new(
                FailureKind::Unavailable,
                format!(
                    "actor {}'s link for {} names it, and it is not running on this host",
                    call.actor, call.contract
                ),
            ),
        })?;
    let metrics = metrics.map(|metrics| metrics.provider(&link.provider_id, call.contract));
    Ok(Arc::new(ProviderRoute {
        link,
        provider,
        metrics,
    }))
}

/// A call to a capability, by its route (the calling actor's link to the provider it names);
/// counted in the route's metrics once it reaches the provider.
async fn call_provider(
    route: Arc<ProviderRoute>,
    call: HostCall<'_>,
) -> Result<Vec<u8>, InvokeError> {
    let provider_id = &route.link.provider_id;
    let failed = |failure: Failure| InvokeError::Provider {
        provider: provider_id.clone(),
        failure,
    };
    let time_left = call
        .deadline
        .less(ACTOR_MARGIN)
        .remaining()
        .max(Duration::from_millis(1));
    let request = ProviderCall {
        actor_id: call.actor.to_string(),
        link: route.link.clone(),
        operation: call.operation.to_string(),
        payload: call.payload.to_vec(),
        time_left,
    };
    let cut_off = time_left + PROVIDER_GRACE;
    let started = route.metrics.as_ref().map(|_| std::time::Instant::now());
    let span = tracing::trace_span!("provider.call", provider = %provider_id, contract = call.contract, operation = call.operation);
    let handled = super::deadline::cut_off(cut_off, route.provider.handle_call(request));
    let handled = if span.is_disabled() {
        handled.await
    } else {
        tracing::Instrument::instrument(handled, span).await
    };
    let answer = match handled {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(failed(error.into())),
        Err(_) => Err(InvokeError::ProviderTimeout {
            provider: provider_id.clone(),
            operation: call.operation.to_string(),
            within_ms: time_left.as_millis(),
        }),
    };
    if let (Some(metrics), Some(started)) = (&route.metrics, started) {
        metrics.call(
            started.elapsed(),
            answer.as_ref().err().map(InvokeError::kind),
        );
    }
    answer
}
