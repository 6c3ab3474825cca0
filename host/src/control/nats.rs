//! The control plane over NATS: every host of a lattice answers inventory pings, carries out
//! the requests addressed to it, publishes what it did as events, and beats a heartbeat.
//!
//! | subject | who listens | body | answer |
//! |---|---|---|---|
//! | `weft.{lattice}.ctl.ping` | every host | empty | [`HostInventory`] (one per host) |
//! | `weft.{lattice}.ctl.host.{host_id}` | that host | [`ControlRequest`] | `Answer` around [`Done`] |
//! | `weft.{lattice}.evt.{kind}` | `weft ctl watch` | | `Event`, published by hosts |
//!
//! Bodies over NATS's max payload are chunked (`weft_lattice::chunks`), so a module of any size
//! can be started or updated.
//!
//! Like every lattice message, pings, requests, answers and events are sealed by the member
//! that sends them (`weft_lattice::member`): a ping or request no member sealed is dropped
//! unanswered, and an inventory answer no member sealed is skipped.
//!
//! **Every request on the host's subject is also a signed envelope** (`weft_lattice::envelope`):
//! signed by an operator key the host trusts, addressed to this host's id, within 30 s of its
//! clock, and never seen before. Anything else is refused, with the reason in the answer and
//! in the host's log, and changes nothing: being a member lets a process call actors, not
//! change what runs.

use super::handler::Control;
use super::wire::{ControlRequest, Done, EventKind, HostInventory};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use weft_lattice::chunks::ReceiveError;
use weft_lattice::envelope::{Envelope, Verifier};
use weft_lattice::{self as lattice, Answer, LatticeError, Member};
use weft_provider_sdk::{Failure, FailureKind, LinkDefinition};

/// How long a control request's parts may take to arrive (chunked modules).
const RECEIVE_DEADLINE: Duration = Duration::from_secs(30);
/// The least time an inventory answer sent in chunks is given to arrive.
const INVENTORY_PULL_AT_LEAST: Duration = Duration::from_secs(5);
/// Control requests a host carries out at once; more wait in the subscription (and past
/// NATS's slow-consumer limit are dropped), instead of each taking a task.
pub const CONTROL_REQUESTS_AT_ONCE: usize = 16;
/// How long a new subscription may take to reach the server before serving fails.
const SUBSCRIBED_WITHIN: Duration = Duration::from_secs(5);

/// The hosts of `member`'s lattice that answer a ping within `wait`, sorted by host id (what
/// `weft ctl inventory` lists). An answer no member sealed, or one that cannot be read, is
/// skipped and logged: a stranger cannot pose as a host, and garbage breaks nothing.
pub async fn inventories(member: &Member, wait: Duration) -> Result<Vec<HostInventory>, Failure> {
    let client = member.client();
    let inbox = client.new_inbox();
    let unreachable = |e: &dyn std::fmt::Display| {
        Failure::new(FailureKind::Unavailable, format!("inventory ping: {e}"))
    };
    let mut answers = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| unreachable(&e))?;
    lattice::publish(
        member,
        member.subjects().ping().into(),
        Some(inbox.into()),
        Vec::new(),
    )
    .await
    .map_err(|e| unreachable(&e))?;
    let until = tokio::time::Instant::now() + wait;
    let mut hosts = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout_at(until, answers.next()).await {
        // With no host at all, the server says "no responders" on the inbox.
        if message.status.is_some() {
            continue;
        }
        // A large inventory comes chunked: pulled within the wait, or a few seconds.
        let pull_within = until
            .saturating_duration_since(tokio::time::Instant::now())
            .max(INVENTORY_PULL_AT_LEAST);
        let body = match lattice::receive(member, &message, pull_within).await {
            Ok(body) => body,
            Err(ReceiveError::Refused(_)) => continue,
            Err(ReceiveError::Failed(error)) => {
                tracing::warn!(%error, "an inventory answer could not be pulled");
                continue;
            }
        };
        let inventory = lattice::decode::<Answer>(&message.subject, &body)
            .map_err(Failure::from)
            .and_then(Result::<Vec<u8>, Failure>::from)
            .and_then(|bytes| {
                lattice::decode::<HostInventory>(&message.subject, &bytes).map_err(Failure::from)
            });
        match inventory {
            Ok(inventory) => hosts.push(inventory),
            Err(error) => tracing::warn!(%error, "an inventory answer could not be read"),
        }
    }
    hosts.sort_by(|a, b| a.host_id.cmp(&b.host_id));
    Ok(hosts)
}

/// Answers members' pings, and control requests signed by a key `operators` trusts, on
/// `member`'s lattice until the returned tasks are aborted, publishes events there, and beats
/// every `heartbeat`. Returns once other members can reach it.
pub async fn serve(
    control: Arc<Control>,
    member: Arc<Member>,
    heartbeat: Duration,
    operators: Verifier,
) -> Result<Vec<tokio::task::JoinHandle<()>>, LatticeError> {
    let operators = Arc::new(operators);
    let client = member.client().clone();
    let subjects = member.subjects().clone();
    control.publish_events_to(member.clone());
    let subscribe = |subject: String| {
        let client = client.clone();
        async move {
            client
                .subscribe(subject.clone())
                .await
                .map_err(|e| LatticeError::Subscribe {
                    subject,
                    reason: e.to_string(),
                })
        }
    };
    let mut pings = subscribe(subjects.ping()).await?;
    let mut requests = subscribe(subjects.control_host(control.host_id())).await?;

    let (server, replies) = (control.clone(), member.clone());
    let answer_pings = tokio::spawn(async move {
        while let Some(ping) = pings.next().await {
            if lattice::receive_at_most(
                &replies,
                &ping,
                RECEIVE_DEADLINE,
                lattice::chunks::MAX_SMALL_BODY_BYTES,
            )
            .await
            .is_err()
            {
                continue;
            }
            let answer = Answer::encoded(&ping.subject, &server.inventory());
            lattice::respond(&replies, &ping, &answer).await;
        }
    });
    let (server, replies) = (control.clone(), member.clone());
    let serve_requests = tokio::spawn(async move {
        let at_once = Arc::new(tokio::sync::Semaphore::new(CONTROL_REQUESTS_AT_ONCE));
        while let Some(message) = requests.next().await {
            // Never closed: this ends only with the task.
            let Ok(slot) = at_once.clone().acquire_owned().await else {
                break;
            };
            // Each on its own task: a long update must not hold up a ping or a link.
            let (server, replies, operators) = (server.clone(), replies.clone(), operators.clone());
            tokio::spawn(async move {
                if let Some(answer) = answer(&server, &operators, &replies, &message).await {
                    lattice::respond(&replies, &message, &answer).await;
                }
                drop(slot);
            });
        }
    });
    let server = control.clone();
    let beat = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(heartbeat);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let inventory = server.inventory();
            let detail = format!(
                "{} actor(s), {} provider(s), {} link(s), up {} s",
                inventory.actors.len(),
                inventory.providers.len(),
                inventory.links.len(),
                inventory.uptime_secs
            );
            server
                .publish(
                    EventKind::HostHeartbeat,
                    server.host_id(),
                    detail,
                    server.host_id(),
                )
                .await;
        }
    });
    lattice::round_trip(&client, SUBSCRIBED_WITHIN).await?;
    let labels: Vec<String> = control
        .inventory()
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    control
        .publish(
            EventKind::HostStarted,
            control.host_id(),
            labels.join(" "),
            control.host_id(),
        )
        .await;
    Ok(vec![answer_pings, serve_requests, beat])
}

/// One control request from the lattice: opened (dropped unless a member sealed it; refused
/// unless a trusted operator signed it for this host, recently, once), read and carried out.
async fn answer(
    control: &Control,
    operators: &Verifier,
    member: &Member,
    message: &async_nats::Message,
) -> Option<Answer> {
    let body = match lattice::receive(member, message, RECEIVE_DEADLINE).await {
        Ok(body) => body,
        Err(ReceiveError::Refused(_)) => return None,
        Err(ReceiveError::Failed(failure)) => return Some(Answer::Err(failure)),
    };
    Some(carry_out(control, operators, message, &body).await)
}

/// A sealed control request, carried out if a trusted operator signed it.
async fn carry_out(
    control: &Control,
    operators: &Verifier,
    message: &async_nats::Message,
    body: &[u8],
) -> Answer {
    let opened = match operators.open(control.host_id(), body) {
        Ok(opened) => opened,
        Err(refused) => {
            tracing::warn!(subject = %message.subject, %refused, "control request refused");
            return Answer::failed(
                FailureKind::Denied,
                format!("control request refused: {refused}"),
            );
        }
    };
    let request = match lattice::decode::<ControlRequest>(&message.subject, &opened.body) {
        Ok(request) => request,
        Err(error) => return Answer::Err(error.into()),
    };
    match control.handle(request, &opened.signer).await {
        Ok(done) => Answer::encoded::<Done>(&message.subject, &done),
        Err(error) => Answer::failed(FailureKind::BadRequest, error.to_string()),
    }
}

/// Puts the links the lattice's other hosts have and this one lacks (by actor, contract and
/// link name; its own links, from its manifest, win), so a host that joins a running lattice
/// serves with the lattice's links, not none. Returns how many it put. A link that cannot be
/// put is logged, not fatal.
pub async fn adopt_links(
    control: &Control,
    member: &Member,
    wait: Duration,
) -> Result<usize, Failure> {
    let peers = inventories(member, wait).await?;
    let key = |l: &LinkDefinition| {
        (
            l.actor_id.clone(),
            l.contract_id.clone(),
            l.link_name.clone(),
        )
    };
    let host = control.host();
    let mut have: BTreeSet<_> = host.links().iter().map(key).collect();
    let mut adopted = 0;
    for link in peers
        .into_iter()
        .filter(|peer| peer.host_id != control.host_id())
        .flat_map(|peer| peer.links)
    {
        if !have.insert(key(&link)) {
            continue;
        }
        // Inventories mask secret values: such a link cannot be copied from one.
        if link
            .values
            .values()
            .any(|v| v.contains(weft_contracts::secret::MASK))
        {
            tracing::warn!(
                actor = %link.actor_id, contract = %link.contract_id,
                "a link of the lattice holds secret values, which inventories do not show; put it on this host with its manifest or `weft ctl link put`"
            );
            continue;
        }
        let what = format!(
            "{} → {} ({})",
            link.actor_id, link.provider_id, link.contract_id
        );
        match host.put_link(link).await {
            Ok(()) => adopted += 1,
            Err(error) => {
                tracing::warn!(link = %what, %error, "could not adopt a link of the lattice")
            }
        }
    }
    Ok(adopted)
}

/// Says goodbye on the lattice.
pub async fn stopping(control: &Control, member: &Member) {
    control
        .publish(
            EventKind::HostStopped,
            control.host_id(),
            String::new(),
            control.host_id(),
        )
        .await;
    // Bounded: with NATS unreachable, a flush would wait for a reconnection forever.
    let _ = tokio::time::timeout(Duration::from_secs(1), member.client().flush()).await;
}

/// `request`, signed by `operator` for host `host_id`, as it goes on that host's subject.
pub fn sealed(
    operator: &nkeys::KeyPair,
    host_id: &str,
    request: &ControlRequest,
) -> Result<Vec<u8>, Failure> {
    let body = lattice::encode("control", request)?;
    Envelope::seal(operator, host_id, body)
        .and_then(|envelope| envelope.to_bytes())
        .map_err(|e| Failure::new(FailureKind::BadRequest, e.to_string()))
}
