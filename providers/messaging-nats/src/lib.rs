//! # weft-messaging-nats — `wasmcloud:messaging` on NATS
//!
//! Its principal type is [`NatsMessaging`]. Actors publish (`Messaging.Publish`) and make
//! requests (`Messaging.Request`) on a NATS server; each link's subscriptions deliver the
//! messages that arrive to the actor's `MessageSubscriber.HandleMessage`, one call per message.
//!
//! Link values (wasmCloud 0.x names accepted too):
//! - `subscription` (`SUBSCRIPTION`): subjects, comma-separated, wildcards allowed (`orders.>`);
//! - `queue` (`QUEUE`): a queue group, so the actor's subscribers share the messages;
//! - `url` (`URI`): the NATS server, else the provider's default ([`NatsMessaging::new`]).
//!
//! The NATS server actors talk to is the application's, not the lattice's: a provider may
//! run in-process or on a lattice and connect to either.
//!
//! Bounds: at most [`weft_provider_sdk::connections::DEFAULT_MAX_URLS`] NATS servers at once
//! (a server's client is dropped with the last link naming it), each connected outside any
//! lock other calls take; and at most [`MAX_IN_FLIGHT`] messages of one subscription being
//! handled at once: past it the subscription waits, and NATS's own slow-consumer limit (the
//! client's buffer) drops what a stalled actor cannot take, instead of the provider holding a
//! task for every message.
//!
//! **What it is not:** JetStream (no persistence, no acknowledgements), or a way for actors
//! to subscribe at run time: subscriptions are link configuration.
#![deny(missing_docs)]

use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;
use weft_contracts::messaging::{
    self as msg, PubMessage, ReplyMessage, RequestMessage, SubMessage,
};
use weft_contracts::{decode, encode};
use weft_lattice::NatsOptions;
use weft_provider_sdk::connections::{Connections, DEFAULT_MAX_URLS};
use weft_provider_sdk::{
    ActorInvoker, Health, HeldState, LinkDefinition, Provider, ProviderCall, ProviderError,
    async_trait,
};

/// A link's deliveries: the client its subscriptions are on, the values it was put with, and
/// the tasks delivering its subscriptions (each owns its subscriber).
struct Delivery {
    client: async_nats::Client,
    values: std::collections::BTreeMap<String, String>,
    tasks: Vec<JoinHandle<()>>,
}

/// Each link's deliveries, by (actor, link name).
type Deliveries = HashMap<(String, String), Delivery>;

/// Link value keys, preferred first.
const SUBSCRIPTION_KEYS: [&str; 2] = ["subscription", "SUBSCRIPTION"];
const QUEUE_KEYS: [&str; 2] = ["queue", "QUEUE"];
const URL_KEYS: [&str; 2] = ["url", "URI"];
/// Messages of one subscription handed to the actor and not yet answered, at most.
pub const MAX_IN_FLIGHT: usize = 64;
/// A request's timeout when the actor gives none.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The NATS messaging provider.
pub struct NatsMessaging {
    default_url: String,
    invoker: OnceLock<Arc<dyn ActorInvoker>>,
    /// One client per NATS URL, shared by the links naming it.
    clients: Connections<async_nats::Client>,
    /// Per (actor, link name): its URL and the tasks delivering its subscriptions. Shared
    /// with a replacement in the same process, which takes them over ([`Provider::take_over`]).
    links: Arc<Mutex<Deliveries>>,
}

impl std::fmt::Debug for NatsMessaging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsMessaging")
            .field("default_url", &self.default_url)
            .finish_non_exhaustive()
    }
}

fn value<'a>(link: &'a LinkDefinition, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|key| link.values.get(*key))
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

fn backend(what: &str, error: impl std::fmt::Display) -> ProviderError {
    ProviderError::Backend(format!("{what}: {error}"))
}

impl NatsMessaging {
    /// A provider whose links connect to `default_url` unless they name their own.
    pub fn new(default_url: impl Into<String>) -> Self {
        let default_url = default_url.into();
        NatsMessaging {
            clients: Connections::new(DEFAULT_MAX_URLS, Some(default_url.clone())),
            default_url,
            invoker: OnceLock::new(),
            links: Arc::default(),
        }
    }

    async fn client(&self, url: &str) -> Result<async_nats::Client, ProviderError> {
        self.clients
            .get(url, || async {
                let options = NatsOptions {
                    url: url.to_string(),
                    name: Some("weft messaging-nats".into()),
                    ..NatsOptions::default()
                };
                weft_lattice::connect(&options)
                    .await
                    .map_err(|e| ProviderError::Backend(e.to_string()))
            })
            .await
    }

    fn url_of(&self, link: &LinkDefinition) -> String {
        value(link, &URL_KEYS).map_or_else(|| self.default_url.clone(), str::to_string)
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, Deliveries> {
        self.links.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends a link's deliveries: once this returns the server has dropped its subscriptions,
    /// so nothing more reaches the actor through them.
    async fn stop(&self, Delivery { client, tasks, .. }: Delivery) {
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            // Dropping the task drops its subscriber, which unsubscribes.
            let _ = task.await;
        }
        // On the client that sent the unsubscribes (a delivery taken over from a predecessor
        // is on its client, not one of this instance's).
        let _ = weft_lattice::round_trip(&client, Duration::from_secs(5)).await;
    }
}

#[async_trait]
impl Provider for NatsMessaging {
    fn contract_id(&self) -> &str {
        msg::CONTRACT_ID
    }

    /// Healthy when the connection to every NATS server a link names is up.
    async fn health(&self) -> Health {
        let problems: Vec<String> = self
            .clients
            .named()
            .into_iter()
            .filter_map(|(url, client)| {
                let state = client?.connection_state();
                (state != async_nats::connection::State::Connected).then(|| {
                    format!(
                        "the connection to NATS at {} is {state}",
                        weft_contracts::secret::scrub(&url)
                    )
                })
            })
            .collect();
        Health::from_problems(problems)
    }

    async fn start(&self, host: Arc<dyn ActorInvoker>) -> Result<(), ProviderError> {
        let _ = self.invoker.set(host);
        Ok(())
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        // The same link again (each host of a lattice puts it) changes nothing: replacing its
        // subscriptions would deliver a message twice while the old and new overlap.
        let unchanged = self
            .lock_links()
            .get(&(link.actor_id.clone(), link.link_name.clone()))
            .is_some_and(|delivery| delivery.values == link.values);
        if unchanged {
            return Ok(());
        }
        let url = self.url_of(link);
        let client = self.client(&url).await?;
        self.clients.name(link, &url)?;
        let queue = value(link, &QUEUE_KEYS);
        let invoker = self
            .invoker
            .get()
            .cloned()
            .ok_or_else(|| ProviderError::Backend("the provider was not started".into()))?;
        let mut tasks = Vec::new();
        let subjects = value(link, &SUBSCRIPTION_KEYS).unwrap_or_default();
        for subject in subjects.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let subscribed = match queue {
                Some(queue) => {
                    client
                        .queue_subscribe(subject.to_string(), queue.to_string())
                        .await
                }
                None => client.subscribe(subject.to_string()).await,
            };
            let mut subscriber = subscribed.map_err(|e| ProviderError::Link {
                actor_id: link.actor_id.clone(),
                reason: format!("cannot subscribe to {subject:?}: {e}"),
            })?;
            let (invoker, actor) = (invoker.clone(), link.actor_id.clone());
            let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
            let task = tokio::spawn(async move {
                while let Some(message) = subscriber.next().await {
                    // Waits while MAX_IN_FLIGHT are being handled; the semaphore is never
                    // closed, so this ends only with the task.
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break;
                    };
                    let delivered = SubMessage {
                        subject: message.subject.to_string(),
                        reply_to: message.reply.map(|r| r.to_string()),
                        body: message.payload.to_vec(),
                    };
                    let Ok(payload) = encode(&delivered) else {
                        continue;
                    };
                    let (invoker, actor) = (invoker.clone(), actor.clone());
                    tokio::spawn(async move {
                        if let Err(error) = invoker
                            .invoke_actor(&actor, msg::HANDLE_MESSAGE, payload)
                            .await
                        {
                            tracing::warn!(%actor, %error, "actor failed to handle a message");
                        }
                        drop(permit);
                    });
                }
            });
            tasks.push(task);
        }
        // Subscriptions are live once the server has them, before the link is reported put.
        weft_lattice::round_trip(&client, Duration::from_secs(5))
            .await
            .map_err(|e| ProviderError::Backend(e.to_string()))?;
        let replaced = self.lock_links().insert(
            (link.actor_id.clone(), link.link_name.clone()),
            Delivery {
                client: client.clone(),
                values: link.values.clone(),
                tasks,
            },
        );
        if let Some(replaced) = replaced {
            self.stop(replaced).await;
        }
        Ok(())
    }

    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let removed = self
            .lock_links()
            .remove(&(link.actor_id.clone(), link.link_name.clone()));
        if let Some(removed) = removed {
            self.stop(removed).await;
        }
        self.clients.unname(link);
        Ok(())
    }

    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        let url = self.url_of(&call.link);
        let client = self.client(&url).await?;
        let op = call.operation.as_str();
        match op {
            msg::PUBLISH => {
                let message: PubMessage =
                    decode(&call.payload).map_err(|e| ProviderError::bad_request(op, e))?;
                let sent = match message.reply_to {
                    Some(reply) => {
                        client
                            .publish_with_reply(message.subject.clone(), reply, message.body.into())
                            .await
                    }
                    None => {
                        client
                            .publish(message.subject.clone(), message.body.into())
                            .await
                    }
                };
                sent.map_err(|e| backend(&format!("publishing on {}", message.subject), e))?;
                Ok(Vec::new())
            }
            msg::REQUEST => {
                let request: RequestMessage =
                    decode(&call.payload).map_err(|e| ProviderError::bad_request(op, e))?;
                let timeout = match request.timeout_ms {
                    0 => DEFAULT_REQUEST_TIMEOUT,
                    ms => Duration::from_millis(u64::from(ms)),
                };
                let answered = tokio::time::timeout(
                    timeout,
                    client.request(request.subject.clone(), request.body.into()),
                )
                .await
                .map_err(|_| {
                    backend(
                        &format!("request on {}", request.subject),
                        format!("no reply within {} ms", timeout.as_millis()),
                    )
                })?
                .map_err(|e| backend(&format!("request on {}", request.subject), e))?;
                let reply = ReplyMessage {
                    subject: answered.subject.to_string(),
                    reply_to: answered.reply.map(|r| r.to_string()),
                    body: answered.payload.to_vec(),
                };
                encode(&reply).map_err(|e| ProviderError::bad_request(op, e))
            }
            _ => Err(ProviderError::unknown_operation(msg::CONTRACT_ID, op)),
        }
    }

    /// Its subscriptions' deliveries: a replacement takes them over rather than subscribing
    /// again, so no message reaches the actor twice while both run.
    fn held_state(&self) -> Option<HeldState> {
        Some(self.links.clone())
    }

    /// Subscriptions cannot move between processes: a new process subscribing beside the old
    /// one would deliver a message twice, and one subscribing after the old one unsubscribed
    /// could miss one (async-nats 0.51 forgets a subscription as its UNSUB is written, before
    /// the server stops routing to it).
    fn replaceable_by_process(&self) -> Result<(), String> {
        Err(
            "it holds its actors' NATS subscriptions, which a new process cannot take over \
             without delivering a message twice or losing one"
                .into(),
        )
    }

    async fn take_over(&self, state: HeldState) -> Result<(), ProviderError> {
        let theirs = state.downcast::<Mutex<Deliveries>>().map_err(|_| {
            ProviderError::Backend("the running provider's state is not NATS subscriptions".into())
        })?;
        let moved: Vec<_> = theirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        self.lock_links().extend(moved);
        Ok(())
    }

    async fn shutdown(&self) {
        let all: Vec<_> = self.lock_links().drain().collect();
        for (_, delivery) in all {
            self.stop(delivery).await;
        }
        // What its calls published may still sit in a client's buffer, and a client goes
        // with its provider: sent before then.
        for client in self.clients.made() {
            let _ = weft_lattice::round_trip(&client, Duration::from_secs(5)).await;
        }
    }
}
