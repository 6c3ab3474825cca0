//! Health (#20): a round of checks finds an actor's missing link, an unhealthy provider behind
//! its link, its own `Actor.HealthRequest` answer, and a lost NATS connection; readiness
//! follows, with since when, and each turn is a change subscribers hear of. Against real
//! `redis-server` and `nats-server` processes.

use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_host::health::{HealthConfig, Part, Readiness};
use weft_host::{Host, HostConfig};
use weft_provider_sdk::LinkDefinition;
use weft_testing::{NatsServer, RedisServer};

const CONFIG: HealthConfig = HealthConfig {
    interval: Duration::from_millis(200),
    timeout: Duration::from_secs(2),
};

/// An actor named `name`, signed for `caps`, that answers every call with `answer` (a WAT
/// string), or fails every call with it as its guest error when `fails`.
fn answering(name: &str, caps: &[&str], answer: &str, fails: bool) -> Vec<u8> {
    let len = answer.len() - 2 * answer.matches('\\').count();
    let reply = if fails { "$err" } else { "$resp" };
    let wat = format!(
        r#"(module
  (import "wapc" "__guest_response" (func $resp (param i32 i32)))
  (import "wapc" "__guest_error" (func $err (param i32 i32)))
  (memory (export "memory") 1) (func (export "__wasmbus_rpc_version") (result i32) i32.const 1)
  (data (i32.const 0) "{answer}")
  (func (export "__guest_call") (param i32 i32) (result i32)
    (call {reply} (i32.const 0) (i32.const {len}))
    (i32.const {ok})))"#,
        ok = i32::from(!fails)
    );
    let module = wat::parse_str(&wat).unwrap();
    let account = wascap::KeyRole::Account.generate().unwrap();
    let claims = wascap::Claims::new(
        account.public_key(),
        wascap::KeyRole::Module.generate().unwrap().public_key(),
        wascap::Actor {
            name: Some(name.into()),
            caps: Some(caps.iter().map(|c| c.to_string()).collect()),
            ..wascap::Actor::default()
        },
    );
    wascap::embed_claims(&module, &claims, &account).unwrap()
}

/// MessagePack of `{"healthy": true}`, as a WAT string.
const HEALTHY: &str = r"\81\a7healthy\c3";

fn link(actor: &str, contract: &str, provider: &str) -> LinkDefinition {
    LinkDefinition {
        actor_id: actor.into(),
        contract_id: contract.into(),
        link_name: "default".into(),
        provider_id: provider.into(),
        values: Default::default(),
    }
}

fn actor<'a>(readiness: &'a Readiness, id: &str) -> &'a weft_host::health::ActorHealth {
    readiness
        .actors
        .iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("{id} not in {readiness:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_link_turns_its_actor_unready_until_it_is_put_back() {
    let host = Host::new(HostConfig::default()).unwrap();
    assert!(!host.readiness().ready, "not ready before the first round");
    host.add_provider("kv", Arc::new(weft_keyvalue_memory::MemoryKeyValue::new()))
        .await
        .unwrap();
    let counter = answering("counter", &["wasmcloud:keyvalue"], HEALTHY, false);
    let counter = host.start_actor(&counter).await.unwrap().id;
    let other = answering("other", &[], HEALTHY, false);
    let other = host.start_actor(&other).await.unwrap().id;
    host.put_link(link(&counter, "wasmcloud:keyvalue", "kv"))
        .await
        .unwrap();
    let mut changes = host.health_changes();

    let ready = host.check_health(CONFIG).await;
    assert!(ready.ready, "{ready:#?}");
    assert_eq!(ready.providers.len(), 1);
    let since = actor(&ready, &counter).status.since_unix_ms;
    assert!(
        changes.try_recv().is_err(),
        "healthy at first sight is no change"
    );

    host.delete_link(&counter, "wasmcloud:keyvalue", "default")
        .await
        .unwrap();
    let unready = host.check_health(CONFIG).await;
    assert!(!unready.ready);
    let problems = &actor(&unready, &counter).status.problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("actor counter is signed for wasmcloud:keyvalue and has no link")
            && problems[0].contains("weft link put counter wasmcloud:keyvalue"),
        "{problems:?}"
    );
    assert!(
        actor(&unready, &other).status.healthy,
        "the other actor stays healthy"
    );
    assert!(unready.of_actor(&other).unwrap().ready);
    assert!(!unready.of_actor(&counter).unwrap().ready);
    let change = changes.try_recv().unwrap();
    assert_eq!(
        (change.part, change.id.as_str()),
        (Part::Actor, counter.as_str())
    );
    assert!(!change.status.healthy);
    // Serving goes on: the other actor answers.
    assert!(host.invoke(&other, "Anything.At", b"").await.is_ok());
    assert_eq!(
        host.health_of(Part::Actor, &counter).map(|s| s.healthy),
        Some(false)
    );

    host.put_link(link(&counter, "wasmcloud:keyvalue", "kv"))
        .await
        .unwrap();
    let back = host.check_health(CONFIG).await;
    assert!(back.ready, "{back:#?}");
    assert!(actor(&back, &counter).status.since_unix_ms >= since);
    let change = changes.try_recv().unwrap();
    assert!(change.status.healthy && change.id == counter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_reporting_itself_unhealthy_or_failing_its_check_is_not_ready() {
    let host = Host::new(HostConfig::default()).unwrap();
    let sick = answering(
        "sick",
        &[],
        r"\82\a7healthy\c2\a7message\a9disk full",
        false,
    );
    let sick = host.start_actor(&sick).await.unwrap().id;
    let failing = answering("failing", &[], "no health here", true);
    let failing = host.start_actor(&failing).await.unwrap().id;
    let garbled = answering("garbled", &[], "not msgpack", false);
    let garbled = host.start_actor(&garbled).await.unwrap().id;
    // Not asked before they serve: an actor holds no instance until called, and checks take
    // only idle ones.
    let unasked = host.check_health(CONFIG).await;
    assert!(unasked.ready, "{unasked:#?}");
    for actor in [&sick, &failing, &garbled] {
        let _ = host.invoke(actor, "Anything.At", b"").await;
    }

    let found = host.check_health(CONFIG).await;
    assert!(!found.ready);
    assert_eq!(
        actor(&found, &sick).status.problems,
        ["actor sick reports itself unhealthy: disk full"]
    );
    let failed = &actor(&found, &failing).status.problems;
    assert!(
        failed[0].contains("actor failing's Actor.HealthRequest failed")
            && failed[0].contains("no health here"),
        "{failed:?}"
    );
    let garbled = &actor(&found, &garbled).status.problems;
    assert!(
        garbled[0].contains("answered Actor.HealthRequest with what is not a health report"),
        "{garbled:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_take_only_an_idle_instance_and_never_wait_for_one() {
    let host = Host::new(HostConfig {
        policy: weft_host::LoadPolicy {
            limits: weft_host::Limits {
                call_deadline_ms: 3000,
                ..weft_host::Limits::default()
            },
            ..weft_host::LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap();
    let busy = host.start_actor(&crate::guest(&[])).await.unwrap().id;
    host.scale_actor(&busy, 1).unwrap();
    let before = host.check_health(CONFIG).await;
    let status = actor(&before, &busy).status.clone();

    // Its only instance loops until the call's deadline.
    let looping = {
        let host = host.clone();
        let busy = busy.clone();
        tokio::spawn(async move { host.invoke(&busy, "loop", &crate::cmd(b'l', 0)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let during = host.check_health(CONFIG).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1000),
        "the round waited {took:?} for a busy instance"
    );
    assert_eq!(
        actor(&during, &busy).status,
        status,
        "a busy actor keeps its last answer"
    );
    let looped = looping.await.unwrap();
    assert!(
        looped.unwrap_err().to_string().contains("deadline"),
        "the busy call ran undisturbed to its deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_provider_whose_server_stops_turns_unhealthy_and_back() {
    let mut redis = RedisServer::start().unwrap();
    let host = Host::new(HostConfig::default()).unwrap();
    host.add_provider(
        "redis",
        Arc::new(weft_keyvalue_redis::RedisKeyValue::new(None)),
    )
    .await
    .unwrap();
    let counter = answering("counter", &["wasmcloud:keyvalue"], HEALTHY, false);
    let counter = host.start_actor(&counter).await.unwrap().id;
    let other = answering("other", &[], HEALTHY, false);
    let other = host.start_actor(&other).await.unwrap().id;
    let mut to_redis = link(&counter, "wasmcloud:keyvalue", "redis");
    to_redis.values.insert("URL".into(), redis.url());
    host.put_link(to_redis).await.unwrap();
    assert!(host.check_health(CONFIG).await.ready);

    redis.kill();
    let down = host.check_health(CONFIG).await;
    assert!(!down.ready);
    let provider = down.providers.iter().find(|p| p.id == "redis").unwrap();
    assert!(
        provider.status.problems[0].contains(&format!(
            "provider redis reports itself unhealthy: Redis at {} does not answer PING",
            redis.url()
        )),
        "{provider:?}"
    );
    let problems = &actor(&down, &counter).status.problems;
    assert!(
        problems[0].contains(
            "its link for wasmcloud:keyvalue (default) names provider redis, which is unhealthy"
        ),
        "{problems:?}"
    );
    assert!(actor(&down, &other).status.healthy);

    redis.restart().unwrap();
    let started = Instant::now();
    loop {
        let readiness = host.check_health(CONFIG).await;
        if readiness.ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ready 10 s after Redis came back: {readiness:#?}"
        );
        tokio::time::sleep(CONFIG.interval).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_loses_nats_is_not_ready_until_it_reconnects() {
    let mut nats = NatsServer::start().unwrap();
    let host = crate::lattice::member(&nats).await;
    let ready = host.check_health(CONFIG).await;
    assert!(ready.ready, "{ready:#?}");
    assert!(ready.lattice.as_ref().is_some_and(|l| l.healthy));

    nats.kill();
    let until = |want: bool| {
        let host = host.clone();
        async move {
            let started = Instant::now();
            loop {
                let readiness = host.check_health(CONFIG).await;
                if readiness.ready == want {
                    return readiness;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "readiness not {want} within 15 s: {readiness:#?}"
                );
                tokio::time::sleep(CONFIG.interval).await;
            }
        }
    };
    let lost = until(false).await;
    let lattice = lost.lattice.unwrap();
    assert!(
        lattice.problems[0].contains("the host's NATS connection to lattice"),
        "{lattice:?}"
    );
    nats.restart().unwrap();
    let back = until(true).await;
    assert!(back.lattice.unwrap().healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watched_rounds_keep_coming_and_stop_with_the_host() {
    let host = Host::new(HostConfig::default()).unwrap();
    let rounds = host.watch_health(CONFIG);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = host.readiness().checked_unix_ms;
    assert!(first > 0, "the first round runs at once");
    tokio::time::sleep(CONFIG.interval * 2).await;
    assert!(
        host.readiness().checked_unix_ms > first,
        "rounds keep coming"
    );
    drop(host);
    tokio::time::timeout(Duration::from_secs(2), rounds)
        .await
        .expect("the rounds end once the host is gone")
        .unwrap();
}
