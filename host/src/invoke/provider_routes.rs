//! Where an actor's host calls to capabilities go, resolved once per core: for each
//! (actor, contract, link name) its link, the provider in this process that the link names,
//! and that provider's metrics.
//!
//! Resolving on every call took the link table's and the provider map's read locks, cloned
//! the link's and the provider's `Arc`s and looked the provider's metrics up by label: atomic
//! writes to lines that every call on every core wrote, so that calls through a provider
//! from two cores ran no faster than from one (bench (n′)). A call now looks in its core's
//! copy ([`crate::per_core`]) and holds that copy's route, whose counts no other core writes.
//!
//! [`ProviderRoutes`] owns the host's link table and its map of providers, so that every
//! write to either goes through it and empties every copy, after the change and before the
//! writer goes on: a provider being replaced or stopped waits for the calls holding it, and a
//! route kept in a copy would be one that never ends. (The host used to write the tables
//! itself and tell this cache after each write; a writer that forgot would have left stale
//! routes.) A call that resolves while a change is made keeps its route for itself only. A
//! provider on the lattice (not in this process) is not kept: the router asks the host each
//! time, as before.

use crate::IdMap;
use crate::links::LinkTable;
use crate::metrics::{Metrics, ProviderMetrics};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use weft_provider_sdk::{LinkDefinition, Provider};

/// Where one (actor, contract, link name) goes.
pub struct ProviderRoute {
    /// The link: a copy of the table's for each core, so that the `Arc` each call hands the
    /// provider is counted on that core's line.
    pub(crate) link: Arc<LinkDefinition>,
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) metrics: Option<ProviderMetrics>,
}

/// Where a call to a capability goes, as far as this host's tables say.
pub(crate) enum Found {
    /// To a provider in this process, by this route.
    Here(Arc<ProviderRoute>),
    /// By this link, to a provider not in this process (one on the lattice, if any serves it).
    Elsewhere(Arc<LinkDefinition>),
    /// The actor has no such link.
    NoLink,
}

/// One core's copy: the generation it was filled in, and its routes by actor, each actor's
/// few as a short list (as the link table keeps them).
#[repr(align(64))]
struct CoreCopy(Mutex<(u64, RoutesByActor)>);

/// Routes by calling actor.
type RoutesByActor = IdMap<Vec<Arc<ProviderRoute>>>;

/// The host's links and providers (in this process), and the routes resolved from them.
pub struct ProviderRoutes {
    links: LinkTable,
    providers: RwLock<IdMap<Arc<dyn Provider>>>,
    metrics: Option<Arc<Metrics>>,
    /// Moved on by every change; a copy filled in an older generation is emptied first.
    generation: AtomicU64,
    copies: Box<[CoreCopy]>,
}

impl ProviderRoutes {
    /// No links and no providers; routes counted in `metrics` if given.
    pub(crate) fn new(metrics: Option<Arc<Metrics>>) -> Self {
        ProviderRoutes {
            links: LinkTable::default(),
            providers: RwLock::default(),
            metrics,
            generation: AtomicU64::new(0),
            copies: (0..crate::per_core::copies())
                .map(|_| CoreCopy(Mutex::default()))
                .collect(),
        }
    }

    /// Where a call to `contract` by `actor` through its link `link_name` goes: the route,
    /// if its link names a provider in this process; else the link, or that there is none.
    pub(crate) fn route(&self, actor: &str, contract: &str, link_name: &str) -> Found {
        let Some(own) = self.copies.get(crate::per_core::own(self.copies.len())) else {
            return self.resolve(actor, contract, link_name);
        };
        let mut copy = own.0.lock().unwrap_or_else(PoisonError::into_inner);
        let generation = self.generation.load(Ordering::SeqCst);
        if copy.0 != generation {
            copy.1.clear();
            copy.0 = generation;
        }
        let same = |route: &&Arc<ProviderRoute>| {
            route.link.contract_id == contract && route.link.link_name == link_name
        };
        if let Some(route) = copy
            .1
            .get(actor)
            .and_then(|routes| routes.iter().find(same))
        {
            return Found::Here(route.clone());
        }
        let found = self.resolve(actor, contract, link_name);
        // Kept only if nothing changed since the generation was read: a writer empties this
        // copy after moving the generation on, under this lock, so a route resolved from the
        // old tables is never left here.
        if let Found::Here(route) = &found
            && self.generation.load(Ordering::SeqCst) == generation
        {
            copy.1
                .entry(actor.to_string())
                .or_default()
                .push(route.clone());
        }
        found
    }

    /// Where the tables as they are send the call.
    fn resolve(&self, actor: &str, contract: &str, link_name: &str) -> Found {
        let Some(link) = self.links.get(actor, contract, link_name) else {
            return Found::NoLink;
        };
        let Some(provider) = self.local_provider(&link.provider_id) else {
            return Found::Elsewhere(link);
        };
        let metrics = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.provider(&link.provider_id, contract));
        Found::Here(Arc::new(ProviderRoute {
            link: Arc::new(LinkDefinition::clone(&link)),
            provider,
            metrics,
        }))
    }

    /// The links or the providers changed: every copy is emptied now.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for copy in &self.copies {
            copy.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .1
                .clear();
        }
    }
}

/// The tables, read and written. Every write empties the routes' copies before it returns.
impl ProviderRoutes {
    /// The link table, to read.
    pub(crate) fn links(&self) -> &LinkTable {
        &self.links
    }

    /// Adds or replaces the link for its (actor, contract, link name); returns the one replaced.
    pub(crate) fn put_link(&self, link: LinkDefinition) -> Option<Arc<LinkDefinition>> {
        let replaced = self.links.put(link);
        self.changed();
        replaced
    }

    /// Removes and returns the link, if there was one.
    pub(crate) fn delete_link(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Option<Arc<LinkDefinition>> {
        let removed = self.links.delete(actor_id, contract_id, link_name)?;
        self.changed();
        Some(removed)
    }

    /// The provider running in this process under `provider_id`, if one does.
    pub(crate) fn local_provider(&self, provider_id: &str) -> Option<Arc<dyn Provider>> {
        self.read_providers().get(provider_id).cloned()
    }

    /// The ids of the providers running in this process.
    pub(crate) fn provider_ids(&self) -> Vec<String> {
        self.read_providers().keys().cloned().collect()
    }

    /// Puts `provider` under `provider_id`; returns the one it replaces.
    pub(crate) fn insert_provider(
        &self,
        provider_id: &str,
        provider: Arc<dyn Provider>,
    ) -> Option<Arc<dyn Provider>> {
        let replaced = self
            .providers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(provider_id.to_string(), provider);
        self.changed();
        replaced
    }

    /// Takes the provider under `provider_id` out; returns it.
    pub(crate) fn remove_provider(&self, provider_id: &str) -> Option<Arc<dyn Provider>> {
        let removed = self
            .providers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(provider_id)?;
        self.changed();
        Some(removed)
    }

    fn read_providers(&self) -> std::sync::RwLockReadGuard<'_, IdMap<Arc<dyn Provider>>> {
        self.providers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_keyvalue_memory::MemoryKeyValue;

    const KV: &str = "wasmcloud:keyvalue";

    fn link(provider_id: &str) -> LinkDefinition {
        LinkDefinition {
            actor_id: "MACTOR".into(),
            contract_id: KV.into(),
            link_name: "default".into(),
            provider_id: provider_id.into(),
            values: Default::default(),
        }
    }

    /// The provider the route of MACTOR's default key-value link reaches now.
    fn routed(routes: &ProviderRoutes) -> Option<Arc<dyn Provider>> {
        match routes.route("MACTOR", KV, "default") {
            Found::Here(route) => Some(route.provider.clone()),
            Found::Elsewhere(_) | Found::NoLink => None,
        }
    }

    fn same(a: &Option<Arc<dyn Provider>>, b: &Arc<dyn Provider>) -> bool {
        a.as_ref().is_some_and(|a| Arc::ptr_eq(a, b))
    }

    /// Each write of either table is seen by the next call, though the call before it left
    /// its route in the core's copy.
    #[test]
    fn every_write_to_links_or_providers_reroutes_the_next_call() {
        let routes = ProviderRoutes::new(None);
        let first: Arc<dyn Provider> = Arc::new(MemoryKeyValue::new());
        let second: Arc<dyn Provider> = Arc::new(MemoryKeyValue::new());
        assert!(routed(&routes).is_none(), "no link, no route");

        routes.insert_provider("one", first.clone());
        routes.put_link(link("one"));
        assert!(same(&routed(&routes), &first));
        assert!(same(&routed(&routes), &first), "kept in the copy");

        routes.insert_provider("one", second.clone());
        assert!(same(&routed(&routes), &second), "a replaced provider");

        routes.insert_provider("two", first.clone());
        routes.put_link(link("two"));
        assert!(same(&routed(&routes), &first), "a link re-pointed");

        routes.remove_provider("two");
        assert!(routed(&routes).is_none(), "a stopped provider");

        routes.put_link(link("one"));
        assert!(same(&routed(&routes), &second));
        routes.delete_link("MACTOR", KV, "default");
        assert!(routed(&routes).is_none(), "a deleted link");
        assert_eq!(routes.provider_ids(), vec!["one".to_string()]);
    }
}
