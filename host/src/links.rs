//! Link definitions in force on this host: which provider serves each
//! (actor, contract, link name). Put, deleted and listed at runtime. Lookups happen on every
//! host call, so the table is keyed by actor (a borrowed `&str` lookup) and holds each actor's
//! few links in a short list; a lookup takes a read lock and hands out an `Arc`, not a copy.

use crate::IdMap;
use std::sync::{Arc, PoisonError, RwLock};
use weft_provider_sdk::LinkDefinition;

/// The table of links.
#[derive(Debug, Default)]
pub struct LinkTable {
    by_actor: RwLock<IdMap<Vec<Arc<LinkDefinition>>>>,
}

fn same_slot(link: &LinkDefinition, contract_id: &str, link_name: &str) -> bool {
    link.contract_id == contract_id && link.link_name == link_name
}

impl LinkTable {
    /// Adds or replaces the link for its (actor, contract, link name); returns the one replaced.
    pub fn put(&self, link: LinkDefinition) -> Option<Arc<LinkDefinition>> {
        let mut table = self
            .by_actor
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let links = table.entry(link.actor_id.clone()).or_default();
        match links
            .iter_mut()
            .find(|l| same_slot(l, &link.contract_id, &link.link_name))
        {
            Some(slot) => Some(std::mem::replace(slot, Arc::new(link))),
            None => {
                links.push(Arc::new(link));
                None
            }
        }
    }

    /// Removes and returns the link, if there was one.
    pub fn delete(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Option<Arc<LinkDefinition>> {
        let mut table = self
            .by_actor
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let links = table.get_mut(actor_id)?;
        let at = links
            .iter()
            .position(|l| same_slot(l, contract_id, link_name))?;
        let removed = links.swap_remove(at);
        if links.is_empty() {
            table.remove(actor_id);
        }
        Some(removed)
    }

    /// The link for a host call, if there is one.
    pub fn get(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Option<Arc<LinkDefinition>> {
        let table = self.by_actor.read().unwrap_or_else(PoisonError::into_inner);
        table
            .get(actor_id)?
            .iter()
            .find(|l| same_slot(l, contract_id, link_name))
            .cloned()
    }

    /// Every link, sorted by actor, contract and link name.
    pub fn list(&self) -> Vec<LinkDefinition> {
        let table = self.by_actor.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<LinkDefinition> = table
            .values()
            .flatten()
            .map(|l| LinkDefinition::clone(l))
            .collect();
        all.sort_by(|a, b| {
            (&a.actor_id, &a.contract_id, &a.link_name).cmp(&(
                &b.actor_id,
                &b.contract_id,
                &b.link_name,
            ))
        });
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(actor: &str, contract: &str, name: &str, provider: &str) -> LinkDefinition {
        LinkDefinition {
            actor_id: actor.into(),
            contract_id: contract.into(),
            link_name: name.into(),
            provider_id: provider.into(),
            values: Default::default(),
        }
    }

    #[test]
    fn put_replaces_per_slot_and_delete_removes() {
        let table = LinkTable::default();
        assert!(table.put(link("M1", "kv", "default", "p1")).is_none());
        assert!(table.put(link("M1", "kv", "other", "p2")).is_none());
        let replaced = table.put(link("M1", "kv", "default", "p3")).unwrap();
        assert_eq!(replaced.provider_id, "p1");
        assert_eq!(table.get("M1", "kv", "default").unwrap().provider_id, "p3");
        assert_eq!(table.get("M1", "kv", "other").unwrap().provider_id, "p2");
        assert!(table.get("M2", "kv", "default").is_none());
        assert_eq!(table.list().len(), 2);
        assert!(table.delete("M1", "kv", "default").is_some());
        assert!(table.delete("M1", "kv", "default").is_none());
        assert!(table.get("M1", "kv", "default").is_none());
        assert_eq!(table.list().len(), 1);
    }
}
