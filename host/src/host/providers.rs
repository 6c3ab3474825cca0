//! The providers a host runs in its process: started with their links, replaced live, and
//! stopped once the calls they took are answered. Each is also served on the lattice once the
//! host joins one.

use super::{Host, HostError, HostState};
use crate::invoke::Deadline;
use std::sync::{Arc, Weak};
use std::time::Duration;
use weft_contracts::link::LinkKey;
use weft_provider_sdk::{
    ActorInvoker, Failure, LinkDefinition, Provider, ProviderCall, ProviderError, async_trait,
    runner,
};

impl Host {
    /// Starts a provider under `provider_id`, hands it the way to reach actors, and tells it
    /// of the links already naming it.
    pub async fn add_provider(
        &self,
        provider_id: &str,
        provider: Arc<dyn Provider>,
    ) -> Result<(), HostError> {
        if self
            .state
            .provider_routes
            .local_provider(provider_id)
            .is_some()
        {
            return Err(HostError::ProviderRunning(provider_id.to_string()));
        }
        // A link it refuses is logged, not fatal: the others still work, and it may be put
        // again.
        for (link, error) in self.start_with_links(provider_id, &provider).await? {
            tracing::warn!(provider = provider_id, actor = %link.actor_id, %error, "provider refused a link it was started with");
        }
        self.state
            .provider_routes
            .insert_provider(provider_id, HostHeld::wrap(provider));
        tracing::info!(provider = provider_id, "provider started");
        self.serve_provider_on_lattice(provider_id).await
    }

    /// Serves an in-process provider on the lattice too (a no-op off a lattice), as whatever
    /// runs under `provider_id` here at each message.
    pub(super) async fn serve_provider_on_lattice(
        &self,
        provider_id: &str,
    ) -> Result<(), HostError> {
        let (host, id) = (Arc::downgrade(&self.state), provider_id.to_string());
        let current = move || {
            host.upgrade()
                .and_then(|state| state.provider_routes.local_provider(&id))
        };
        // Calls from the lattice find their link in this host's table, as local calls do.
        let (host, id) = (Arc::downgrade(&self.state), provider_id.to_string());
        let links = runner::Links::Host(Arc::new(move |key: &LinkKey| {
            host.upgrade()
                .and_then(|state| state.link(key))
                .filter(|link| link.provider_id == id)
        }));
        self.state
            .lattice
            .serve_provider(provider_id, current, links)
            .await
            .map_err(|failure| HostError::Lattice(failure.message))
    }

    /// Starts `provider` and tells it of the links naming `provider_id`; returns the links
    /// it refused, with why.
    async fn start_with_links(
        &self,
        provider_id: &str,
        provider: &Arc<dyn Provider>,
    ) -> Result<Vec<(LinkDefinition, ProviderError)>, HostError> {
        let invoker = Arc::new(HostInvoker {
            host: Arc::downgrade(&self.state),
            actors: self.state.actors.clone(),
            call_deadline: self.state.call_deadline(),
            contract: provider.contract_id().to_string(),
        });
        provider
            .start(invoker)
            .await
            .map_err(|source| HostError::Provider {
                provider_id: provider_id.to_string(),
                source,
            })?;
        let mut refused = Vec::new();
        for link in self
            .links()
            .into_iter()
            .filter(|l| l.provider_id == provider_id)
        {
            if let Err(error) = provider.put_link(&link).await {
                refused.push((link, error));
            }
        }
        Ok(refused)
    }

    /// Hands the lattice's calls to provider `provider_id` over to `instance`, a new
    /// instance of it in another process (a member id): tells it of this host's links naming
    /// `provider_id`, then has every host of `hosts` (member ids) and this one route to it and
    /// confirm. Only then may the instance it replaces leave: see `crate::lattice`'s
    /// `handover`. A link refused ends it before any host switched.
    pub async fn hand_over_provider(
        &self,
        provider_id: &str,
        instance: &str,
        hosts: &[String],
    ) -> Result<(), HostError> {
        let membership = self.state.lattice.membership().ok_or_else(|| {
            HostError::Lattice(
                "this host is on no lattice, so it serves no provider process".into(),
            )
        })?;
        let links: Vec<LinkDefinition> = self
            .links()
            .into_iter()
            .filter(|link| link.provider_id == provider_id)
            .collect();
        membership
            .hand_over(provider_id, instance, &links, hosts)
            .await
            .map_err(|failure| HostError::NotHandedOver {
                provider_id: provider_id.to_string(),
                reason: failure.message,
            })
    }

    /// The lattice member this host is, once on a lattice.
    pub fn lattice_member(&self) -> Option<Arc<weft_lattice::Member>> {
        self.state.lattice.membership().map(|m| m.member.clone())
    }

    /// Replaces the provider running here as `provider_id` with `new` without a failed call:
    /// the new one takes over the old one's in-memory state if it has any (refused if it
    /// cannot), is started and told of its links, then takes every call from then on,
    /// local or from the lattice (whose subscriptions stay as they are); the old one finishes
    /// the calls it has before it is shut down. If the new one fails to start or refuses one
    /// of the links the old one serves, the old one keeps serving and nothing changes.
    pub async fn replace_provider(
        &self,
        provider_id: &str,
        new: Arc<dyn Provider>,
    ) -> Result<(), HostError> {
        let _one_at_a_time = self.state.updates.lock().await;
        let old = self.local_provider(provider_id)?;
        // State kept in memory goes to the new instance before it takes a link or a call,
        // or the replacement is refused: never a silent loss.
        if let Some(state) = old.held_state() {
            new.take_over(state)
                .await
                .map_err(|source| HostError::StateNotTakenOver {
                    provider_id: provider_id.to_string(),
                    source,
                })?;
        }
        drop(old);
        let refused = self.start_with_links(provider_id, &new).await?;
        if let Some((_, source)) = refused.into_iter().next() {
            new.shutdown().await;
            return Err(HostError::Provider {
                provider_id: provider_id.to_string(),
                source,
            });
        }
        // The routes holding the old one are let go (by the insert) before waiting for its
        // calls to end.
        let replaced = self
            .state
            .provider_routes
            .insert_provider(provider_id, HostHeld::wrap(new));
        if let Some(old) = replaced {
            self.wait_for_calls_in_flight(provider_id, &old).await;
            old.shutdown().await;
        }
        tracing::info!(provider = provider_id, "provider replaced");
        if let Some(metrics) = &self.state.metrics {
            metrics.provider_replaced(provider_id);
        }
        Ok(())
    }

    /// Waits (up to the call deadline) until no call holds `provider` (a [`HostHeld`] taken
    /// out of the map) any more: each call, local or from the lattice, holds a clone for its
    /// length.
    async fn wait_for_calls_in_flight(&self, provider_id: &str, provider: &Arc<dyn Provider>) {
        let deadline = tokio::time::Instant::now() + self.state.call_deadline();
        while Arc::strong_count(provider) > 1 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    provider = provider_id,
                    "calls still in flight on the replaced provider after the call deadline"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops a provider running in this process: it takes no new calls, and answers the calls
    /// it took before it shuts down. Links naming it stay: calls through them fail, naming the
    /// provider, until one is started again under the same id.
    pub async fn stop_provider(&self, provider_id: &str) -> Result<(), HostError> {
        self.local_provider(provider_id)?;
        // The lattice's calls drain while it still serves them; then local calls stop.
        self.state.lattice.stop_serving_provider(provider_id).await;
        let provider = self
            .state
            .provider_routes
            .remove_provider(provider_id)
            .ok_or_else(|| HostError::UnknownProvider(provider_id.to_string()))?;
        self.wait_for_calls_in_flight(provider_id, &provider).await;
        provider.shutdown().await;
        tracing::info!(provider = provider_id, "provider stopped");
        Ok(())
    }

    fn local_provider(&self, provider_id: &str) -> Result<Arc<dyn Provider>, HostError> {
        self.state
            .provider_routes
            .local_provider(provider_id)
            .ok_or_else(|| HostError::UnknownProvider(provider_id.to_string()))
    }
}

/// A provider as the host's map holds it. The `Arc` around it is the host's alone (whoever
/// added the provider may keep their own), so its count is the map plus the calls in flight:
/// what a replacement or a stop waits on.
struct HostHeld(Arc<dyn Provider>);

impl HostHeld {
    fn wrap(provider: Arc<dyn Provider>) -> Arc<dyn Provider> {
        Arc::new(HostHeld(provider))
    }
}

#[async_trait]
impl Provider for HostHeld {
    fn contract_id(&self) -> &str {
        self.0.contract_id()
    }
    async fn start(&self, host: Arc<dyn ActorInvoker>) -> Result<(), ProviderError> {
        self.0.start(host).await
    }
    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.0.put_link(link).await
    }
    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.0.delete_link(link).await
    }
    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        self.0.handle_call(call).await
    }
    async fn health(&self) -> weft_provider_sdk::Health {
        self.0.health().await
    }
    async fn shutdown(&self) {
        self.0.shutdown().await
    }
    fn held_state(&self) -> Option<weft_provider_sdk::HeldState> {
        self.0.held_state()
    }
    fn keeps_data(&self) -> bool {
        self.0.keeps_data()
    }
    async fn take_over(&self, state: weft_provider_sdk::HeldState) -> Result<(), ProviderError> {
        self.0.take_over(state).await
    }
}

/// What providers get to reach actors: invoke, and nothing else of the host. Its calls go
/// through the inbound claims check for the provider's contract.
///
/// A call to an actor this host runs finds it in the host's table, which the invoker holds:
/// not the host, which a call would otherwise take a strong reference to (a count that every
/// request of every provider, on every core, writes twice).
struct HostInvoker {
    host: Weak<HostState>,
    actors: Arc<super::table::ActorTable>,
    call_deadline: Duration,
    contract: String,
}

#[async_trait]
impl ActorInvoker for HostInvoker {
    async fn invoke_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, Failure> {
        let shut_down = || {
            Failure::new(
                weft_provider_sdk::FailureKind::Unavailable,
                "the host has shut down",
            )
        };
        let contract = Some(self.contract.as_str()).filter(|c| !c.is_empty());
        // A look at the count, not a reference taken: see the type's comment.
        if self.host.strong_count() == 0 {
            return Err(shut_down());
        }
        if let Some(handle) = self.actors.handle(actor_id) {
            let deadline = Deadline::after(self.call_deadline);
            return Ok(handle
                .invoke(operation, &payload, contract, deadline)
                .await?);
        }
        // Not here: on the lattice, through the host.
        let state = self.host.upgrade().ok_or_else(shut_down)?;
        Ok(state
            .invoke(actor_id, operation, &payload, contract)
            .await?)
    }
}
