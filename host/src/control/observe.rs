//! What the control plane tells of a host besides its inventory: its events (each change,
//! and each change of health), and its metrics (with its provider processes' restarts, which
//! only the control plane knows).

use super::handler::Control;
use super::wire::{Event, EventKind};
use crate::clock::unix_ms;
use crate::health::Part;
use std::sync::{Arc, PoisonError};

impl Control {
    /// The host's metrics in Prometheus' text format (with its provider processes' restarts
    /// read now); `None` when it keeps none.
    pub fn metrics_text(&self) -> Option<Vec<u8>> {
        if let Some(metrics) = self.host().metrics() {
            for running in self.providers_lock().values() {
                if let Some(process) = &running.process {
                    metrics.provider_restarts(&running.summary.id, process.status().restarts);
                }
            }
        }
        self.host().metrics_text()
    }

    /// Publishes each change of health the host finds as an event (by the host itself),
    /// until the host is gone.
    pub fn publish_health_changes(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut changes = self.host().health_changes();
        let control = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "health changes not published: too many at once");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(control) = control.upgrade() else {
                    return;
                };
                let kind = match (change.part, change.status.healthy) {
                    (Part::Actor, true) => EventKind::ActorHealthy,
                    (Part::Actor, false) => EventKind::ActorUnhealthy,
                    (Part::Provider, true) => EventKind::ProviderHealthy,
                    (Part::Provider, false) => EventKind::ProviderUnhealthy,
                    (Part::Lattice, true) => EventKind::LatticeHealthy,
                    (Part::Lattice, false) => EventKind::LatticeUnhealthy,
                };
                let by = control.host_id().to_string();
                control
                    .publish(kind, &change.id, change.status.problems.join("; "), &by)
                    .await;
            }
        })
    }

    /// Publishes an event made by `by` (an operator's key, `local`, or the host itself), if
    /// the host is on a lattice; a lost event is logged, never an error for the request that
    /// caused it.
    pub async fn publish(&self, kind: EventKind, subject: &str, detail: String, by: &str) {
        // Kept for what runs here only, so the record ends with what it records.
        {
            let mut changed_by = self
                .changed_by
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match kind {
                EventKind::ActorStarted
                | EventKind::ActorUpdated
                | EventKind::ActorScaled
                | EventKind::ProviderStarted
                | EventKind::ProviderUpdated => {
                    changed_by.insert(subject.to_string(), by.to_string());
                }
                EventKind::ActorStopped | EventKind::ProviderStopped => {
                    changed_by.remove(subject);
                }
                _ => {}
            }
        }
        let Some(member) = self.events.get() else {
            return;
        };
        let event = Event {
            kind,
            host_id: self.host_id().to_string(),
            at_unix_ms: unix_ms(),
            subject: subject.to_string(),
            detail,
            by: by.to_string(),
        };
        let topic = member.subjects().event(kind.as_str());
        let sent = match weft_lattice::encode(&topic, &event) {
            Ok(body) => weft_lattice::publish(member, topic.clone().into(), None, body)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = sent {
            tracing::warn!(%topic, %error, "event not published");
        }
    }
}
