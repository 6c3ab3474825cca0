//! What the control plane tells of a host besides its inventory: its metrics (with its
//! provider processes' restarts, which only the control plane knows), and its health changes
//! as events.

use super::handler::Control;
use super::wire::EventKind;
use crate::health::Part;
use std::sync::Arc;

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
}
