//! Hot swap of a running actor: verify the new version against the running one, compile it,
//! start it, check its health, then switch new calls to it while calls in flight finish on
//! the old one. A refusal at any step leaves the old version serving.

use super::{Host, HostError, UpdateRefused};
use crate::actor::{ActorIdentity, ActorPool};
use std::sync::Arc;

/// What an update may do beyond the defaults.
#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions {
    /// Accept capabilities the running version was not signed for (an operator's decision).
    pub allow_new_capabilities: bool,
    /// Accept a new version signed by another account than the running one (an operator's
    /// decision, e.g. when an issuer key is rotated). Without it, an update must keep the
    /// issuer: a module key alone proves nothing, since anyone can sign a module claiming it.
    pub allow_new_issuer: bool,
    /// Call `Actor.HealthRequest` on the new version before switching, and refuse it unless it
    /// answers healthy.
    pub health_check: bool,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            allow_new_capabilities: false,
            allow_new_issuer: false,
            health_check: true,
        }
    }
}

impl Host {
    /// Replaces a running actor with a new version of it, without dropping a call: verify
    /// (same module key, revision not lower, no new capability unless allowed), compile,
    /// start, health-check, then switch. Calls already running finish on the old version; new
    /// calls go to the new one. Any refusal leaves the old version serving.
    pub async fn update_actor(
        &self,
        actor_id: &str,
        bytes: &[u8],
        options: UpdateOptions,
    ) -> Result<ActorIdentity, HostError> {
        let _one_at_a_time = self.state.updates.lock().await;
        let (_, pool) = self.successor(actor_id, bytes, options).await?;
        let identity = pool.identity().clone();
        // The switch: new calls find the new pool; calls in flight hold the old one, which is
        // dropped, with its instances, when the last of them ends.
        let pool = Arc::new(pool);
        let switched = self
            .state
            .actors
            .write()
            .update(actor_id, |served| served.stable = pool);
        if switched.is_none() {
            return Err(refused(actor_id, UpdateRefused::Stopped));
        }
        self.evict_unused_modules();
        tracing::info!(actor = %actor_id, revision = ?identity.revision, "actor updated");
        Ok(identity)
    }

    /// The new version of a running actor, ready to serve but serving nothing yet, with the
    /// version it succeeds: verified against it (`check_succession`), compiled, started and,
    /// when the options ask, health-checked. The caller holds the update lock.
    pub(super) async fn successor(
        &self,
        actor_id: &str,
        bytes: &[u8],
        options: UpdateOptions,
    ) -> Result<(Arc<ActorPool>, ActorPool), HostError> {
        let refused = |reason| refused(actor_id, reason);
        let served = self
            .state
            .actors
            .read()
            .get(actor_id)
            .cloned()
            .ok_or_else(|| HostError::UnknownActor(actor_id.to_string()))?;
        if let Some(split) = &served.canary {
            return Err(refused(UpdateRefused::CanaryRunning {
                canary: split.revision(),
            }));
        }
        let old = served.stable;
        let mut policy = self.state.policy.clone();
        policy.limits = old.limits();
        let identity = ActorIdentity::of_module_for_engine(bytes, &policy, &self.state.engine)
            .await
            .map_err(|e| refused(e.into()))?;
        check_succession(old.identity(), &identity, options).map_err(refused)?;
        let pool = ActorPool::build(
            &self.state.engine,
            identity,
            bytes,
            &policy,
            self.state.outbound.clone(),
        )
        .await
        .map_err(|e| refused(e.into()))?;
        let pool = self.hosted(pool);
        if options.health_check {
            check_health(&pool)
                .await
                .map_err(|e| refused(UpdateRefused::Unhealthy(e)))?;
        }
        Ok((old, pool))
    }

    /// Drops compiled modules that no running actor uses (a draining old version keeps its
    /// own reference until it ends).
    pub(super) fn evict_unused_modules(&self) {
        let live: std::collections::HashSet<String> = self
            .state
            .actors
            .read()
            .values()
            .flat_map(super::canary::Served::pools)
            .map(|p| p.identity().module_hash.clone())
            .collect();
        self.state.engine.retain_modules(|hash| live.contains(hash));
    }
}

/// An update of `actor_id` refused for `reason`.
pub(super) fn refused(actor_id: &str, reason: UpdateRefused) -> HostError {
    HostError::UpdateRefused {
        actor: actor_id.to_string(),
        reason,
    }
}

/// Whether `new` may replace `running`: the same module key and issuer (another issuer only
/// when the options allow it), a revision not lower, and no capability the running version
/// lacks unless the options allow it.
fn check_succession(
    running: &ActorIdentity,
    new: &ActorIdentity,
    options: UpdateOptions,
) -> Result<(), UpdateRefused> {
    if new.id != running.id {
        return Err(UpdateRefused::SubjectChanged {
            old: running.id.clone(),
            new: new.id.clone(),
        });
    }
    if new.issuer != running.issuer && !options.allow_new_issuer {
        let issuer = |i: &Option<String>| i.clone().unwrap_or_else(|| "no one (unsigned)".into());
        return Err(UpdateRefused::IssuerChanged {
            old: issuer(&running.issuer),
            new: issuer(&new.issuer),
        });
    }
    let (old_rev, new_rev) = (running.revision.unwrap_or(0), new.revision.unwrap_or(0));
    if new_rev < old_rev {
        return Err(UpdateRefused::RevisionLowered {
            old: old_rev,
            new: new_rev,
        });
    }
    let added: Vec<String> = new
        .capabilities
        .iter()
        .filter(|c| !running.capabilities.contains(c))
        .cloned()
        .collect();
    if !added.is_empty() && !options.allow_new_capabilities {
        return Err(UpdateRefused::NewCapabilities { added });
    }
    Ok(())
}

/// Calls `Actor.HealthRequest` (payload: an empty map) and requires `healthy: true`.
async fn check_health(pool: &ActorPool) -> Result<(), String> {
    let answer = pool
        .invoke(weft_contracts::actor::HEALTH_REQUEST, &[0x80])
        .await
        .map_err(|e| e.to_string())?;
    let health: weft_contracts::actor::HealthCheckResponse =
        weft_contracts::decode(&answer).map_err(|e| e.to_string())?;
    if health.healthy {
        Ok(())
    } else {
        Err(health
            .message
            .unwrap_or_else(|| "it reported itself unhealthy".into()))
    }
}
