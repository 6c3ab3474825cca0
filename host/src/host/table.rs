//! The actors a host runs, by module key: the whole table for everything that lists, starts,
//! stops or switches them, and one copy per core of each actor's [`Handle`] for the call
//! path.
//!
//! Every call of every actor looks its actor up. Under one lock (and with the actor's `Arc`
//! cloned for the call), the lookups on several cores took turns at the lock's line and the
//! `Arc`'s count, three atomic writes a call each: a call looks in its core's copy
//! ([`crate::per_core`]) and holds that copy's handle, whose count no other core writes.
//! Each change is made to the table and then to every copy, before the writer lets go of the
//! table: a call that starts after a change returns finds it.
//!
//! Actors also call each other by call alias: the table keeps which actor each alias names
//! (the first started that claims it, while it runs), so that such a call is one lookup, not
//! a search of every actor.

use super::canary::Served;
use super::{read, write};
use crate::IdMap;
use crate::invoke::{Deadline, InvokeError, claims};
use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// An actor as one core's calls hold it while they run: the versions it serves (its running
/// one, and a canary's). Calls in flight finish on the version their handle holds; the last
/// to end drops a version the table no longer serves. On a cache line of its own (its
/// counts first), so that the calls of one core do not share it with another's.
#[repr(align(64))]
pub(crate) struct Handle(pub(crate) Served);

impl Handle {
    /// Calls the version that takes this call (the canary's, for its share), all of it
    /// within `deadline`. `provider_contract` is the contract of the provider making the
    /// call, if one is: the actor must be signed for it (`claims::check_inbound`).
    pub(crate) async fn invoke(
        &self,
        operation: &str,
        payload: &[u8],
        provider_contract: Option<&str>,
        deadline: Deadline,
    ) -> Result<Vec<u8>, InvokeError> {
        let pool = self.0.pick();
        if let Some(contract) = provider_contract {
            claims::check_inbound(pool.identity(), contract, operation)?;
        }
        pool.invoke_within(operation, payload, deadline).await
    }
}

/// One core's copy of the handles.
#[repr(align(64))]
struct CoreCopy(RwLock<HashMap<Arc<str>, Arc<Handle>, foldhash::quality::RandomState>>);

/// The actors a host runs.
pub(crate) struct ActorTable {
    all: RwLock<IdMap<Served>>,
    copies: Box<[CoreCopy]>,
    /// Module key by call alias.
    aliases: RwLock<IdMap<String>>,
}

impl Default for ActorTable {
    fn default() -> Self {
        ActorTable {
            all: RwLock::default(),
            copies: (0..crate::per_core::copies())
                .map(|_| CoreCopy(RwLock::default()))
                .collect(),
            aliases: RwLock::default(),
        }
    }
}

impl ActorTable {
    /// The whole table, to read.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, IdMap<Served>> {
        read(&self.all)
    }

    /// The whole table, to change: every change also goes to the copies.
    pub(crate) fn write(&self) -> TableWrite<'_> {
        TableWrite {
            copies: &self.copies,
            all: write(&self.all),
            aliases: &self.aliases,
        }
    }

    /// The handle of the actor with module key `actor_id`, for one call, from this core's
    /// copy.
    pub(crate) fn handle(&self, actor_id: &str) -> Option<Arc<Handle>> {
        let own = self.copies.get(crate::per_core::own(self.copies.len()))?;
        read(&own.0).get(actor_id).cloned()
    }

    /// The handle of the actor with call alias `alias`, for one call.
    pub(crate) fn handle_by_alias(&self, alias: &str) -> Option<Arc<Handle>> {
        // Looked up under the alias index's read lock (no copy of the key): writers never
        // take it while holding a core's copy.
        self.handle(read(&self.aliases).get(alias)?)
    }
}

/// The call alias an actor claims, if it claims one.
fn alias_of(served: &Served) -> Option<String> {
    served.stable.identity().call_alias().map(str::to_string)
}

/// The table held to change it (one writer at a time, no reader meanwhile).
pub(crate) struct TableWrite<'a> {
    copies: &'a [CoreCopy],
    all: RwLockWriteGuard<'a, IdMap<Served>>,
    aliases: &'a RwLock<IdMap<String>>,
}

impl TableWrite<'_> {
    /// Whether it runs the actor with module key `actor_id`.
    pub(crate) fn contains(&self, actor_id: &str) -> bool {
        self.all.contains_key(actor_id)
    }

    /// Adds (or replaces) an actor.
    pub(crate) fn insert(&mut self, actor_id: String, served: Served) {
        self.publish(&actor_id, Some(&served));
        let alias = alias_of(&served);
        self.all.insert(actor_id.clone(), served);
        self.index(alias, Some(&actor_id));
    }

    /// Takes an actor out: calls in flight finish on their handles.
    pub(crate) fn remove(&mut self, actor_id: &str) -> Option<Served> {
        let served = self.all.remove(actor_id)?;
        self.publish(actor_id, None);
        self.index(alias_of(&served), None);
        Some(served)
    }

    /// Takes every actor out.
    pub(crate) fn drain(&mut self) -> Vec<(String, Served)> {
        for copy in self.copies {
            write(&copy.0).clear();
        }
        write(self.aliases).clear();
        self.all.drain().collect()
    }

    /// Changes an actor with `change` (a switch of version, a canary begun or ended), if it
    /// runs: what `change` returns.
    pub(crate) fn update<R>(
        &mut self,
        actor_id: &str,
        change: impl FnOnce(&mut Served) -> R,
    ) -> Option<R> {
        let served = self.all.get_mut(actor_id)?;
        let alias_before = alias_of(served);
        let changed = change(served);
        let served = served.clone();
        self.publish(actor_id, Some(&served));
        let alias_after = alias_of(&served);
        if alias_after != alias_before {
            self.index(alias_before, None);
            self.index(alias_after, Some(actor_id));
        }
        Some(changed)
    }

    /// Points `alias` at the actor that claims it: the one it names if that still does, else
    /// `candidate` if it does, else the first found (a search only when an actor claiming an
    /// alias stops or changes it).
    fn index(&self, alias: Option<String>, candidate: Option<&str>) {
        let Some(alias) = alias else {
            return;
        };
        let mut aliases = write(self.aliases);
        let claims = |actor_id: &str| {
            self.all
                .get(actor_id)
                .is_some_and(|served| alias_of(served).as_deref() == Some(alias.as_str()))
        };
        if aliases.get(&alias).is_some_and(|named| claims(named)) {
            return;
        }
        let claimant = candidate
            .filter(|actor_id| claims(actor_id))
            .or_else(|| self.all.keys().map(String::as_str).find(|id| claims(id)));
        match claimant {
            Some(actor_id) => {
                aliases.insert(alias, actor_id.to_string());
            }
            None => {
                aliases.remove(&alias);
            }
        }
    }

    /// Puts `served` (or, for `None`, no actor) under `actor_id` in every copy.
    fn publish(&self, actor_id: &str, served: Option<&Served>) {
        let key: Arc<str> = Arc::from(actor_id);
        for copy in self.copies {
            let mut handles = write(&copy.0);
            match served {
                Some(served) => {
                    handles.insert(key.clone(), Arc::new(Handle(served.clone())));
                }
                None => {
                    handles.remove(actor_id);
                }
            }
        }
    }
}
