//! Faults under load, with the released binary on real servers: a NATS server of a
//! three-server cluster killed under a host, and the soak (mixed load, actor swaps and
//! provider kills for `WEFT_SOAK_SECS`, 60 s in the test run; the README has a long run).
//!
//! Both count increments through kvcounter on Redis: an increment acknowledged to a client
//! must be in Redis at the end, whatever failed meanwhile.

use crate::lattice::{ProviderProcess, lattice_app_of};
use crate::up::{Up, try_request};
use crate::{Weft, rss_kib, unsigned_actor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_testing::{NatsCluster, RedisServer};

/// What each request of a timed load got: when it was sent, when it ended, through which
/// host, and whether it was answered 200.
type Outcomes = Arc<Mutex<Vec<(Instant, Instant, usize, bool)>>>;
/// The first failures' texts, for the message of a failed assertion.
type Failures = Arc<Mutex<Vec<(Instant, String)>>>;

/// Clients on threads of their own, `per_host` on each address, each incrementing
/// `/counter/{counter}` one request after another until `stop`.
fn timed_load(
    addresses: &[String],
    per_host: usize,
    counter: &str,
    stop: Arc<AtomicBool>,
) -> (Outcomes, Failures, Vec<std::thread::JoinHandle<()>>) {
    let outcomes: Outcomes = Arc::default();
    let failures: Failures = Arc::default();
    let mut clients = Vec::new();
    for (host, address) in addresses.iter().enumerate() {
        for _ in 0..per_host {
            let (address, outcomes, failures, stop) = (
                address.clone(),
                outcomes.clone(),
                failures.clone(),
                stop.clone(),
            );
            let path = format!("/counter/{counter}");
            clients.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let answer = try_request(&address, &path);
                    let ok = matches!(answer, Ok((200, _)));
                    outcomes
                        .lock()
                        .unwrap()
                        .push((sent, Instant::now(), host, ok));
                    let mut failures = failures.lock().unwrap();
                    if !ok && failures.len() < 1000 {
                        failures.push((sent, format!("host {host}: {answer:?}")));
                    }
                    drop(failures);
                    if !ok {
                        // A failing host is not hammered in a tight loop.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }));
        }
    }
    (outcomes, failures, clients)
}

/// The count stored for `counter` in `redis`.
fn stored(redis: &RedisServer, counter: &str) -> i64 {
    let output = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis.port().to_string(),
            "GET",
            &format!("counter:{counter}"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("redis-cli said {text:?}"))
}

#[test]
fn a_killed_nats_server_fails_its_host_over_and_redis_keeps_every_acknowledged_increment() {
    let weft = Weft::new();
    let mut cluster = NatsCluster::start(3).unwrap();
    let redis = RedisServer::start().unwrap();
    let actor = weft.path("kvcounter.wasm");
    weft.sign_kvcounter(&unsigned_actor("kvcounter"), &actor, "1");
    let app = lattice_app_of(&weft, &actor, &redis);
    // The Redis provider on server 2, host A first on server 0, host B on server 1; each
    // given every server, as an operator would.
    let _provider =
        ProviderProcess::start_at(&weft, "keyvalue-redis", "redis", &cluster.urls_from(2), &[]);
    let host = |first: usize| {
        let urls = cluster.urls_from(first);
        Up::start_command(
            &weft,
            "host",
            &app,
            &[
                "--lattice",
                "it",
                "--nats",
                &urls,
                "--deadline-ms",
                "2000",
                "--trust-any-issuer",
            ],
            &[],
        )
    };
    let (a, b) = (host(0), host(1));

    let stop = Arc::new(AtomicBool::new(false));
    let (outcomes, _, clients) = timed_load(
        &[a.serving.clone(), b.serving.clone()],
        4,
        "cluster",
        stop.clone(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let killed_at = Instant::now();
    cluster.server(0).unwrap().kill();
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();

    let acknowledged = outcomes.iter().filter(|(_, _, _, ok)| *ok).count() as i64;
    let failed: Vec<_> = outcomes.iter().filter(|(_, _, _, ok)| !*ok).collect();
    let before_kill = failed
        .iter()
        .filter(|(_, end, _, _)| *end < killed_at)
        .count();
    // Serving resumed: the first success on host A after its last failure.
    let last_failure_a = failed
        .iter()
        .filter(|(_, _, host, _)| *host == 0)
        .map(|(_, end, _, _)| *end)
        .max();
    let resumed_after = last_failure_a.map_or(Duration::ZERO, |at| at - killed_at);
    let served_after = outcomes
        .iter()
        .filter(|(_, end, host, ok)| *ok && *host == 0 && Some(*end) > last_failure_a)
        .count();
    let count = stored(&redis, "cluster");
    eprintln!(
        "NATS cluster fault: {} requests, {acknowledged} acknowledged, {} failed ({before_kill} \
         before the kill); host A served again {:.2} s after its server was killed ({served_after} \
         requests since); Redis holds {count}",
        outcomes.len(),
        failed.len(),
        resumed_after.as_secs_f64()
    );
    assert_eq!(before_kill, 0, "requests failed before any fault");
    assert!(
        resumed_after < Duration::from_secs(5),
        "host A served again only {resumed_after:?} after its NATS server was killed"
    );
    assert!(
        served_after > 50,
        "host A served {served_after} requests after failing over"
    );
    assert!(
        count >= acknowledged && count <= acknowledged + failed.len() as i64,
        "Redis holds {count}; {acknowledged} increments were acknowledged and {} failed",
        failed.len()
    );
}

/// How long the soak runs: `WEFT_SOAK_SECS`, else 60 s.
fn soak_time() -> Duration {
    Duration::from_secs(
        std::env::var("WEFT_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    )
}

#[test]
fn soak_mixed_load_actor_swaps_and_provider_kills() {
    let soak = soak_time();
    let weft = Weft::new();
    let nats = weft_testing::NatsServer::start().unwrap();
    let url = nats.url();
    let redis = RedisServer::start().unwrap();
    let unsigned = unsigned_actor("kvcounter");
    let version = |rev: u32| {
        let path = weft.path(&format!("kvcounter-{rev}.wasm"));
        weft.sign_kvcounter(&unsigned, &path, &rev.to_string());
        path
    };
    let app = lattice_app_of(&weft, &version(1), &redis);
    let mut provider = ProviderProcess::start_at(&weft, "keyvalue-redis", "redis", &url, &[]);
    let host = || {
        Up::start_command(
            &weft,
            "host",
            &app,
            &["--lattice", "it", "--nats", &url, "--trust-any-issuer"],
            &[],
        )
    };
    let (a, b) = (host(), host());
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--lattice", "it", "--nats", &url, "--wait-ms", "300"];
        all.extend_from_slice(args);
        weft.run(&all)
    };

    let stop = Arc::new(AtomicBool::new(false));
    let (outcomes, failures, clients) = timed_load(
        &[a.serving.clone(), b.serving.clone()],
        4,
        "soak",
        stop.clone(),
    );
    let started = Instant::now();
    let warm_after = soak / 6;
    let mut rss_warm = None;
    let (mut swaps, mut kills) = (0u32, 0u32);
    // Each kill window: from the kill until the restarted provider has served for 2 s.
    let mut kill_windows: Vec<(Instant, Instant)> = Vec::new();
    let mut next_kill = started + Duration::from_secs(15);
    while started.elapsed() < soak {
        if rss_warm.is_none() && started.elapsed() >= warm_after {
            rss_warm = Some((rss_kib(a.pid()), rss_kib(b.pid())));
        }
        if Instant::now() >= next_kill {
            let killed = Instant::now();
            provider.kill();
            std::thread::sleep(Duration::from_millis(500));
            provider = ProviderProcess::start_at(&weft, "keyvalue-redis", "redis", &url, &[]);
            kill_windows.push((killed, Instant::now() + Duration::from_secs(2)));
            kills += 1;
            next_kill = Instant::now() + Duration::from_secs(15);
        }
        let module = version(swaps + 2);
        let updated = ctl(&["update", "actor", "kvcounter", module.to_str().unwrap()]).ok();
        assert_eq!(
            updated.matches(&format!("revision {}", swaps + 2)).count(),
            2,
            "{updated}"
        );
        swaps += 1;
        std::thread::sleep(Duration::from_secs(2));
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let rss_end = (rss_kib(a.pid()), rss_kib(b.pid()));
    let rss_warm = rss_warm.unwrap_or(rss_end);
    let outcomes = outcomes.lock().unwrap().clone();
    let acknowledged = outcomes.iter().filter(|(_, _, _, ok)| *ok).count() as i64;
    // A request overlapping a kill window is in it: one sent to the provider just before the
    // kill waits out its deadline.
    let in_window = |sent: &Instant, ended: &Instant| {
        kill_windows
            .iter()
            .any(|(from, to)| sent <= to && ended >= from)
    };
    let failed: Vec<_> = outcomes.iter().filter(|(_, _, _, ok)| !*ok).collect();
    let outside = failed
        .iter()
        .filter(|(sent, ended, _, _)| !in_window(sent, ended))
        .count();
    let count = stored(&redis, "soak");
    let growth = |warm: u64, end: u64| end.saturating_sub(warm) >> 10;
    eprintln!(
        "soak: {:.0} s, {swaps} actor swaps, {kills} provider kills; {} requests, {acknowledged} \
         acknowledged, {} failed ({outside} outside the kill windows); Redis holds {count}; \
         host RSS {} → {} MiB and {} → {} MiB after warm-up",
        started.elapsed().as_secs_f64(),
        outcomes.len(),
        failed.len(),
        rss_warm.0 >> 10,
        rss_end.0 >> 10,
        rss_warm.1 >> 10,
        rss_end.1 >> 10
    );
    let first_outside: Vec<String> = failures
        .lock()
        .unwrap()
        .iter()
        .filter(|(sent, _)| {
            !kill_windows
                .iter()
                .any(|(from, to)| sent <= to && sent >= from)
        })
        .take(3)
        .map(|(at, text)| format!("{:.2} s in: {text}", (*at - started).as_secs_f64()))
        .collect();
    let kills: Vec<String> = kill_windows
        .iter()
        .map(|(from, to)| {
            format!(
                "{:.2}-{:.2} s",
                (*from - started).as_secs_f64(),
                (*to - started).as_secs_f64()
            )
        })
        .collect();
    assert_eq!(
        outside, 0,
        "requests failed outside the kill windows {kills:?}: {first_outside:?}"
    );
    assert!(
        count >= acknowledged && count <= acknowledged + failed.len() as i64,
        "Redis holds {count}; {acknowledged} increments were acknowledged and {} failed",
        failed.len()
    );
    for (warm, end) in [(rss_warm.0, rss_end.0), (rss_warm.1, rss_end.1)] {
        assert!(
            growth(warm, end) < 16,
            "a host's RSS grew {} MiB after warm-up",
            growth(warm, end)
        );
    }
}
