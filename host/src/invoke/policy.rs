//! The fourth layer: the host's own rules, beyond what the claims allow. Claims are the
//! actor's signed word of what it may call; a [`CallPolicy`] is the operator's or embedder's
//! (this host does not let that actor reach messaging; calls to an actor under review are
//! refused). A host runs with none unless its embedder sets one in `HostConfig`; a refusal is
//! a "denied" error naming the policy's reason.

use super::{HostCall, HostCalls, InvokeError};
use std::sync::Arc;
use weft_provider_sdk::async_trait;

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

#[async_trait]
impl HostCalls for Policy {
    async fn host_call(&self, call: HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        if let Err(reason) = self.policy.check(&call) {
            return Err(InvokeError::Denied {
                actor: call.actor.to_string(),
                contract: call.contract.to_string(),
                operation: call.operation.to_string(),
                reason: format!(
                    "the host's policy refuses actor {}'s call to {} ({}): {reason}",
                    call.actor, call.contract, call.operation
                ),
            });
        }
        self.next.host_call(call).await
    }

    fn console_log(&self, actor: &str, line: &str) {
        self.next.console_log(actor, line);
    }
}
