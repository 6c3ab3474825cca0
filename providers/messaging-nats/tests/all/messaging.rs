//! The messaging provider against a real `nats-server`, with the `msg-echo` example actor in
//! a host: NATS requests answered by the actor, the actor's own publishes, queue groups, and
//! a link deleted at runtime.

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use weft_contracts::messaging::{self as msg, ReplyMessage, RequestMessage};
use weft_host::{Host, HostConfig};
use weft_lattice::{self as lattice, NatsOptions};
use weft_messaging_nats::NatsMessaging;
use weft_provider_sdk::LinkDefinition;
use weft_testing::NatsServer;

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

async fn client(nats: &NatsServer) -> async_nats::Client {
    lattice::connect(&NatsOptions {
        url: nats.url(),
        ..NatsOptions::default()
    })
    .await
    .unwrap()
}

async fn msg_echo(nats: &NatsServer, values: &[(&str, &str)]) -> (Host, String) {
    let host = Host::new(HostConfig::default()).unwrap();
    host.add_provider("nats", Arc::new(NatsMessaging::new(nats.url())))
        .await
        .unwrap();
    let bytes = std::fs::read(weft_testing::actors::signed_actor("msg-echo")).unwrap();
    let actor = host.start_actor(&bytes).await.unwrap().id;
    host.put_link(link(&actor, values)).await.unwrap();
    (host, actor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_answers_nats_requests_and_publishes() {
    let nats = NatsServer::start().unwrap();
    let (host, actor) = msg_echo(&nats, &[("subscription", "orders.>")]).await;
    let user = client(&nats).await;
    let mut seen = user.subscribe("msg-echo.seen").await.unwrap();
    lattice::round_trip(&user, Duration::from_secs(5))
        .await
        .unwrap();

    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        user.request("orders.new", "42 apples".into()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&reply.payload[..], b"echo: 42 apples");
    let report = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&report.payload[..], b"orders.new");

    // The actor's own request through the provider (here answered by a NATS user).
    let mut questions = user.subscribe("questions").await.unwrap();
    lattice::round_trip(&user, Duration::from_secs(5))
        .await
        .unwrap();
    let answering = tokio::spawn(async move {
        let question = questions.next().await.unwrap();
        user.publish(question.reply.unwrap(), "forty-two".into())
            .await
            .unwrap();
        user.flush().await.unwrap();
    });
    let request = RequestMessage {
        subject: "questions".into(),
        body: b"meaning?".to_vec(),
        timeout_ms: 2_000,
    };
    // Invoked as the actor's host call would be: the host routes it by the link.
    let provider = NatsMessaging::new(nats.url());
    let answer = weft_provider_sdk::Provider::handle_call(
        &provider,
        weft_provider_sdk::ProviderCall {
            actor_id: actor.clone(),
            link: Arc::new(link(&actor, &[])),
            operation: msg::REQUEST.into(),
            payload: weft_contracts::encode(&request).unwrap(),
            time_left: std::time::Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    let reply: ReplyMessage = weft_contracts::decode(&answer).unwrap();
    assert_eq!(reply.body, b"forty-two");
    answering.await.unwrap();
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_link_stops_delivery_and_putting_it_again_resumes_it() {
    let nats = NatsServer::start().unwrap();
    let (host, actor) = msg_echo(&nats, &[("subscription", "jobs"), ("queue", "workers")]).await;
    let user = client(&nats).await;
    let ask = || user.request("jobs", "x".into());
    assert_eq!(&ask().await.unwrap().payload[..], b"echo: x");

    host.delete_link(&actor, msg::CONTRACT_ID, "default")
        .await
        .unwrap();
    let err = ask().await.unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::RequestErrorKind::NoResponders,
        "{err}"
    );

    host.put_link(link(
        &actor,
        &[("subscription", "jobs"), ("queue", "workers")],
    ))
    .await
    .unwrap();
    assert_eq!(&ask().await.unwrap().payload[..], b"echo: x");
}

#[tokio::test]
async fn a_bad_subscription_is_refused_when_the_link_is_put() {
    let nats = NatsServer::start().unwrap();
    let host = Host::new(HostConfig::default()).unwrap();
    host.add_provider("nats", Arc::new(NatsMessaging::new(nats.url())))
        .await
        .unwrap();
    let bytes = std::fs::read(weft_testing::actors::signed_actor("msg-echo")).unwrap();
    let actor = host.start_actor(&bytes).await.unwrap().id;
    let err = host
        .put_link(link(&actor, &[("subscription", "bad subject")]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot subscribe to \"bad subject\""), "{err}");
}

/// Every host of a lattice puts the same link: put again, it keeps its subscription, so a
/// message published meanwhile reaches the actor exactly once (replacing the subscription
/// would deliver it twice while old and new overlap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_link_put_again_delivers_each_message_once() {
    let nats = NatsServer::start().unwrap();
    let values = [("subscription", "events")];
    let (host, actor) = msg_echo(&nats, &values).await;
    let user = client(&nats).await;
    let mut seen = user.subscribe("msg-echo.seen").await.unwrap();
    lattice::round_trip(&user, Duration::from_secs(5))
        .await
        .unwrap();

    const MESSAGES: usize = 500;
    let publisher = {
        let user = user.clone();
        tokio::spawn(async move {
            for _ in 0..MESSAGES {
                user.publish("events", "e".into()).await.unwrap();
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            user.flush().await.unwrap();
        })
    };
    while !publisher.is_finished() {
        host.put_link(link(&actor, &values)).await.unwrap();
    }
    publisher.await.unwrap();
    let mut count = 0;
    while tokio::time::timeout(Duration::from_secs(2), seen.next())
        .await
        .is_ok_and(|m| m.is_some())
    {
        count += 1;
    }
    assert_eq!(count, MESSAGES, "each message once");
}

/// Replacing the provider in the host's process delivers each message once (#16 item 6): the
/// new instance takes the running subscriptions over instead of subscribing beside them. Five
/// replacements while numbered messages arrive; each is answered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_in_process_it_delivers_each_message_once() {
    let nats = NatsServer::start().unwrap();
    let (host, _actor) = msg_echo(&nats, &[("subscription", "work")]).await;
    let user = client(&nats).await;
    let mut answers = user.subscribe("answers").await.unwrap();
    lattice::round_trip(&user, Duration::from_secs(5))
        .await
        .unwrap();
    // Read as they come (a subscription holds only so many unread).
    let counting = tokio::spawn(async move {
        let mut seen = std::collections::BTreeMap::<u32, u32>::new();
        while let Ok(Some(answer)) =
            tokio::time::timeout(Duration::from_secs(3), answers.next()).await
        {
            let text = String::from_utf8_lossy(&answer.payload).into_owned();
            let seq: u32 = text.trim_start_matches("echo: ").parse().unwrap();
            *seen.entry(seq).or_default() += 1;
        }
        seen
    });
    // Numbered messages, steadily (about 5 a millisecond), until the replacements are done.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (user, stop) = (user.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                user.publish_with_reply("work", "answers", sent.to_string().into())
                    .await
                    .unwrap();
                sent += 1;
                if sent.is_multiple_of(5) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            user.flush().await.unwrap();
            sent
        })
    };
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        host.replace_provider("nats", Arc::new(NatsMessaging::new(nats.url())))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = publisher.await.unwrap();
    let seen = counting.await.unwrap();
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    eprintln!("in-process replacement: 5 replacements, {sent} messages, each answered once");
    assert_eq!(
        seen.len(),
        sent as usize,
        "messages lost across the replacements"
    );
    host.shutdown().await;
}
