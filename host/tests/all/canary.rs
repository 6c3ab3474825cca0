//! Canary updates: a new version takes its share of the calls beside the running one and is
//! judged against it: a version failing one call in five is rolled back by itself, with no
//! failed call beyond its share; a good one is promoted at the end of its window; an operator
//! may decide first; a canary of an actor that is stopped ends.

use crate::swap::Versions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wascap::contracts;
use weft_contracts::httpserver::{HANDLE_REQUEST, HttpRequest};
use weft_host::canary::{CanaryPlan, CanaryVerdict, Outcome};
use weft_host::{Host, HostConfig, HostError, UpdateOptions, UpdateRefused};

const CAPS: [&str; 1] = [contracts::HTTP_SERVER];

fn code(actor: &str) -> Vec<u8> {
    std::fs::read(crate::signed_actor(actor)).unwrap()
}

/// A host running hello (revision 1) as `versions` signs it; its id.
async fn hello_host(versions: &Versions) -> (Host, String) {
    let host = Host::new(HostConfig::default()).unwrap();
    let id = host
        .start_actor(&versions.sign(&code("hello"), 1, &CAPS, 0))
        .await
        .unwrap()
        .id;
    (host, id)
}

/// Clients calling an actor until told to stop, counting calls and failures, and the
/// failures after `quiet` is set (when no call may fail any more).
struct Load {
    stop: Arc<AtomicBool>,
    quiet: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    failed_when_quiet: Arc<AtomicU64>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(host: &Host, id: &str, clients: usize) -> Self {
        let request = weft_contracts::encode(&HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            ..HttpRequest::default()
        })
        .unwrap();
        let load = Load {
            stop: Arc::default(),
            quiet: Arc::default(),
            calls: Arc::default(),
            failed: Arc::default(),
            failed_when_quiet: Arc::default(),
            clients: Vec::new(),
        };
        let clients = (0..clients)
            .map(|_| {
                let (host, id, request) = (host.clone(), id.to_string(), request.clone());
                let (stop, quiet) = (load.stop.clone(), load.quiet.clone());
                let (calls, failed) = (load.calls.clone(), load.failed.clone());
                let failed_when_quiet = load.failed_when_quiet.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let result = host.invoke(&id, HANDLE_REQUEST, &request).await;
                        calls.fetch_add(1, Ordering::Relaxed);
                        if result.is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if quiet.load(Ordering::Relaxed) {
                                failed_when_quiet.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // A little time between calls, so that two clients share two cores
                        // with the watcher.
                        tokio::time::sleep(Duration::from_micros(200)).await;
                    }
                })
            })
            .collect();
        Load { clients, ..load }
    }

    /// Stops the clients; (calls, failed, failed after `quiet`).
    async fn finish(self) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.unwrap();
        }
        (
            self.calls.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.failed_when_quiet.load(Ordering::Relaxed),
        )
    }
}

async fn verdict(
    verdicts: &mut tokio::sync::broadcast::Receiver<CanaryVerdict>,
    within: Duration,
) -> CanaryVerdict {
    tokio::time::timeout(within, verdicts.recv())
        .await
        .expect("no verdict in time")
        .unwrap()
}

/// Clients calling hello throughout the bad canary.
const CLIENTS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_one_call_in_five_is_rolled_back_with_no_failure_beyond_its_share() {
    let versions = Versions::new();
    let (host, id) = hello_host(&versions).await;
    let mut verdicts = host.canary_verdicts();
    let load = Load::start(&host, &id, CLIENTS);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let calls_before = load.calls.load(Ordering::Relaxed);
    assert_eq!(load.failed.load(Ordering::Relaxed), 0);

    let started = Instant::now();
    let bad = versions.sign(&code("flaky"), 2, &CAPS, 0);
    let plan = CanaryPlan::new(100_000, Duration::from_secs(30));
    let canary = host
        .canary_actor(&id, &bad, UpdateOptions::default(), plan)
        .await
        .unwrap();
    assert_eq!(canary.revision, Some(2));
    let status = host.canary_of(&id).unwrap();
    assert_eq!((status.revision, status.share_ppm), (Some(2), 100_000));
    let calls_at_start = load.calls.load(Ordering::Relaxed);

    let verdict = verdict(&mut verdicts, Duration::from_secs(30)).await;
    let took = started.elapsed();
    let calls_at_verdict = load.calls.load(Ordering::Relaxed);
    // A call a client had already sent to the canary when the verdict was reached still ends
    // there (and is not in the verdict's figures); give those a moment before counting
    // failures as "after".
    tokio::time::sleep(Duration::from_millis(50)).await;
    load.quiet.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (calls, failed, failed_after) = load.finish().await;

    assert_eq!(verdict.outcome, Outcome::RolledBack, "{verdict}");
    assert!(verdict.why.contains("error rate"), "{verdict}");
    // Rolled back as soon as its figures showed it, not at the end of the 30 s window.
    assert!(took < Duration::from_secs(10), "{took:?}: {verdict}");
    // Every failed call was one of the canary's, and it had its share of the calls.
    assert!(
        (verdict.new.failed..=verdict.new.failed + CLIENTS as u64).contains(&failed),
        "{failed} calls failed, the canary {}: {verdict}",
        verdict.new.failed
    );
    assert!(verdict.new.failed * 10 >= verdict.new.calls, "{verdict}");
    let during = calls_at_verdict - calls_at_start;
    assert!(
        verdict.new.calls <= during / 10 + 8,
        "{} of {during} calls went to the canary",
        verdict.new.calls
    );
    assert_eq!(failed_after, 0, "calls failed after the rollback");
    assert_eq!(verdict.old.failed, 0, "{verdict}");
    assert!(host.canary_of(&id).is_none());
    assert_eq!(host.actor_pool(&id).unwrap().identity().revision, Some(1));
    assert_eq!(host.compiled_modules(), 1, "the canary's code is evicted");
    eprintln!(
        "bad canary: rolled back after {took:?}; {calls} calls ({calls_before} before it), \
         {failed} failed, all the canary's: {verdict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_canary_is_promoted_at_the_end_of_its_window() {
    let versions = Versions::new();
    let (host, id) = hello_host(&versions).await;
    let mut verdicts = host.canary_verdicts();
    let load = Load::start(&host, &id, 2);
    let started = Instant::now();
    let good = versions.sign(&code("hello"), 2, &CAPS, 1);
    let plan = CanaryPlan::new(200_000, Duration::from_secs(2));
    host.canary_actor(&id, &good, UpdateOptions::default(), plan)
        .await
        .unwrap();
    let verdict = verdict(&mut verdicts, Duration::from_secs(20)).await;
    let took = started.elapsed();
    load.quiet.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (calls, failed, _) = load.finish().await;

    assert_eq!(verdict.outcome, Outcome::Promoted, "{verdict}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert_eq!(failed, 0);
    assert!(verdict.new.calls >= 20, "{verdict}");
    assert!(verdict.new.p99_us.is_some() && verdict.old.p99_us.is_some());
    assert_eq!(host.actor_pool(&id).unwrap().identity().revision, Some(2));
    assert!(host.canary_of(&id).is_none());
    assert_eq!(host.compiled_modules(), 1, "the old code is evicted");
    eprintln!("good canary: promoted after {took:?}; {calls} calls, 0 failed: {verdict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_decides_first_and_a_stopped_actor_ends_its_canary() {
    let versions = Versions::new();
    let (host, id) = hello_host(&versions).await;
    let mut verdicts = host.canary_verdicts();
    let plan = CanaryPlan::new(500_000, Duration::from_secs(60));
    let canary = |rev| versions.sign(&code("hello"), rev, &CAPS, 0);

    host.canary_actor(&id, &canary(2), UpdateOptions::default(), plan)
        .await
        .unwrap();
    // One new version at a time: an update or a second canary waits for the verdict.
    for refused in [
        host.update_actor(&id, &canary(3), UpdateOptions::default())
            .await,
        host.canary_actor(&id, &canary(3), UpdateOptions::default(), plan)
            .await,
    ] {
        match refused {
            Err(HostError::UpdateRefused {
                reason: UpdateRefused::CanaryRunning { canary },
                ..
            }) => assert_eq!(canary, "2"),
            other => panic!("not refused: {other:?}"),
        }
    }
    host.decide_canary(&id, true).unwrap();
    let decided = verdict(&mut verdicts, Duration::from_secs(5)).await;
    assert_eq!(decided.outcome, Outcome::Promoted, "{decided}");
    assert!(decided.why.contains("operator"), "{decided}");
    assert_eq!(host.actor_pool(&id).unwrap().identity().revision, Some(2));
    assert!(matches!(
        host.decide_canary(&id, false),
        Err(HostError::NoCanary(_))
    ));

    host.canary_actor(&id, &canary(3), UpdateOptions::default(), plan)
        .await
        .unwrap();
    host.decide_canary(&id, false).unwrap();
    let rolled_back = verdict(&mut verdicts, Duration::from_secs(5)).await;
    assert_eq!(rolled_back.outcome, Outcome::RolledBack);
    assert_eq!(host.actor_pool(&id).unwrap().identity().revision, Some(2));

    host.canary_actor(&id, &canary(3), UpdateOptions::default(), plan)
        .await
        .unwrap();
    host.stop_actor(&id).unwrap();
    let ended = verdict(&mut verdicts, Duration::from_secs(10)).await;
    assert_eq!(ended.outcome, Outcome::Ended, "{ended}");
    assert!(
        host.actors().is_empty(),
        "a stopped actor is not brought back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_out_of_bounds_or_unfit_is_refused_and_changes_nothing() {
    let versions = Versions::new();
    let (host, id) = hello_host(&versions).await;
    let next = versions.sign(&code("hello"), 2, &CAPS, 0);
    let all_calls = CanaryPlan::new(1_000_000, Duration::from_secs(60));
    let refused = host
        .canary_actor(&id, &next, UpdateOptions::default(), all_calls)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("below 100%"), "{refused}");
    // The checks of an update hold for a canary: a lower revision is refused.
    let lower = versions.sign(&code("hello"), 0, &CAPS, 0);
    let plan = CanaryPlan::new(100_000, Duration::from_secs(60));
    let refused = host
        .canary_actor(&id, &lower, UpdateOptions::default(), plan)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("lower"), "{refused}");
    assert!(host.canary_of(&id).is_none());
    assert_eq!(host.actor_pool(&id).unwrap().identity().revision, Some(1));
    assert!(matches!(
        host.canary_actor("MNOSUCHACTOR", &next, UpdateOptions::default(), plan)
            .await,
        Err(HostError::UnknownActor(_))
    ));
}
