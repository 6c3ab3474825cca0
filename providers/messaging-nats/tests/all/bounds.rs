//! The provider's bounds against a real `nats-server`: messages in flight per subscription,
//! servers per provider, and a connect to an unreachable server that stalls no other call.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use weft_contracts::encode;
use weft_contracts::messaging::{self as msg, PubMessage};
use weft_lattice::{self as lattice, NatsOptions};
use weft_messaging_nats::{MAX_IN_FLIGHT, NatsMessaging};
use weft_provider_sdk::connections::DEFAULT_MAX_URLS;
use weft_provider_sdk::{
    ActorInvoker, Failure, LinkDefinition, Provider, ProviderCall, async_trait,
};
use weft_testing::NatsServer;

/// An actor that takes 50 ms a message and counts how many it handles at once.
#[derive(Default)]
struct SlowActor {
    running: AtomicUsize,
    most: AtomicUsize,
    handled: AtomicUsize,
}

#[async_trait]
impl ActorInvoker for SlowActor {
    async fn invoke_actor(&self, _: &str, _: &str, _: Vec<u8>) -> Result<Vec<u8>, Failure> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(Vec::new())
    }
}

fn link(actor: &str, values: &[(&str, &str)]) -> LinkDefinition {
    LinkDefinition {
        actor_id: actor.into(),
        contract_id: msg::CONTRACT_ID.into(),
        link_name: "default".into(),
        provider_id: "nats".into(),
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

async fn publish(
    provider: &NatsMessaging,
    link: &LinkDefinition,
    subject: &str,
) -> Result<(), String> {
    let message = PubMessage {
        subject: subject.into(),
        reply_to: None,
        body: b"hi".to_vec(),
    };
    provider
        .handle_call(ProviderCall {
            actor_id: link.actor_id.clone(),
            link: Arc::new(link.clone()),
            operation: msg::PUBLISH.into(),
            payload: encode(&message).unwrap(),
            time_left: Duration::from_secs(5),
        })
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_in_flight_per_subscription_obeyed_and_enforced_and_none_lost() {
    let nats = NatsServer::start().unwrap();
    let provider = NatsMessaging::new(nats.url());
    let actor = Arc::new(SlowActor::default());
    provider.start(actor.clone()).await.unwrap();
    provider
        .put_link(&link("MSLOW", &[("subscription", "work")]))
        .await
        .unwrap();
    let client = lattice::connect(&NatsOptions {
        url: nats.url(),
        ..NatsOptions::default()
    })
    .await
    .unwrap();
    let sent = 500;
    for _ in 0..sent {
        client.publish("work", "job".into()).await.unwrap();
    }
    client.flush().await.unwrap();
    let started = Instant::now();
    while actor.handled.load(Ordering::SeqCst) < sent && started.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        actor.handled.load(Ordering::SeqCst),
        sent,
        "every message handled"
    );
    assert_eq!(
        actor.most.load(Ordering::SeqCst),
        MAX_IN_FLIGHT,
        "up to the bound at once, never past it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_to_an_unreachable_server_stalls_no_other_call() {
    let nats = NatsServer::start().unwrap();
    // A server that accepts connections and never says a word: connecting to it waits for
    // the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("nats://{}", silent.local_addr().unwrap());
    let provider = Arc::new(NatsMessaging::new(nats.url()));
    provider
        .start(Arc::new(SlowActor::default()))
        .await
        .unwrap();
    let good = link("MGOOD", &[]);
    publish(&provider, &good, "warm").await.unwrap();

    let stalled = {
        let provider = provider.clone();
        let bad = link("MBAD", &[("url", &silent_url)]);
        tokio::spawn(async move {
            let started = Instant::now();
            (publish(&provider, &bad, "nowhere").await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for _ in 0..20 {
        publish(&provider, &good, "still").await.unwrap();
    }
    let took = started.elapsed();
    let (result, stalled_for) = stalled.await.unwrap();
    assert!(result.is_err(), "the silent server never answers");
    assert!(
        took < stalled_for / 2,
        "calls to a good server took {took:?} while a connect waited {stalled_for:?}"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_per_provider_obeyed_and_enforced() {
    let nats = NatsServer::start().unwrap();
    let provider = NatsMessaging::new(nats.url());
    provider
        .start(Arc::new(SlowActor::default()))
        .await
        .unwrap();
    // The same server under as many URLs as the bound allows (the user part differs).
    let url = |n: usize| nats.url().replace("nats://", &format!("nats://u{n}:p@"));
    let links: Vec<_> = (1..=DEFAULT_MAX_URLS)
        .map(|n| link(&format!("MA{n}"), &[("url", &url(n))]))
        .collect();
    for link in &links {
        provider.put_link(link).await.unwrap();
        publish(&provider, link, "counted").await.unwrap();
    }
    let one_more = link("MMORE", &[("url", &url(DEFAULT_MAX_URLS + 1))]);
    let refused = provider.put_link(&one_more).await.unwrap_err().to_string();
    assert!(
        refused.contains(&format!(
            "already keeps connections to {DEFAULT_MAX_URLS} servers"
        )) && !refused.contains(":p@"),
        "{refused}"
    );
    // The links already put keep working; deleting one makes room.
    publish(&provider, &links[0], "still").await.unwrap();
    provider.delete_link(&links[0]).await.unwrap();
    provider.put_link(&one_more).await.unwrap();
    publish(&provider, &one_more, "counted").await.unwrap();
}
