//! Strangers on the lattice's own NATS server (STYLE 18): a client holding no member key
//! invokes an actor directly, replays a captured invocation, answers a provider's calls with
//! forged answers, sends the provider a call naming another Redis, and answers pings as a
//! fake host and with garbage, all while the legitimate app serves under load. Each is
//! dropped (and counted by the member that dropped it); the app fails no request and applies
//! every increment exactly once.

use crate::control::NoProviders;
use crate::lattice::{LATTICE, count, counter_request, member, redis_link, redis_provider};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use weft_contracts::httpserver::HANDLE_REQUEST;
use weft_host::control::{Control, nats};
use weft_lattice::{self as lattice, ActorInvocation, Answer, ProviderInvocation, Subjects};
use weft_testing::{NatsServer, RedisServer};

/// Nothing answers `request` on `subject` within 300 ms.
async fn unanswered(
    stranger: &async_nats::Client,
    subject: String,
    headers: async_nats::HeaderMap,
    body: Vec<u8>,
) {
    let answer = tokio::time::timeout(
        Duration::from_millis(300),
        stranger.request_with_headers(subject.clone(), headers, body.into()),
    )
    .await;
    assert!(
        answer.is_err(),
        "a stranger was answered on {subject}: {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_on_the_wire_change_nothing_while_the_app_serves() {
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let other_redis = RedisServer::start().unwrap();
    let _provider = redis_provider(&nats).await;
    let a = member(&nats).await;
    let kvcounter = std::fs::read(crate::signed_actor("kvcounter")).unwrap();
    let actor = a.start_actor(&kvcounter).await.unwrap().id;
    a.put_link(redis_link(&actor, &redis)).await.unwrap();
    // Host b does not run the actor: every call it makes crosses the lattice, and every
    // increment crosses it again to the provider.
    let b = member(&nats).await;
    let control_member = crate::join(&nats.url(), LATTICE, "host a's control").await;
    let control = Arc::new(Control::new(
        a.clone(),
        Arc::new(NoProviders),
        BTreeMap::new(),
    ));
    let host_id = control.host_id().to_string();
    let _control = nats::serve(
        control,
        control_member.clone(),
        Duration::from_secs(30),
        weft_lattice::envelope::Verifier::new([]),
    )
    .await
    .unwrap();
    let first = count(&b, &actor).await.unwrap();

    let subjects = Subjects::new(LATTICE);
    let stranger = lattice::connect(&lattice::NatsOptions {
        url: nats.url(),
        ..lattice::NatsOptions::default()
    })
    .await
    .unwrap();
    // The stranger sees everything (no NATS permissions here): the calls to the provider,
    // which it answers at once with forged results, unsealed and with a made-up seal.
    let mut calls = stranger
        .subscribe(subjects.provider_instance_calls("redis", "*"))
        .await
        .unwrap();
    let forger = stranger.clone();
    let forged = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let forgeries = forged.clone();
    let forging = tokio::spawn(async move {
        while let Some(call) = calls.next().await {
            // (Not its own theft attempt below: that one must go unanswered.)
            if call.headers.is_none() {
                continue;
            }
            let (Some(reply), Ok(batch)) = (
                call.reply.clone(),
                rmp_serde::from_slice::<Vec<(u64, serde_bytes::ByteBuf)>>(&call.payload),
            ) else {
                continue;
            };
            let lies: Vec<(u64, Answer)> = batch
                .iter()
                .map(|(id, _)| {
                    (
                        *id,
                        Answer::Ok(weft_contracts::encode(&999_999i32).unwrap()),
                    )
                })
                .collect();
            let lies = rmp_serde::to_vec(&lies).unwrap();
            let from = call
                .headers
                .as_ref()
                .and_then(|h| h.get(lattice::member::FROM_HEADER))
                .map(|v| v.to_string())
                .unwrap_or_default();
            let mut posing = async_nats::HeaderMap::new();
            posing.insert(lattice::member::FROM_HEADER, from.as_str());
            posing.insert(lattice::member::SEAL_HEADER, "1.1.AAAA");
            let _ = forger.publish(reply.clone(), lies.clone().into()).await;
            let _ = forger
                .publish_with_headers(reply, posing, lies.into())
                .await;
            forgeries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // And the actor's invocations, one of which it keeps to replay.
    let mut invocations = stranger.subscribe(subjects.actor(&actor)).await.unwrap();
    lattice::round_trip(&stranger, Duration::from_secs(5))
        .await
        .unwrap();

    // The app under load: two callers through host b, every answer must be right.
    const CALLS: usize = 150;
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (b, actor) = (b.clone(), actor.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..CALLS {
                    seen.push(count(&b, &actor).await.map_err(|e| e.to_string()));
                }
                seen
            })
        })
        .collect();

    // 1. An invocation straight to the actor's subject, unsealed.
    let invocation = ActorInvocation {
        operation: HANDLE_REQUEST.into(),
        payload: counter_request(),
        origin: "stranger".into(),
        deadline_ms: 1000,
        traceparent: None,
    };
    let body = lattice::encode(&subjects.actor(&actor), &invocation).unwrap();
    unanswered(
        &stranger,
        subjects.actor(&actor),
        async_nats::HeaderMap::new(),
        body,
    )
    .await;

    // 2. A member's invocation, captured and sent again word for word: a replay.
    // (The first one it sees may be its own unsealed attempt.)
    let captured = loop {
        let message = invocations.next().await.unwrap();
        if message.headers.is_some() {
            break message;
        }
    };
    unanswered(
        &stranger,
        subjects.actor(&actor),
        captured.headers.clone().unwrap(),
        captured.payload.to_vec(),
    )
    .await;

    // 2b. The caller's own inbox (seen in that invocation) flooded with answers, each naming
    // a made-up member (so each would need a key request to open): refused off the path of
    // the real answers.
    let inbox = captured.reply.clone().unwrap();
    let prefix = inbox.as_str().rsplit_once('.').unwrap().0.to_string();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    for token in 0..300u64 {
        let mut posing = async_nats::HeaderMap::new();
        posing.insert(
            lattice::member::FROM_HEADER,
            nkeys::XKey::new().public_key().as_str(),
        );
        posing.insert(
            lattice::member::SEAL_HEADER,
            format!("{token}.{now_ms}.AAAA").as_str(),
        );
        let _ = stranger
            .publish_with_headers(format!("{prefix}.{token}"), posing, "lies".into())
            .await;
    }

    // 2c. A chunked offer of 1 GiB with a made-up seal: nothing is pulled from its inbox.
    let mut pulls = stranger.subscribe("_INBOX.stranger").await.unwrap();
    lattice::round_trip(&stranger, Duration::from_secs(5))
        .await
        .unwrap();
    let mut offer = async_nats::HeaderMap::new();
    let claimed = captured
        .headers
        .as_ref()
        .and_then(|h| h.get(lattice::member::FROM_HEADER))
        .map(|v| v.to_string())
        .unwrap_or_default();
    offer.insert(lattice::member::FROM_HEADER, claimed.as_str());
    offer.insert(
        lattice::member::SEAL_HEADER,
        format!("999999.{now_ms}.AAAA").as_str(),
    );
    offer.insert(
        lattice::chunks::CHUNKED_HEADER,
        "_INBOX.stranger 1073741824 1048576 00",
    );
    let _ = stranger
        .publish_with_headers(subjects.actor(&actor), offer, Default::default())
        .await;
    let pulled = tokio::time::timeout(Duration::from_millis(300), pulls.next()).await;
    assert!(pulled.is_err(), "a stranger's offer was pulled from");

    // 2d. Asking the hosts for the real link's values (as a provider process that missed
    // it would), and a member for its key with a made-up token: neither answered.
    let wanted = subjects.provider_link_get("redis");
    let body = lattice::encode(&wanted, &redis_link(&actor, &redis).key()).unwrap();
    unanswered(&stranger, wanted, async_nats::HeaderMap::new(), body).await;
    unanswered(
        &stranger,
        subjects.member_key(&claimed),
        async_nats::HeaderMap::new(),
        b"not a token".to_vec(),
    )
    .await;

    // 3. The provider told of a link naming another Redis, and a call through it. (A call
    // names its link and carries no values, so a call alone cannot name a Redis.)
    let elsewhere = redis_link(&actor, &other_redis);
    let put = subjects.provider_link_put("redis");
    let body = lattice::encode(&put, &elsewhere).unwrap();
    unanswered(&stranger, put, async_nats::HeaderMap::new(), body).await;
    let theft = ProviderInvocation {
        link: elsewhere.key(),
        operation: weft_contracts::keyvalue::INCREMENT.into(),
        payload: weft_contracts::encode(&weft_contracts::keyvalue::IncrementRequest {
            key: "stolen".into(),
            value: 1,
        })
        .unwrap(),
        deadline_ms: 1000,
        traceparent: None,
    };
    let subject = crate::instance_calls(&control_member, "redis").await;
    let batch = rmp_serde::to_vec(&vec![(
        1u64,
        serde_bytes::ByteBuf::from(lattice::encode(&subject, &theft).unwrap()),
    )])
    .unwrap();
    unanswered(
        &stranger,
        subject.clone(),
        async_nats::HeaderMap::new(),
        batch,
    )
    .await;

    // 3b. Every host told to route the provider's calls to the stranger's own subject, and
    // the provider process told to leave: neither obeyed (nor answered) without a seal.
    let instance = subject
        .split('.')
        .rev()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let switch = weft_lattice::RouteSwitch {
        provider_id: "redis".into(),
        instance: "XSTRANGER".into(),
    };
    let mut stolen = stranger
        .subscribe(subjects.provider_instance_calls("redis", "XSTRANGER"))
        .await
        .unwrap();
    for host in [&a, &b] {
        let member = host.lattice_member().unwrap();
        let routes = subjects.routes(member.id());
        let body = lattice::encode(&routes, &switch).unwrap();
        unanswered(&stranger, routes, async_nats::HeaderMap::new(), body).await;
    }
    let leave = subjects.provider_instance_leave("redis", &instance);
    unanswered(&stranger, leave, async_nats::HeaderMap::new(), Vec::new()).await;

    // 4. Pings answered by a fake host, and with garbage.
    let mut pings = stranger.subscribe(subjects.ping()).await.unwrap();
    lattice::round_trip(&stranger, Duration::from_secs(5))
        .await
        .unwrap();
    let impostor = stranger.clone();
    let posing = tokio::spawn(async move {
        while let Some(ping) = pings.next().await {
            let Some(reply) = ping.reply else { continue };
            let fake = weft_host::control::HostInventory {
                host_id: "NFAKEHOSTLEASTLOADED".into(),
                member_id: String::new(),
                labels: BTreeMap::new(),
                uptime_secs: 0,
                actors: Vec::new(),
                providers: Vec::new(),
                links: Vec::new(),
            };
            let answer = lattice::encode("x", &Answer::encoded("x", &fake)).unwrap();
            let _ = impostor.publish(reply.clone(), answer.into()).await;
            let _ = impostor.publish(reply, "garbage".into()).await;
        }
    });
    let operator_view = crate::join(&nats.url(), LATTICE, "operator").await;
    let hosts = nats::inventories(&operator_view, Duration::from_millis(500))
        .await
        .unwrap();
    posing.abort();
    assert_eq!(
        hosts.iter().map(|h| h.host_id.as_str()).collect::<Vec<_>>(),
        vec![host_id.as_str()],
        "only the real host is listed"
    );
    assert!(
        operator_view.refusals() >= 2,
        "the fake answers were not refused"
    );

    // The app: every call answered, right, each increment applied once.
    let mut answers = Vec::new();
    for caller in load {
        for answer in caller.await.unwrap() {
            answers.push(answer.unwrap_or_else(|e| panic!("a legitimate call failed: {e}")));
        }
    }
    forging.abort();
    assert!(
        forged.load(std::sync::atomic::Ordering::Relaxed) > 10,
        "the stranger forged too few answers for this to show anything"
    );
    answers.sort_unstable();
    let expected: Vec<i64> = (first + 1..=first + 2 * CALLS as i64).collect();
    assert_eq!(
        answers, expected,
        "an increment was lost, doubled or forged"
    );
    assert_eq!(
        count(&a, &actor).await.unwrap(),
        first + 2 * CALLS as i64 + 1
    );
    assert_eq!(other_redis.get("stolen").unwrap(), None);
    assert_eq!(redis.get("stolen").unwrap(), None);
    let rerouted = tokio::time::timeout(Duration::from_millis(100), stolen.next()).await;
    assert!(rerouted.is_err(), "a call was routed to the stranger");
}
