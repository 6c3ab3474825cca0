//! The audit trail: every change a host's control plane was asked for (who signed it, what,
//! when, and how it ended, refused or done), kept by the host in a bounded log that
//! `weft ctl audit` reads. Reads (an inventory, the trail itself) are not changes and are not
//! kept.
//!
//! An entry names what changed by ids only: a link's values and a provider's config may hold
//! secrets, and neither is written here.

use super::wire::{ControlRequest, Done, revision};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// How many entries a host keeps; the oldest go first.
pub const AUDIT_ENTRIES: usize = 1_000;

/// One change a host was asked for, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it was asked, Unix milliseconds.
    pub at_unix_ms: u64,
    /// The host that was asked.
    pub host_id: String,
    /// Who asked: the operator key that signed the request, or `local` (the host's socket).
    pub by: String,
    /// What was asked (`start_actor`, `put_link`, ...).
    pub action: String,
    /// What it was about: an actor's module key, a provider id, a link's actor and contract.
    pub target: String,
    /// Whether it was done.
    pub ok: bool,
    /// How it ended, in words: what it did, or why it was refused.
    pub result: String,
}

/// What `request` changes, as (action, target); `None` for a read.
pub fn describe(request: &ControlRequest) -> Option<(&'static str, String)> {
    Some(match request {
        ControlRequest::Inventory | ControlRequest::Audit => return None,
        ControlRequest::StartActor { module, .. } => ("start_actor", module_key(module)),
        ControlRequest::StopActor { actor_id } => ("stop_actor", actor_id.clone()),
        ControlRequest::UpdateActor {
            actor_id,
            module,
            canary,
            ..
        } => (
            if canary.is_some() {
                "canary_actor"
            } else {
                "update_actor"
            },
            format!("{actor_id} to {}", module_key(module)),
        ),
        ControlRequest::DecideCanary { actor_id, promote } => (
            if *promote {
                "promote_canary"
            } else {
                "roll_back_canary"
            },
            actor_id.clone(),
        ),
        ControlRequest::ScaleActor {
            actor_id,
            max_instances,
        } => ("scale_actor", format!("{actor_id} to {max_instances}")),
        ControlRequest::StartProvider { id, kind, .. } => {
            ("start_provider", format!("{id} ({kind})"))
        }
        ControlRequest::UpdateProvider { id, .. } => ("update_provider", id.clone()),
        ControlRequest::StopProvider { id } => ("stop_provider", id.clone()),
        ControlRequest::PutLink(link) => (
            "put_link",
            format!(
                "{} {} ({}) to {}",
                link.actor_id, link.contract_id, link.link_name, link.provider_id
            ),
        ),
        ControlRequest::DeleteLink {
            actor_id,
            contract_id,
            link_name,
        } => (
            "delete_link",
            format!("{actor_id} {contract_id} ({link_name})"),
        ),
    })
}

/// The module key a module's claims name (unverified: only for the record; the host verifies
/// before running anything), or what it lacks.
fn module_key(module: &[u8]) -> String {
    match wascap::extract_token(module) {
        Ok(Some(token)) => wascap::jwt::decode::<wascap::Actor>(&token).map_or_else(
            |_| "a module whose claims cannot be read".into(),
            |t| t.claims.subject,
        ),
        Ok(None) => "a module with no claims".into(),
        Err(_) => "a module whose claims cannot be read".into(),
    }
}

/// A host's trail, at most [`AUDIT_ENTRIES`] long.
#[derive(Debug, Default)]
pub struct AuditLog {
    entries: Mutex<VecDeque<AuditEntry>>,
}

impl AuditLog {
    /// Keeps `entry`, dropping the oldest past the bound.
    pub fn record(&self, entry: AuditEntry) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= AUDIT_ENTRIES {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Every entry kept, oldest first.
    pub fn entries(&self) -> Vec<AuditEntry> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().cloned().collect()
    }
}

/// What a change did, in a few words, for the audit trail.
pub fn done_in_words(done: &Done) -> String {
    match done {
        Done::Actor(actor) => format!(
            "{} revision {}, {} instances at most",
            actor.name,
            revision(actor.revision),
            actor.max_instances
        ),
        Done::Provider(provider) => format!("{} ({})", provider.id, provider.kind),
        Done::Stopped => "stopped".into(),
        Done::Linked => "linked".into(),
        Done::Unlinked => "unlinked".into(),
        Done::Unchanged => "unchanged".into(),
        Done::Canary(verdict) => verdict.to_string(),
        Done::Inventory(_) | Done::Audit(_) => "read".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            at_unix_ms: n,
            host_id: "N".into(),
            by: "O".into(),
            action: "stop_actor".into(),
            target: format!("M{n}"),
            ok: true,
            result: "done".into(),
        }
    }

    #[test]
    fn keeps_the_newest_thousand() {
        let log = AuditLog::default();
        for n in 0..1_500 {
            log.record(entry(n));
        }
        let kept = log.entries();
        assert_eq!(kept.len(), AUDIT_ENTRIES);
        assert_eq!(kept.first().map(|e| e.at_unix_ms), Some(500));
        assert_eq!(kept.last().map(|e| e.at_unix_ms), Some(1_499));
    }

    #[test]
    fn a_link_is_named_without_its_values_and_reads_are_not_changes() {
        let link = weft_provider_sdk::LinkDefinition {
            actor_id: "MA".into(),
            contract_id: "wasmcloud:keyvalue".into(),
            link_name: "default".into(),
            provider_id: "redis".into(),
            values: [("url".to_string(), "redis://:s3cret@h".to_string())].into(),
        };
        let (action, target) = describe(&ControlRequest::PutLink(link)).unwrap();
        assert_eq!(action, "put_link");
        assert_eq!(target, "MA wasmcloud:keyvalue (default) to redis");
        assert!(describe(&ControlRequest::Inventory).is_none());
        assert!(describe(&ControlRequest::Audit).is_none());
    }
}
