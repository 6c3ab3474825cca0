//! The fourth layer: the host's own rules, beyond what the claims allow. Claims are the
//! actor's signed word of what it may call; a [`CallPolicy`] is the operator's or embedder's
//! (this host does not let that actor reach messaging; calls to an actor under review are
//! refused). A host runs with none unless its embedder sets one in `HostConfig`; a refusal is
//! a "denied" error naming the policy's reason.

use super::{HostCall, HostCallFuture, HostCalls, InvokeError, refused};
use std::sync::Arc;

/// Decides whether a host call that the claims allowed may go ahead.
pub trait CallPolicy: Send + Sync + std::fmt::Debug {
    /// `Err(reason)` refuses the call; the reason reaches the actor (and the logs).
    fn check(&self, call: &HostCall<'_>) -> Result<(), String>;
}

/// The policy layer: asks the policy, then hands the call on.
pub struct Policy {
    policy: Arc<dyn CallPolicy>,
    next: Arc<dyn HostCalls>,
}

impl Policy {
    /// `policy` in front of `next`.
    pub fn new(policy: Arc<dyn CallPolicy>, next: Arc<dyn HostCalls>) -> Self {
        Policy { policy, next }
    }
}

impl HostCalls for Policy {
    // Not `async fn`, as the claims check: an allowed call goes on as the next layer's future.
    fn host_call<'life0, 'life1, 'async_trait>(
        &'life0 self,
        call: HostCall<'life1>,
    ) -> HostCallFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        if let Err(reason) = self.policy.check(&call) {
            return refused(InvokeError::Denied {
                actor: call.actor.to_string(),
                contract: call.contract.to_string(),
                operation: call.operation.to_string(),
                reason: format!(
                    "the host's policy refuses actor {}'s call to {} ({}): {reason}",
                    call.actor, call.contract, call.operation
                ),
            });
        }
        self.next.host_call(call)
    }

    fn console_log(&self, actor: &str, line: &str) {
        self.next.console_log(actor, line);
    }
}
