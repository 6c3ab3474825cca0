//! Canary updates through the control plane: an update with a plan starts one, an operator
//! may decide it, and each verdict the host reaches by itself is told as an event and kept
//! in the audit trail, as the change it is.

use super::audit::AuditEntry;
use super::handler::{Control, ControlError};
use super::wire::{Done, EventKind, revision};
use crate::UpdateOptions;
use crate::canary::{CanaryPlan, CanaryVerdict, Outcome, PPM, percent};
use crate::clock::unix_ms;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long an operator's decision may take to be carried out before it is answered as
/// pending (the watcher acts on it at once; this is slack for a busy host).
const DECISION_WITHIN: Duration = Duration::from_secs(5);

impl Control {
    /// Starts a canary of `module` for `actor_id` as `plan` says; answers the running
    /// version, with the canary beside it.
    pub(super) async fn start_canary(
        &self,
        actor_id: &str,
        module: &[u8],
        options: UpdateOptions,
        plan: CanaryPlan,
        by: &str,
    ) -> Result<Done, ControlError> {
        let host = self.host();
        let canary = host.canary_actor(actor_id, module, options, plan).await?;
        let running = host
            .actor_pool(actor_id)
            .map(|pool| pool.identity().clone())
            .ok_or_else(|| ControlError::Vanished(actor_id.to_string()))?;
        let detail = format!(
            "{} revision {} takes {} of the calls beside revision {} for {} s (error rate at \
             most {} over it, p99 at most {} times it)",
            canary.name,
            revision(canary.revision),
            percent(f64::from(plan.share_ppm) / f64::from(PPM)),
            revision(running.revision),
            plan.watch_for().as_secs_f64(),
            percent(plan.max_error_rate),
            plan.max_p99_ratio
        );
        self.publish(EventKind::CanaryStarted, actor_id, detail, by)
            .await;
        Ok(Done::Actor(self.summary(running)))
    }

    /// Ends the canary of `actor_id` as an operator decides; answers its verdict.
    pub(super) async fn decide_canary(
        &self,
        actor_id: &str,
        promote: bool,
    ) -> Result<Done, ControlError> {
        let mut verdicts = self.host().canary_verdicts();
        self.host().decide_canary(actor_id, promote)?;
        let verdict = tokio::time::timeout(DECISION_WITHIN, async {
            loop {
                match verdicts.recv().await {
                    Ok(verdict) if verdict.actor_id == actor_id => return Some(verdict),
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        verdict
            .map(Done::Canary)
            .ok_or_else(|| ControlError::DecisionPending(actor_id.to_string()))
    }

    /// Tells each canary verdict the host reaches as an event (by the host itself, which
    /// decided) and keeps it in the audit trail, until the host is gone.
    pub fn publish_canary_verdicts(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut verdicts = self.host().canary_verdicts();
        let control = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let verdict: CanaryVerdict = match verdicts.recv().await {
                    Ok(verdict) => verdict,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "canary verdicts not published: too many at once");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(control) = control.upgrade() else {
                    return;
                };
                let kind = match verdict.outcome {
                    Outcome::Promoted => EventKind::CanaryPromoted,
                    Outcome::RolledBack | Outcome::Ended => EventKind::CanaryRolledBack,
                };
                // The audit trail names the verdict as its event does (`weft update` reads it).
                let action = kind.as_str();
                let by = control.host_id().to_string();
                let detail = verdict.to_string();
                control.audit.record(AuditEntry {
                    at_unix_ms: unix_ms(),
                    host_id: by.clone(),
                    by: by.clone(),
                    action: action.to_string(),
                    target: verdict.actor_id.clone(),
                    ok: true,
                    result: detail.clone(),
                });
                control.publish(kind, &verdict.actor_id, detail, &by).await;
            }
        })
    }
}
