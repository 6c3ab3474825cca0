//! The layer for actors of an older generation of the lineage's ABI (waSCC, wasmCloud
//! 0.15–0.18): their host calls become the wasmbus calls Weft's providers serve, and the
//! answers go back in the shapes their SDKs decode (`weft_contracts::generations`). It sits
//! first on such an actor's outbound path, so the claims check, the policy and the route see
//! only today's contract ids and operations. A wasmbus actor has no such layer.
//!
//! The other direction, a provider's call to such an actor, is translated by its pool
//! ([`crate::actor::ActorPool::invoke_within`]), where every inbound call passes.

use super::{HostCall, HostCalls, InvokeError};
use std::sync::Arc;
use weft_contracts::generations::{self, Generation, TranslateError};
use weft_provider_sdk::async_trait;

/// Translates the host calls of one older-generation actor, then hands them on.
pub struct OlderGeneration {
    generation: Generation,
    next: Arc<dyn HostCalls>,
}

impl OlderGeneration {
    /// The layer for an actor of `generation` in front of `next`.
    pub fn new(generation: Generation, next: Arc<dyn HostCalls>) -> Self {
        OlderGeneration { generation, next }
    }
}

/// A payload or operation an older actor sent that its generation's SDK would not have.
pub fn bad_request(actor: &str, generation: Generation, error: TranslateError) -> InvokeError {
    InvokeError::BadRequest(format!("actor {actor} ({generation} ABI): {error}"))
}

#[async_trait]
impl HostCalls for OlderGeneration {
    async fn host_call(&self, call: HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        let contract = generations::canonical_contract(call.contract);
        let translated =
            generations::from_actor(self.generation, contract, call.operation, call.payload)
                .map_err(|e| bad_request(call.actor, self.generation, e))?;
        let Some(translated) = translated else {
            return self.next.host_call(HostCall { contract, ..call }).await;
        };
        let answer = self
            .next
            .host_call(HostCall {
                contract,
                operation: translated.operation,
                payload: &translated.payload,
                ..call
            })
            .await?;
        translated
            .answer(answer)
            .map_err(|e| bad_request(call.actor, self.generation, e))
    }

    fn console_log(&self, actor: &str, line: &str) {
        self.next.console_log(actor, line);
    }
}
