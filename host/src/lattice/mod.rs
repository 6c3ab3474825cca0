//! A host's membership of a lattice (subjects and wire in `weft-lattice`).
//!
//! Once joined, the host serves each actor it runs on the actor's subject, in the queue group
//! every host running that actor shares, so a lattice invocation goes to exactly one of them
//! ([`serving`]). What the host cannot serve itself it reaches through [`proxies`], which
//! stand behind the same traits as local actors and providers: a provider in another process
//! is a `Provider`, an actor on another host an [`crate::invoke::InvokeActor`]. The rest of
//! the host asks [`Lattice`] for a proxy and gets none until it joins; nothing outside this
//! folder asks whether a lattice is joined.
//!
//! Invocations that arrive from the lattice are served only by local actors, never forwarded
//! again, so a message cannot circle between hosts.

mod handover;
mod membership;
pub(crate) mod proxies;
pub(crate) mod serving;

pub(crate) use membership::Membership;

use crate::invoke::InvokeActor;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use weft_provider_sdk::Provider;

/// The host's side of the lattice: nothing until it joins, then its membership.
#[derive(Default)]
pub(crate) struct Lattice {
    joined: OnceLock<Arc<Membership>>,
}

impl Lattice {
    /// Joins lattice `name` as `member`; `Err(name)` of the lattice already joined.
    pub(crate) fn join(
        &self,
        member: Arc<weft_lattice::Member>,
        name: &str,
        call_deadline: Duration,
    ) -> Result<(), String> {
        self.joined
            .set(Arc::new(Membership::new(member, name, call_deadline)))
            .map_err(|refused| refused.name.clone())
    }

    /// The membership, once joined.
    pub(crate) fn membership(&self) -> Option<&Arc<Membership>> {
        self.joined.get()
    }

    /// A proxy for provider `id` served elsewhere on the lattice; `None` until joined.
    pub(crate) fn provider(&self, id: &str) -> Option<Arc<dyn Provider>> {
        let membership = self.joined.get()?;
        Some(Arc::new(proxies::RemoteProvider::new(
            membership.clone(),
            id,
        )))
    }

    /// A proxy for actor `id` run by another host of the lattice; `None` until joined.
    pub(crate) fn actor(&self, id: &str) -> Option<Arc<dyn InvokeActor>> {
        let membership = self.joined.get()?;
        let subject = membership.subjects.actor(id);
        Some(Arc::new(proxies::RemoteActor::new(
            membership.clone(),
            subject,
        )))
    }

    /// A proxy for the actor whose call alias is `alias`, run by another host of the lattice;
    /// `None` until joined, or for an alias no subject can carry.
    pub(crate) fn actor_by_alias(&self, alias: &str) -> Option<Arc<dyn InvokeActor>> {
        let membership = self.joined.get()?;
        let subject = membership.subjects.actor_alias(alias)?;
        Some(Arc::new(proxies::RemoteActor::new(
            membership.clone(),
            subject,
        )))
    }
}
