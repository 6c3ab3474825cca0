//! Runs a [`Provider`] as its own process on a lattice: the same provider code that runs
//! in-process, served over NATS (subjects and wire in `weft-lattice`).
//!
//! The runner connects, starts the provider with an [`ActorInvoker`] that reaches actors over
//! the lattice, then serves calls (on a subject of this instance's own, which hosts route to),
//! link puts and deletes, and health checks, each message in its own task, until `shutdown`
//! resolves (SIGTERM, for `weft provider run`) or a member tells it to leave; then it drains
//! (unsubscribes, answers the calls already routed to it) and shuts the provider down.
//!
//! Replacing a provider process is done by the hosts, not here: a new instance of the id
//! starts, is told of its links, every host switches its calls to it and confirms, and only
//! then is the old one told to leave (`weft_host`'s `hand_over`), so no call is on its way to
//! an instance as it unsubscribes.

use crate::{ActorInvoker, Failure, FailureKind, LinkDefinition, Provider, ProviderError};
use crate::{ProviderCall, async_trait};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use weft_contracts::link::LinkKey;
use weft_lattice::calls::{AnswerQueue, serve_batch};
use weft_lattice::chunks::ReceiveError;
use weft_lattice::{
    self as lattice, ActorInvocation, Answer, Credentials, LatticeError, Member, NatsOptions,
    ProviderInstance, ProviderInvocation,
};

/// Where and as what a provider runs.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// The NATS connection.
    pub nats: NatsOptions,
    /// The lattice's name.
    pub lattice: String,
    /// Its membership: the issuer that signs this process's token, the issuers it trusts.
    pub credentials: Credentials,
    /// The provider's id on the lattice: links name it.
    pub provider_id: String,
    /// How long a call the provider makes to an actor may take.
    pub actor_call_deadline: Duration,
    /// A subject to publish one empty message on once the provider serves, sealed: how a
    /// supervisor knows that *this* instance is up, and which member it is.
    pub announce_ready: Option<String>,
    /// A subject only this instance answers health checks on (its supervisor's); the id's
    /// shared health subject is answered by any instance, so it cannot tell a hung child from
    /// a healthy sibling.
    pub own_health: Option<String>,
}

/// Why a runner stopped before its shutdown signal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The lattice could not be joined.
    #[error(transparent)]
    Lattice(#[from] LatticeError),
    /// The provider refused to start.
    #[error("provider {provider_id} failed to start: {source}")]
    Start {
        /// Its id.
        provider_id: String,
        /// Its error.
        #[source]
        source: ProviderError,
    },
}

/// Reaches actors over the lattice.
struct LatticeInvoker {
    member: Arc<Member>,
    origin: String,
    deadline: Duration,
}

#[async_trait]
impl ActorInvoker for LatticeInvoker {
    async fn invoke_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, Failure> {
        let invocation = ActorInvocation {
            operation: operation.to_string(),
            payload,
            origin: self.origin.clone(),
            deadline_ms: u64::try_from(self.deadline.as_millis()).unwrap_or(u64::MAX),
            traceparent: lattice::trace::traceparent(),
        };
        lattice::invoke_actor(&self.member, actor_id, invocation, self.deadline).await
    }
}

/// Serves `provider` on the lattice until `shutdown` resolves.
pub async fn run(
    provider: Arc<dyn Provider>,
    options: RunnerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunnerError> {
    let client = lattice::connect(&options.nats).await?;
    let id = options.provider_id.clone();
    let member = Member::join(client.clone(), &options.lattice, &id, &options.credentials).await?;
    provider
        .start(Arc::new(LatticeInvoker {
            member: member.clone(),
            origin: id.clone(),
            deadline: options.actor_call_deadline,
        }))
        .await
        .map_err(|source| RunnerError::Start {
            provider_id: id.clone(),
            source,
        })?;

    let subscriptions = subscribe_all(&member, &id, Leave::WhenTold).await?;
    let own_health = match options.own_health.clone() {
        Some(subject) => Some(answer_own_health(&member, &provider, subject).await?),
        None => None,
    };
    if let Some(subject) = options.announce_ready.clone()
        && let Err(error) = lattice::publish(&member, subject.into(), None, Vec::new()).await
    {
        tracing::warn!(%error, "could not announce that the provider serves");
    }
    subscriptions
        .run(
            &member,
            {
                let provider = provider.clone();
                move || Some(provider.clone())
            },
            Links::Told(Arc::default()),
            options.actor_call_deadline,
            shutdown,
        )
        .await;
    if let Some(own_health) = own_health {
        own_health.abort();
    }
    provider.shutdown().await;
    // Bounded: with NATS unreachable, a flush would wait for a reconnection forever.
    let _ = tokio::time::timeout(Duration::from_secs(1), client.flush()).await;
    tracing::info!(provider = %id, "provider stopped");
    Ok(())
}

/// Where a provider served on the lattice finds the link a call names (calls carry no link
/// values: a provider serves only links it was told of).
#[derive(Clone)]
pub enum Links {
    /// A provider in a process of its own: the links link puts told it of. A link it was not
    /// told of (put before this instance started) is asked of the lattice's hosts, each of
    /// which answers only with a link it holds, and is put on the provider then.
    Told(Arc<Told>),
    /// A host's in-process provider: the host's own links (the host put them on it).
    Host(HostLinks),
}

/// A host's lookup of its own links.
pub type HostLinks = Arc<dyn Fn(&LinkKey) -> Option<Arc<LinkDefinition>> + Send + Sync>;

/// The links a provider process was told of.
#[derive(Default)]
pub struct Told {
    links: Mutex<HashMap<LinkKey, Arc<LinkDefinition>>>,
    /// One request to the hosts at a time: calls that miss the same link wait for it.
    asking: tokio::sync::Mutex<()>,
}

impl Told {
    fn get(&self, key: &LinkKey) -> Option<Arc<LinkDefinition>> {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn put(&self, link: &LinkDefinition) {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(link.key(), Arc::new(link.clone()));
    }

    fn delete(&self, key: &LinkKey) {
        self.links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// How long a provider process waits for a host to tell it a link a call names.
const LINK_ASKED_WITHIN: Duration = Duration::from_secs(2);

impl Links {
    /// The link `key` names, for provider `provider_id` served by `provider`; asked of the
    /// hosts (and put on `provider`) if this process was not told of it.
    async fn find(
        &self,
        member: &Member,
        provider_id: &str,
        provider: &dyn Provider,
        key: &LinkKey,
        within: Duration,
    ) -> Result<Arc<LinkDefinition>, Failure> {
        let missing = || {
            Failure::new(
                FailureKind::NoLink,
                format!(
                    "no link of actor {} to {provider_id} for {} (link {}) was put on this \
                     provider, and no host holds one: put it with `weft ctl link put`",
                    key.actor_id, key.contract_id, key.link_name
                ),
            )
        };
        let told = match self {
            Links::Host(links) => return links(key).ok_or_else(missing),
            Links::Told(told) => told,
        };
        match told.get(key) {
            Some(link) => Ok(link),
            // Boxed: asking the hosts is a future of kilobytes, which every call's task would
            // otherwise carry and copy, though only a link's first call takes it.
            None => Box::pin(told.ask(member, provider_id, provider, key, within, missing)).await,
        }
    }
}

impl Told {
    /// Asks the hosts for the link `key` names (one question at a time), and puts it on
    /// `provider` before handing it out.
    async fn ask(
        &self,
        member: &Member,
        provider_id: &str,
        provider: &dyn Provider,
        key: &LinkKey,
        within: Duration,
        missing: impl Fn() -> Failure,
    ) -> Result<Arc<LinkDefinition>, Failure> {
        let _asking = self.asking.lock().await;
        if let Some(link) = self.get(key) {
            return Ok(link);
        }
        let subject = member.subjects().provider_link_get(provider_id);
        let body = lattice::encode(&subject, key)?;
        let answer = lattice::request(member, subject.clone(), body, within.min(LINK_ASKED_WITHIN))
            .await
            .map_err(|_| missing())?;
        let link: LinkDefinition = lattice::decode(&subject, &answer)?;
        if link.key() != *key || link.provider_id != provider_id {
            return Err(missing());
        }
        provider
            .put_link(&link)
            .await
            .map_err(|e| Failure::new(FailureKind::NoLink, e.to_string()))?;
        self.put(&link);
        Ok(Arc::new(link))
    }
}

/// A provider's subscriptions on the lattice, as one instance of its id: calls (on a subject
/// of this instance's own, `Subjects::provider_instance_calls`), link puts (to every instance
/// and to this one alone), link deletes, health checks, questions for the instances serving
/// the id, and (for a provider process) being told to leave. The runner serves them for a
/// provider in its own process; a host serves its in-process providers the same way, so
/// actors on other hosts reach them.
pub struct Subscriptions {
    provider_id: String,
    serving_since_ms: u64,
    calls: async_nats::Subscriber,
    puts: async_nats::Subscriber,
    own_puts: async_nats::Subscriber,
    dels: async_nats::Subscriber,
    health: async_nats::Subscriber,
    instances: async_nats::Subscriber,
    leave: Option<async_nats::Subscriber>,
}

/// Whether an instance obeys a member telling it to leave: a provider process does (its
/// replacement's hosts tell it once none routes to it); a host's in-process provider does not
/// (its host decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// Leaves when told.
    WhenTold,
    /// Only its owner stops it.
    Never,
}

/// Subscribes to `id`'s subjects as this member's instance of it and returns once the server
/// has them.
pub async fn subscribe_all(
    member: &Member,
    id: &str,
    leave: Leave,
) -> Result<Subscriptions, RunnerError> {
    let (client, subjects, instance) = (member.client(), member.subjects(), member.id());
    let calls = subscribe(client, subjects.provider_instance_calls(id, instance)).await?;
    let puts = subscribe(client, subjects.provider_link_put(id)).await?;
    let own_puts = subscribe(client, subjects.provider_instance_link_put(id, instance)).await?;
    let dels = subscribe(client, subjects.provider_link_del(id)).await?;
    let health = subscribe(client, subjects.provider_health(id)).await?;
    let instances = subscribe(client, subjects.provider_instances(id)).await?;
    let leave = match leave {
        Leave::WhenTold => {
            Some(subscribe(client, subjects.provider_instance_leave(id, instance)).await?)
        }
        Leave::Never => None,
    };
    lattice::round_trip(client, Duration::from_secs(5)).await?;
    tracing::info!(provider = %id, %instance, "provider serving on the lattice");
    Ok(Subscriptions {
        provider_id: id.to_string(),
        serving_since_ms: now_ms(),
        calls,
        puts,
        own_puts,
        dels,
        health,
        instances,
        leave,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Subscriptions {
    /// Serves each message with the provider `current` gives at that moment (so an
    /// in-process provider is replaced under its subscriptions, which never change; `None`:
    /// it is gone, and the message is answered with an error) until `shutdown` resolves. Then
    /// drains: unsubscribes, serves the calls it had already received, and returns once every
    /// call it took has been answered (or `actor_call_deadline` has passed).
    ///
    /// A member telling this instance to leave (`Leave::WhenTold`) ends it as `shutdown`
    /// does. The drain is as good as async-nats 0.51's `Subscriber::drain`, which forgets the
    /// subscription once its UNSUB is written, not once the server confirms it: a call the
    /// server routed here in that sub-millisecond window would be lost. So an instance is
    /// replaced by hosts switching to another one's subject first (`RouteSwitch`), and told to
    /// leave only once none routes to it; and an in-process replacement swaps what `current`
    /// returns instead of resubscribing.
    pub async fn run(
        self,
        member: &Arc<Member>,
        current: impl Fn() -> Option<Arc<dyn Provider>>,
        links: Links,
        actor_call_deadline: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let Subscriptions {
            provider_id,
            serving_since_ms,
            mut calls,
            mut puts,
            mut own_puts,
            mut dels,
            mut health,
            mut instances,
            leave,
        } = self;
        let told_to_leave = async move {
            match leave {
                Some(mut leave) => told_to_leave(member, &mut leave).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(told_to_leave);
        let mut in_flight = tokio::task::JoinSet::new();
        let (answers, answering) = AnswerQueue::start(member.clone());
        let serve = |in_flight: &mut tokio::task::JoinSet<()>, message, kind| {
            let (member, provider, answers) = (member.clone(), current(), answers.clone());
            let (links, provider_id) = (links.clone(), provider_id.clone());
            // Boxed: the future is kilobytes, which spawning and finishing a task would
            // otherwise copy several times.
            in_flight.spawn(Box::pin(async move {
                match kind {
                    Kind::Calls => {
                        let serve = provider.map(|provider| {
                            let member = member.clone();
                            move |call: ProviderInvocation| {
                                let (provider, links, member, provider_id) = (
                                    provider.clone(),
                                    links.clone(),
                                    member.clone(),
                                    provider_id.clone(),
                                );
                                async move {
                                    let within = time_left(&call, actor_call_deadline);
                                    match links
                                        .find(&member, &provider_id, &*provider, &call.link, within)
                                        .await
                                    {
                                        Ok(link) => {
                                            handle_call(&*provider, call, link, within).await
                                        }
                                        Err(failure) => Answer::Err(failure),
                                    }
                                }
                            }
                        });
                        serve_batch(&member, serve, message, actor_call_deadline, &answers).await
                    }
                    Kind::Other(other) => {
                        let serving = Serving {
                            provider,
                            provider_id: &provider_id,
                            since_ms: serving_since_ms,
                        };
                        serve_other(
                            &member,
                            serving,
                            &links,
                            other,
                            message,
                            actor_call_deadline,
                        )
                        .await
                    }
                }
            }));
        };
        tokio::pin!(shutdown);
        loop {
            // At most MESSAGES_IN_FLIGHT at once: past it, only finishing ones are awaited.
            let room = in_flight.len() < weft_lattice::MESSAGES_IN_FLIGHT;
            let (message, kind) = tokio::select! {
                Some(message) = calls.next(), if room => (message, Kind::Calls),
                Some(message) = puts.next(), if room => (message, Kind::Other(Other::LinkPut)),
                Some(message) = own_puts.next(), if room => (message, Kind::Other(Other::LinkPut)),
                Some(message) = dels.next(), if room => (message, Kind::Other(Other::LinkDel)),
                Some(message) = health.next(), if room => (message, Kind::Other(Other::Health)),
                Some(message) = instances.next(), if room => (message, Kind::Other(Other::Instance)),
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
                () = &mut shutdown => break,
                () = &mut told_to_leave => {
                    tracing::info!(provider = %provider_id, "told to leave: no host routes calls here any more");
                    break;
                }
            };
            serve(&mut in_flight, message, kind);
        }
        // Other instances of this id (or none) take new calls from here on.
        drop((puts, own_puts, dels, health, instances));
        let drained = async {
            if let Err(error) = calls.drain().await {
                tracing::warn!(%error, "cannot drain the provider's call subscription");
                return;
            }
            while let Some(message) = calls.next().await {
                serve(&mut in_flight, message, Kind::Calls);
            }
            while in_flight.join_next().await.is_some() {}
        };
        if tokio::time::timeout(actor_call_deadline, drained)
            .await
            .is_err()
        {
            tracing::warn!(
                "calls still in flight after {} ms; stopping anyway",
                actor_call_deadline.as_millis()
            );
        }
        // Every answer is queued now (calls still running are aborted with their tasks); the
        // queue's task ends once it has sent them.
        drop(in_flight);
        drop(answers);
        let _ = answering.await;
    }
}

/// Answers health checks on `subject`, this instance's own, one at a time, until aborted.
async fn answer_own_health(
    member: &Arc<Member>,
    provider: &Arc<dyn Provider>,
    subject: String,
) -> Result<tokio::task::JoinHandle<()>, LatticeError> {
    let mut checks = member
        .client()
        .subscribe(subject.clone())
        .await
        .map_err(|e| LatticeError::Subscribe {
            subject,
            reason: e.to_string(),
        })?;
    let (member, provider) = (member.clone(), provider.clone());
    Ok(tokio::spawn(async move {
        while let Some(check) = checks.next().await {
            let asked = lattice::receive_at_most(
                &member,
                &check,
                Duration::from_secs(1),
                lattice::chunks::MAX_SMALL_BODY_BYTES,
            )
            .await;
            if asked.is_ok() {
                let answer = Answer::encoded(&check.subject, &provider.health().await);
                lattice::respond(&member, &check, &answer).await;
            }
        }
    }))
}

async fn subscribe(
    client: &async_nats::Client,
    subject: String,
) -> Result<async_nats::Subscriber, RunnerError> {
    client.subscribe(subject.clone()).await.map_err(|e| {
        RunnerError::Lattice(LatticeError::Subscribe {
            subject,
            reason: e.to_string(),
        })
    })
}

/// Resolves once a member tells this instance to leave (answered first, so the one telling
/// knows it was heard); a message no member sealed is dropped.
async fn told_to_leave(member: &Member, leave: &mut async_nats::Subscriber) {
    while let Some(message) = leave.next().await {
        let sealed = lattice::receive_at_most(
            member,
            &message,
            Duration::from_secs(1),
            lattice::chunks::MAX_SMALL_BODY_BYTES,
        )
        .await;
        if sealed.is_ok() {
            lattice::respond(member, &message, &Answer::Ok(Vec::new())).await;
            return;
        }
    }
    std::future::pending().await
}

/// What a message on one of the provider's subjects is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Calls from actors, in a batch (`crate::calls`).
    Calls,
    Other(Other),
}

/// A message that is one request for the provider itself, answered alone.
#[derive(Debug, Clone, Copy)]
enum Other {
    LinkPut,
    LinkDel,
    Health,
    /// Which instances serve the id: this one answers with itself.
    Instance,
}

/// What serves a message: the provider (`None`: gone), as which instance of which id.
struct Serving<'a> {
    provider: Option<Arc<dyn Provider>>,
    provider_id: &'a str,
    since_ms: u64,
}

/// Answers one link change or health check; a malformed one is answered with an error,
/// one no member sealed is dropped (counted and logged by the member).
async fn serve_other(
    member: &Member,
    serving: Serving<'_>,
    links: &Links,
    kind: Other,
    message: async_nats::Message,
    deadline: Duration,
) {
    let subject = message.subject.to_string();
    let body = match lattice::receive_at_most(
        member,
        &message,
        deadline,
        lattice::chunks::MAX_SMALL_BODY_BYTES,
    )
    .await
    {
        Ok(body) => body,
        Err(ReceiveError::Refused(_)) => return,
        Err(ReceiveError::Failed(error)) => {
            lattice::respond(member, &message, &Answer::Err(error)).await;
            return;
        }
    };
    let Some(provider) = serving.provider else {
        let gone = Answer::failed(
            FailureKind::Unavailable,
            format!("nothing serves {subject} here any more; try again"),
        );
        lattice::respond(member, &message, &gone).await;
        return;
    };
    let answer = match kind {
        Other::LinkPut | Other::LinkDel => match lattice::decode::<LinkDefinition>(&subject, &body)
        {
            Ok(link) => {
                let done = if matches!(kind, Other::LinkPut) {
                    provider.put_link(&link).await
                } else {
                    provider.delete_link(&link).await
                };
                if let (Ok(()), Links::Told(told)) = (&done, links) {
                    if matches!(kind, Other::LinkPut) {
                        told.put(&link);
                    } else {
                        told.delete(&link.key());
                    }
                }
                done.map(|()| Vec::new()).map_err(Failure::from).into()
            }
            Err(error) => Answer::Err(error.into()),
        },
        Other::Health => Answer::encoded(&subject, &provider.health().await),
        Other::Instance => Answer::encoded(
            &subject,
            &ProviderInstance {
                provider_id: serving.provider_id.to_string(),
                instance: member.id().to_string(),
                serving_since_ms: serving.since_ms,
                not_replaceable: provider.replaceable_by_process().err(),
            },
        ),
    };
    lattice::respond(member, &message, &answer).await;
}

/// The time a call's caller waits (`deadline` when it did not say).
fn time_left(call: &ProviderInvocation, deadline: Duration) -> Duration {
    match call.deadline_ms {
        0 => deadline,
        ms => Duration::from_millis(ms).min(deadline),
    }
}

/// One actor's call from the lattice, handed to the provider with the link it names and the
/// time its caller waits.
async fn handle_call(
    provider: &dyn Provider,
    call: ProviderInvocation,
    link: Arc<LinkDefinition>,
    time_left: Duration,
) -> Answer {
    provider
        .handle_call(ProviderCall {
            actor_id: call.link.actor_id,
            link,
            operation: call.operation,
            payload: call.payload,
            time_left,
        })
        .await
        .map_err(Failure::from)
        .into()
}
