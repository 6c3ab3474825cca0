//! Link definitions in force on this host: which provider serves each
//! (actor, contract, link name). Put, deleted and listed at runtime. Lookups happen on every
//! host call, so the table is keyed by actor (a borrowed `&str` lookup) and holds each actor's
//! few links in a short list; a lookup takes a read lock and hands out an `Arc`, not a copy.
//!
//! Links are bounded ([`LinkLimits`]): their number per host, and their size, since every link
//! is held by the host, told to its provider, and listed in every inventory the host answers;
//! an unbounded value once made the inventory too large to read.

use crate::IdMap;
use std::sync::{Arc, PoisonError, RwLock};
use weft_provider_sdk::LinkDefinition;

/// Default most links one host holds.
pub const DEFAULT_MAX_LINKS: usize = 1_000;
/// Default most bytes of one link value.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 16 << 10;
/// Default most bytes of one link: its names, and its values' keys and values.
pub const DEFAULT_MAX_LINK_BYTES: usize = 32 << 10;

/// How many links a host holds, and how large each may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Links on the host.
    pub max_links: usize,
    /// Bytes of one value.
    pub max_value_bytes: usize,
    /// Bytes of one link in all.
    pub max_link_bytes: usize,
}

impl Default for LinkLimits {
    fn default() -> Self {
        LinkLimits {
            max_links: DEFAULT_MAX_LINKS,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_link_bytes: DEFAULT_MAX_LINK_BYTES,
        }
    }
}

impl LinkLimits {
    /// Why `link` is too large, if it is.
    pub fn too_large(&self, link: &LinkDefinition) -> Option<String> {
        if let Some((key, value)) = link
            .values
            .iter()
            .find(|(_, value)| value.len() > self.max_value_bytes)
        {
            return Some(format!(
                "its value {key:?} has {} bytes, over the {} a link value may have",
                value.len(),
                self.max_value_bytes
            ));
        }
        let bytes = [
            &link.actor_id,
            &link.contract_id,
            &link.link_name,
            &link.provider_id,
        ]
        .iter()
        .map(|name| name.len())
        .chain(link.values.iter().map(|(k, v)| k.len() + v.len()))
        .fold(0usize, usize::saturating_add);
        (bytes > self.max_link_bytes).then(|| {
            format!(
                "it has {bytes} bytes of names and values, over the {} a link may have",
                self.max_link_bytes
            )
        })
    }
}

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

    /// Every link of `actor_id`.
    pub fn of_actor(&self, actor_id: &str) -> Vec<Arc<LinkDefinition>> {
        let table = self.by_actor.read().unwrap_or_else(PoisonError::into_inner);
        table.get(actor_id).cloned().unwrap_or_default()
    }

    /// Whether the table has a link in (actor, contract, link name).
    pub fn has(&self, link: &LinkDefinition) -> bool {
        self.get(&link.actor_id, &link.contract_id, &link.link_name)
            .is_some()
    }

    /// How many links it holds.
    pub fn len(&self) -> usize {
        let table = self.by_actor.read().unwrap_or_else(PoisonError::into_inner);
        table.values().map(Vec::len).sum()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
