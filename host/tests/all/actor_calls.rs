//! Actor-to-actor calls (#17 item 3): pinger calls ponger by its call alias or its module key,
//! in the host's process and across a lattice; the caller's deadline travels with the call;
//! an unknown or stopped target is a clear error; neither side needs a capability (ponger is
//! signed with none).

use crate::lattice::member;
use std::time::{Duration, Instant};
use weft_contracts::httpserver::{HANDLE_REQUEST, HttpRequest, HttpResponse};
use weft_host::{Host, HostConfig};
use weft_testing::NatsServer;

/// pinger's answer to a request for `path` with `body`: its status and text.
async fn ping(host: &Host, pinger: &str, path: &str, body: &[u8]) -> (u16, String) {
    let request = weft_contracts::encode(&HttpRequest {
        method: "POST".into(),
        path: path.into(),
        body: body.to_vec(),
        ..HttpRequest::default()
    })
    .unwrap();
    let answer = host.invoke(pinger, HANDLE_REQUEST, &request).await.unwrap();
    let response: HttpResponse = weft_contracts::decode(&answer).unwrap();
    (
        response.status_code,
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

fn host_with_deadline(deadline_ms: u64) -> Host {
    Host::new(HostConfig {
        policy: weft_host::LoadPolicy {
            limits: weft_host::Limits {
                call_deadline_ms: deadline_ms,
                ..weft_host::Limits::default()
            },
            ..weft_host::LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_call_each_other_in_process_by_alias_or_module_key() {
    let host = host_with_deadline(1000);
    let ponger = std::fs::read(crate::signed_actor("ponger")).unwrap();
    let ponger = host.start_actor(&ponger).await.unwrap();
    assert!(ponger.capabilities.is_empty(), "ponger is signed with none");
    let pinger = std::fs::read(crate::signed_actor("pinger")).unwrap();
    let pinger = host.start_actor(&pinger).await.unwrap().id;

    assert_eq!(
        ping(&host, &pinger, "/", b"hi").await,
        (200, "pong: hi".into())
    );
    let by_key = format!("/to/{}", ponger.id);
    assert_eq!(
        ping(&host, &pinger, &by_key, b"k").await,
        (200, "pong: k".into())
    );
    let (status, text) = ping(&host, &pinger, "/to/weft/examples/nobody", b"").await;
    assert_eq!(status, 502, "{text}");
    assert!(
        text.contains("called actor weft/examples/nobody, which does not run on this host"),
        "{text}"
    );

    // A callee that never answers is stopped within the caller's deadline, early enough for
    // the caller to answer with the error (a callee given a deadline of its own would outlive
    // the caller, which would be stopped instead, with no answer of its own).
    let spinner = host.start_actor(&crate::guest(&[])).await.unwrap().id;
    let started = Instant::now();
    let (status, text) = ping(
        &host,
        &pinger,
        &format!("/to/{spinner}"),
        &crate::cmd(b'l', 0),
    )
    .await;
    assert_eq!(status, 502, "{text}");
    assert!(text.contains("deadline"), "{text}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    // Stopped, it is gone by alias and by key.
    host.stop_actor(&ponger.id).unwrap();
    let (status, text) = ping(&host, &pinger, "/", b"").await;
    assert_eq!(status, 502, "{text}");
    assert!(text.contains("does not run on this host"), "{text}");
    let (status, _) = ping(&host, &pinger, &by_key, b"").await;
    assert_eq!(status, 502);

    // Started again, its alias names it again.
    let again = std::fs::read(crate::signed_actor("ponger")).unwrap();
    host.start_actor(&again).await.unwrap();
    assert_eq!(
        ping(&host, &pinger, "/", b"back").await,
        (200, "pong: back".into())
    );
}

/// pinger on one host, ponger on another: called by alias and by module key over NATS; once
/// ponger stops, the error says nothing serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_call_each_other_across_a_lattice() {
    let nats = NatsServer::start().unwrap();
    let (a, b) = (member(&nats).await, member(&nats).await);
    let ponger = std::fs::read(crate::signed_actor("ponger")).unwrap();
    let ponger = b.start_actor(&ponger).await.unwrap().id;
    let pinger = std::fs::read(crate::signed_actor("pinger")).unwrap();
    let pinger = a.start_actor(&pinger).await.unwrap().id;

    assert_eq!(
        ping(&a, &pinger, "/", b"far").await,
        (200, "pong: far".into())
    );
    assert_eq!(
        ping(&a, &pinger, &format!("/to/{ponger}"), b"key").await,
        (200, "pong: key".into())
    );
    b.stop_actor(&ponger).unwrap();
    // Its subscriptions end as the task serving them is dropped; a call racing that would
    // wait for its deadline (what a stop means for calls already on their way).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, text) = ping(&a, &pinger, "/", b"").await;
    assert_eq!(status, 502, "{text}");
    assert!(
        text.contains("nothing serves weft.test.alias.weft/examples/ponger"),
        "{text}"
    );
}
