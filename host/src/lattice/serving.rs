//! What this host serves on the lattice: each actor it runs (its subject, in the queue group
//! of every host running it), and each provider in its process (so actors on other hosts,
//! and link puts made through them, reach it). Every method here does nothing until the host
//! joins a lattice.

use super::membership::{Served, Serving};
use super::{Lattice, Membership};
use crate::actor::ActorPool;
use crate::invoke::{Deadline, InvokeError};
use std::sync::Arc;
use std::time::Duration;
use weft_contracts::link::LinkKey;
use weft_lattice::chunks::ReceiveError;
use weft_lattice::{self as lattice, ActorInvocation, Answer, RouteSwitch};
use weft_provider_sdk::{Failure, FailureKind, Provider, runner};

/// How this host finds the local actor an invocation from the lattice is for.
pub(crate) type LocalActors = Arc<dyn Fn(&str) -> Option<Arc<ActorPool>> + Send + Sync>;

/// How long a new subscription may take to reach the server before serving fails.
const SUBSCRIBED_WITHIN: Duration = Duration::from_secs(5);

impl Lattice {
    /// Serves `actor_id` on its subject, and on its call alias's if it has one, with the
    /// local actor `local` finds (only local actors: an invocation from the lattice is never
    /// forwarded again). Returns once other members can reach it.
    pub(crate) async fn serve_actor(
        &self,
        actor_id: &str,
        alias: Option<&str>,
        local: LocalActors,
    ) -> Result<(), Failure> {
        let Some(membership) = self.membership() else {
            return Ok(());
        };
        let subject = membership.subjects.actor(actor_id);
        let by_key = membership
            .client
            .queue_subscribe(subject.clone(), subject.clone())
            .await
            .map_err(|e| cannot_subscribe(&subject, &e))?;
        let by_alias = match alias.map(|alias| (alias, membership.subjects.actor_alias(alias))) {
            Some((_, Some(subject))) => Some(
                membership
                    .client
                    .queue_subscribe(subject.clone(), subject.clone())
                    .await
                    .map_err(|e| cannot_subscribe(&subject, &e))?,
            ),
            Some((alias, None)) => {
                tracing::warn!(
                    actor = actor_id,
                    alias,
                    "the call alias is not a valid NATS subject, so other hosts' actors cannot call it by its alias"
                );
                None
            }
            None => None,
        };
        let mut subscription =
            futures_util::stream::select_all(std::iter::once(by_key).chain(by_alias));
        let (serving, actor) = (membership.clone(), actor_id.to_string());
        let task = tokio::spawn(async move {
            use futures_util::StreamExt;
            let in_flight = Arc::new(tokio::sync::Semaphore::new(lattice::MESSAGES_IN_FLIGHT));
            while let Some(message) = subscription.next().await {
                // Never closed: this ends only with the task.
                let Ok(slot) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let (membership, actor, local) = (serving.clone(), actor.clone(), local.clone());
                tokio::spawn(async move {
                    if let Some(answer) =
                        serve_invocation(&membership, &actor, &local, &message).await
                    {
                        lattice::respond(&membership.member, &message, &answer).await;
                    }
                    drop(slot);
                });
            }
        });
        if let Some(replaced) = membership.serving(
            Served::Actor(actor_id.to_string()),
            Serving::until_aborted(task),
        ) {
            replaced.abort();
        }
        Ok(lattice::round_trip(&membership.client, SUBSCRIBED_WITHIN).await?)
    }

    /// Stops serving `actor_id`; invocations it had not taken yet go to other hosts.
    pub(crate) fn stop_serving_actor(&self, actor_id: &str) {
        if let Some(serving) = self
            .membership()
            .and_then(|m| m.stop_serving(&Served::Actor(actor_id.to_string())))
        {
            serving.abort();
        }
    }

    /// Serves an in-process provider on the lattice too. Each message goes to whatever
    /// `current` gives at that moment: a replacement takes over these subscriptions, which
    /// never change (resubscribing could lose a call in flight, see `runner::Subscriptions`).
    pub(crate) async fn serve_provider(
        &self,
        provider_id: &str,
        current: impl Fn() -> Option<Arc<dyn Provider>> + Send + Sync + 'static,
        links: runner::Links,
    ) -> Result<(), Failure> {
        let Some(membership) = self.membership() else {
            return Ok(());
        };
        let subscriptions =
            runner::subscribe_all(&membership.member, provider_id, runner::Leave::Never)
                .await
                .map_err(|e| {
                    Failure::new(weft_provider_sdk::FailureKind::Unavailable, e.to_string())
                })?;
        let (member, deadline) = (membership.member.clone(), membership.call_deadline);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            subscriptions
                .run(&member, current, links, deadline, stopped)
                .await;
        });
        if let Some(replaced) = membership.serving(
            Served::Provider(provider_id.to_string()),
            Serving::until_stopped(task, stop),
        ) {
            replaced.drain().await;
        }
        Ok(())
    }

    /// Stops serving an in-process provider on the lattice once the calls it took are
    /// answered.
    pub(crate) async fn stop_serving_provider(&self, provider_id: &str) {
        if let Some(serving) = self
            .membership()
            .and_then(|m| m.stop_serving(&Served::Provider(provider_id.to_string())))
        {
            serving.drain().await;
        }
    }
}

impl Lattice {
    /// Answers provider processes asking for a link they were not told of (they started after
    /// it was put): with the link, if `find` has it for that provider id; else nothing (another
    /// host may have it). Only members' requests are answered (link values may be secret).
    pub(crate) async fn serve_link_requests(&self, find: FindLink) -> Result<(), Failure> {
        let Some(membership) = self.membership() else {
            return Ok(());
        };
        let subject = membership.subjects.provider_link_gets();
        let mut requests = membership
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| cannot_subscribe(&subject, &e))?;
        let member = membership.member.clone();
        let task = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(message) = requests.next().await {
                let Ok(body) = lattice::receive_at_most(
                    &member,
                    &message,
                    SUBSCRIBED_WITHIN,
                    lattice::chunks::MAX_SMALL_BODY_BYTES,
                )
                .await
                else {
                    continue;
                };
                let provider_id = message.subject.split('.').rev().nth(2).unwrap_or_default();
                let Ok(key) = lattice::decode::<LinkKey>(&message.subject, &body) else {
                    continue;
                };
                if let Some(link) = find(provider_id, &key) {
                    let answer = Answer::encoded(&message.subject, &link);
                    lattice::respond(&member, &message, &answer).await;
                }
            }
        });
        if let Some(replaced) =
            membership.serving(Served::LinkRequests, Serving::until_aborted(task))
        {
            replaced.abort();
        }
        Ok(lattice::round_trip(&membership.client, SUBSCRIBED_WITHIN).await?)
    }
}

impl Lattice {
    /// Routes a provider's calls to another instance when a member tells this host to
    /// (`RouteSwitch`), answering once the calls sent to the old one are answered. Only
    /// members' requests are obeyed.
    pub(crate) async fn serve_route_switches(&self) -> Result<(), Failure> {
        let Some(membership) = self.membership().cloned() else {
            return Ok(());
        };
        let subject = membership.subjects.routes(membership.member.id());
        let mut requests = membership
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| cannot_subscribe(&subject, &e))?;
        let serving = membership.clone();
        let task = tokio::spawn(async move {
            use futures_util::StreamExt;
            let membership = serving;
            while let Some(message) = requests.next().await {
                let member = &membership.member;
                let Ok(body) = lattice::receive_at_most(
                    member,
                    &message,
                    SUBSCRIBED_WITHIN,
                    lattice::chunks::MAX_SMALL_BODY_BYTES,
                )
                .await
                else {
                    continue;
                };
                let answer = match lattice::decode::<RouteSwitch>(&message.subject, &body) {
                    Ok(switch) => match membership.switch_route(&switch).await {
                        Ok(true) => Answer::Ok(Vec::new()),
                        Ok(false) => Answer::failed(
                            FailureKind::Deadline,
                            format!(
                                "switched, but calls sent to the old instance of {} were not \
                                 answered within {} ms",
                                switch.provider_id,
                                membership.call_deadline.as_millis()
                            ),
                        ),
                        Err(failure) => Answer::Err(failure),
                    },
                    Err(error) => Answer::Err(error.into()),
                };
                lattice::respond(member, &message, &answer).await;
            }
        });
        if let Some(replaced) =
            membership.serving(Served::RouteSwitches, Serving::until_aborted(task))
        {
            replaced.abort();
        }
        Ok(lattice::round_trip(&membership.client, SUBSCRIBED_WITHIN).await?)
    }
}

fn cannot_subscribe(subject: &str, error: &dyn std::fmt::Display) -> Failure {
    Failure::new(
        weft_provider_sdk::FailureKind::Unavailable,
        format!("cannot subscribe to {subject}: {error}"),
    )
}

/// How a host finds the link a provider process asks for: by provider id and key.
pub(crate) type FindLink =
    Arc<dyn Fn(&str, &LinkKey) -> Option<weft_provider_sdk::LinkDefinition> + Send + Sync>;

/// Answers an invocation that came from the lattice, with the local actor only, within the
/// lesser of the caller's deadline and this host's; `None` for one no member sealed (dropped:
/// the member counted and logged it).
async fn serve_invocation(
    membership: &Membership,
    actor_id: &str,
    local: &LocalActors,
    message: &async_nats::Message,
) -> Option<Answer> {
    let body = match lattice::receive(&membership.member, message, membership.call_deadline).await {
        Ok(body) => body,
        Err(ReceiveError::Refused(_)) => return None,
        Err(ReceiveError::Failed(failure)) => return Some(Answer::Err(failure)),
    };
    let call = match lattice::decode::<ActorInvocation>(message.subject.as_str(), &body) {
        Ok(call) => call,
        Err(error) => return Some(Answer::Err(error.into())),
    };
    let caller = (call.deadline_ms > 0).then(|| Duration::from_millis(call.deadline_ms));
    let deadline = Deadline::after_at_most(membership.call_deadline, caller);
    let span = tracing::trace_span!("lattice.serve_actor", actor = actor_id, operation = %call.operation, origin = %call.origin);
    lattice::trace::follow(&span, call.traceparent.as_deref());
    let result = match local(actor_id) {
        Some(pool) => {
            tracing::Instrument::instrument(
                pool.invoke_within(&call.operation, &call.payload, deadline),
                span,
            )
            .await
        }
        None => Err(InvokeError::NotFound {
            actor: actor_id.to_string(),
        }),
    };
    Some(result.map_err(Failure::from).into())
}
