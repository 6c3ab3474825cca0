//! The third layer: may this actor call this contract? Its signed claims say (an actor loaded
//! unsigned under the development switch may call anything). Refused before any later layer
//! sees the call.
//!
//! A call to another actor (by call alias or module key) needs no capability, on either side:
//! wasmCloud 0.x allows actor-to-actor calls by default (its decision record "Actor-to-Actor
//! Calls Allowed by Default"), and actors of that lineage are signed without one, so requiring
//! one would refuse them. A host that must restrict who calls whom sets a `CallPolicy`, which
//! sees every such call (the caller and the target) after this layer.
//!
//! The same claims decide the other direction ([`check_inbound`]): a provider of a contract
//! may call only actors signed for that contract, so an HTTP server cannot drive an actor
//! that was never meant to face HTTP.

use super::{HostCall, HostCallFuture, HostCalls, InvokeError, refused};
use crate::identity::ActorIdentity;
use std::sync::Arc;
use weft_provider_sdk::DEFAULT_LINK_NAME;

/// Checks each host call of one actor against its claims, then hands it on.
pub struct ClaimsCheck {
    identity: Arc<ActorIdentity>,
    next: Arc<dyn HostCalls>,
}

impl ClaimsCheck {
    /// The check for `identity`'s host calls, in front of `next`.
    pub fn new(identity: Arc<ActorIdentity>, next: Arc<dyn HostCalls>) -> Self {
        ClaimsCheck { identity, next }
    }
}

impl HostCalls for ClaimsCheck {
    // Not `async fn`: the check needs no waiting, so an allowed call goes on as the next
    // layer's own future rather than inside one more boxed future (every call from actor to
    // actor passes here).
    fn host_call<'life0, 'life1, 'async_trait>(
        &'life0 self,
        call: HostCall<'life1>,
    ) -> HostCallFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let identity = &self.identity;
        if !super::names_an_actor(call.contract) && !identity.may_call(call.contract) {
            return refused(InvokeError::Denied {
                actor: identity.id.clone(),
                contract: call.contract.to_string(),
                operation: call.operation.to_string(),
                reason: format!(
                    "actor {} ({}) is not signed for capability {contract}; re-sign it with \
                     `weft claims sign --cap {contract}` to let it call {}",
                    identity.id,
                    identity.name,
                    call.operation,
                    contract = call.contract,
                ),
            });
        }
        let link_name = if call.link_name.is_empty() {
            DEFAULT_LINK_NAME
        } else {
            call.link_name
        };
        self.next.host_call(HostCall {
            actor: &identity.id,
            link_name,
            ..call
        })
    }

    fn console_log(&self, actor: &str, line: &str) {
        self.next.console_log(actor, line);
    }
}

/// Inbound: may a provider of `contract` call `identity` (with `operation`)? Only if the
/// actor's claims name the contract.
pub fn check_inbound(
    identity: &ActorIdentity,
    contract: &str,
    operation: &str,
) -> Result<(), InvokeError> {
    if identity.may_call(contract) {
        return Ok(());
    }
    Err(InvokeError::Denied {
        actor: identity.id.clone(),
        contract: contract.to_string(),
        operation: operation.to_string(),
        reason: format!(
            "actor {} ({}) is not signed for capability {contract}, so its provider may not \
             call {operation} on it; re-sign it with `weft claims sign --cap {contract}`",
            identity.id, identity.name
        ),
    })
}
