//! Links on a host: put (the provider told first, and the actor's claims checked when it
//! runs here), deleted and listed.

use super::{Host, HostError};
use crate::invoke::route::Routes;
use weft_provider_sdk::LinkDefinition;

impl Host {
    /// Puts a link: the provider (here or on the lattice) is told first and may refuse; a
    /// link replaced for the same (actor, contract, link name) is deleted from its provider
    /// when that is another one.
    /// A waSCC contract id (`wascc:keyvalue`) is put as the one providers serve
    /// (`wasmcloud:keyvalue`).
    pub async fn put_link(&self, mut link: LinkDefinition) -> Result<(), HostError> {
        let canonical = weft_contracts::generations::canonical_contract(&link.contract_id);
        if canonical != link.contract_id {
            link.contract_id = canonical.to_string();
        }
        let limits = &self.state.link_limits;
        if let Some(reason) = limits.too_large(&link) {
            return Err(HostError::LinkTooLarge {
                actor_id: link.actor_id,
                contract_id: link.contract_id,
                reason,
            });
        }
        let links = self.state.provider_routes.links();
        if links.len() >= limits.max_links && !links.has(&link) {
            return Err(HostError::TooManyLinks {
                max: limits.max_links,
            });
        }
        // Checked here for an actor this host runs (one elsewhere is checked by its host at
        // each call): an actor signed without the contract is neither called on it nor calls it.
        if let Some(pool) = self.actor_pool(&link.actor_id) {
            let identity = pool.identity();
            if !identity.unsigned && !identity.capabilities.contains(&link.contract_id) {
                return Err(HostError::ContractNotClaimed {
                    actor_id: link.actor_id.clone(),
                    contract_id: link.contract_id.clone(),
                    claimed: identity.capabilities.join(", "),
                });
            }
        }
        let provider = self
            .state
            .provider(&link.provider_id)
            .ok_or_else(|| HostError::UnknownProvider(link.provider_id.clone()))?;
        provider
            .put_link(&link)
            .await
            .map_err(|source| HostError::LinkRefused {
                provider_id: link.provider_id.clone(),
                source,
            })?;
        // The provider of a replaced link is told it is gone, unless it is the one just told
        // of the new link: for it, a put for a link it has is the replacement.
        let provider_id = link.provider_id.clone();
        let replaced = self.state.provider_routes.put_link(link);
        if let Some(old) = replaced
            && old.provider_id != provider_id
        {
            self.tell_link_deleted(&old).await;
        }
        Ok(())
    }

    /// Deletes a link; its provider is told. Calls through it fail from now on.
    pub async fn delete_link(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Result<(), HostError> {
        let contract_id = weft_contracts::generations::canonical_contract(contract_id);
        let old = self
            .state
            .provider_routes
            .delete_link(actor_id, contract_id, link_name)
            .ok_or_else(|| HostError::NoSuchLink {
                actor_id: actor_id.to_string(),
                contract_id: contract_id.to_string(),
                link_name: link_name.to_string(),
            })?;
        self.tell_link_deleted(&old).await;
        Ok(())
    }

    async fn tell_link_deleted(&self, link: &LinkDefinition) {
        let Some(provider) = self.state.provider(&link.provider_id) else {
            return;
        };
        if let Err(error) = provider.delete_link(link).await {
            tracing::warn!(provider = %link.provider_id, %error, "provider failed to drop a link");
        }
    }

    /// Every link in force.
    pub fn links(&self) -> Vec<LinkDefinition> {
        self.state.provider_routes.links().list()
    }
}
