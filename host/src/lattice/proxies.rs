//! Stand-ins for what another member of the lattice serves, behind the traits the local
//! things implement: a provider in another process is a `Provider` (calls batched over NATS,
//! links told to every instance), an actor on another host an `InvokeActor`. The host routes
//! to either without asking where it runs.

use super::membership::Membership;
use crate::invoke::{Deadline, InvokeActor, InvokeError};
use std::sync::Arc;
use weft_lattice as lattice;
use weft_provider_sdk::{
    Health, LinkDefinition, Provider, ProviderCall, ProviderError, async_trait,
};

/// A provider served by another process of the lattice, under its provider id.
pub(crate) struct RemoteProvider {
    membership: Arc<Membership>,
    id: String,
}

impl RemoteProvider {
    pub(crate) fn new(membership: Arc<Membership>, id: &str) -> Self {
        RemoteProvider {
            membership,
            id: id.to_string(),
        }
    }
}

#[async_trait]
impl Provider for RemoteProvider {
    /// A proxy serves whatever contract the links naming its id are for.
    fn contract_id(&self) -> &str {
        ""
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let deadline = self.membership.call_deadline;
        self.membership
            .tell_provider(link, true, deadline)
            .await
            .map_err(|failure| ProviderError::Backend(failure.message))
    }

    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let deadline = self.membership.call_deadline;
        self.membership
            .tell_provider(link, false, deadline)
            .await
            .map_err(|failure| ProviderError::Backend(failure.message))
    }

    /// Within the calling actor's time left, which travels with the call.
    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        let deadline = call.time_left;
        self.membership
            .call_provider(&call, deadline)
            .await
            .map_err(|failure| ProviderError::Backend(failure.message))
    }

    async fn health(&self) -> Health {
        let membership = &self.membership;
        let subject = membership.subjects.provider_health(&self.id);
        let answered = lattice::request(
            &membership.member,
            subject.clone(),
            Vec::new(),
            membership.call_deadline,
        )
        .await
        .and_then(|body| lattice::decode::<Health>(&subject, &body).map_err(Into::into));
        answered.unwrap_or_else(|failure| Health {
            healthy: false,
            message: Some(failure.message),
        })
    }
}

/// An actor run by other hosts of the lattice, reached in their queue group on `subject` (its
/// module key's, or its call alias's).
pub(crate) struct RemoteActor {
    membership: Arc<Membership>,
    subject: String,
}

impl RemoteActor {
    pub(crate) fn new(membership: Arc<Membership>, subject: String) -> Self {
        RemoteActor {
            membership,
            subject,
        }
    }
}

#[async_trait]
impl InvokeActor for RemoteActor {
    async fn invoke(
        &self,
        operation: &str,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<Vec<u8>, InvokeError> {
        self.membership
            .invoke_remote(&self.subject, operation, payload, deadline.remaining())
            .await
            .map_err(InvokeError::Remote)
    }
}
