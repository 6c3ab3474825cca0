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
//! Every change to the links or the providers empties every copy, after the change and
//! before the writer goes on ([`ProviderRoutes::changed`]): a provider being replaced or
//! stopped waits for the calls holding it, and a route kept in a copy would be one that never
//! ends. A call that resolves while a change is made keeps its route for itself only. A
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

/// One core's copy: the generation it was filled in, and its routes by actor, each actor's
/// few as a short list (as the link table keeps them).
#[repr(align(64))]
struct CoreCopy(Mutex<(u64, RoutesByActor)>);

/// Routes by calling actor.
type RoutesByActor = IdMap<Vec<Arc<ProviderRoute>>>;

/// The host's links and providers, and the routes resolved from them.
pub struct ProviderRoutes {
    links: Arc<LinkTable>,
    providers: Arc<RwLock<IdMap<Arc<dyn Provider>>>>,
    metrics: Option<Arc<Metrics>>,
    /// Moved on by every change; a copy filled in an older generation is emptied first.
    generation: AtomicU64,
    copies: Box<[CoreCopy]>,
}

impl ProviderRoutes {
    /// Routes resolved from `links` and `providers`, counted in `metrics` if given.
    pub(crate) fn new(
        links: Arc<LinkTable>,
        providers: Arc<RwLock<IdMap<Arc<dyn Provider>>>>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        ProviderRoutes {
            links,
            providers,
            metrics,
            generation: AtomicU64::new(0),
            copies: (0..crate::per_core::copies())
                .map(|_| CoreCopy(Mutex::default()))
                .collect(),
        }
    }

    /// The route of a call to `contract` by `actor` through its link `link_name`, if its
    /// link names a provider in this process.
    pub(crate) fn route(
        &self,
        actor: &str,
        contract: &str,
        link_name: &str,
    ) -> Option<Arc<ProviderRoute>> {
        let own = self.copies.get(crate::per_core::own(self.copies.len()))?;
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
            return Some(route.clone());
        }
        let route = Arc::new(self.resolve(actor, contract, link_name)?);
        // Kept only if nothing changed since the generation was read: a writer empties this
        // copy after moving the generation on, under this lock, so a route resolved from the
        // old tables is never left here.
        if self.generation.load(Ordering::SeqCst) == generation {
            copy.1
                .entry(actor.to_string())
                .or_default()
                .push(route.clone());
        }
        Some(route)
    }

    /// The route from the tables as they are.
    fn resolve(&self, actor: &str, contract: &str, link_name: &str) -> Option<ProviderRoute> {
        let link = self.links.get(actor, contract, link_name)?;
        let provider = self
            .providers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&link.provider_id)?
            .clone();
        let metrics = self
            .metrics
            .as_ref()
            .map(|metrics| metrics.provider(&link.provider_id, contract));
        Some(ProviderRoute {
            link: Arc::new(LinkDefinition::clone(&link)),
            provider,
            metrics,
        })
    }

    /// The links or the providers changed: every copy is emptied now.
    pub(crate) fn changed(&self) {
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
