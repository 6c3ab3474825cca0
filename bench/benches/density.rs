//! (l) density: N distinct signed actors (the hello actor, each signed with a module key of
//! its own; N = 10,000, or `WEFT_DENSITY_ACTORS`) on one host:
//! - start time per actor, its code already compiled (the first actor compiles it, untimed):
//!   target ≤ 100 µs;
//! - resident memory per idle actor (after all started, over after the first): target
//!   ≤ 32 KiB;
//! - the same with each linked to an HTTP listener of its own, and after each was called once
//!   through the http-server provider (every call must answer 200), and after the idle
//!   instances were reaped. A listener holds two descriptors (its socket, and the copy kept to
//!   hand it to a successor), so past `WEFT_DENSITY_HTTP` actors (8,000 by default, within a
//!   20,000-descriptor limit) the rest are called in process, with the same request the
//!   provider sends.
//!
//! Signing is not timed (done before the host starts). Where a start goes is measured apart
//! on the first 2,000 modules: the claims check (ed25519 signature and the module's SHA-256)
//! alone, the module hash alone, the whole identity (claims and generation), and the identity
//! as a host holding the code checks it (the code compared, not hashed); and the
//! same actors started 8 at a time on a second host (the wall time per actor when a host
//! starts many, as from a manifest).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wascap::{Actor, Claims, KeyRole, contracts};
use weft_host::{Host, HostConfig};
use weft_http_server::HttpServer;

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// GET / on `address` over a fresh connection; the status.
async fn get(address: std::net::SocketAddr) -> u16 {
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::get("/")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

fn main() {
    let actors: usize = std::env::var("WEFT_DENSITY_ACTORS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let code = weft_bench::unsigned_actor("hello").unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let account = KeyRole::Account.generate().unwrap();
    let signed: Vec<Vec<u8>> = (0..actors)
        .map(|i| {
            let claims = Claims::new(
                account.public_key(),
                KeyRole::Module.generate().unwrap().public_key(),
                Actor {
                    name: Some(format!("hello-{i}")),
                    caps: Some(vec![contracts::HTTP_SERVER.to_string()]),
                    ..Actor::default()
                },
            );
            wascap::embed_claims(&code, &claims, &account).unwrap()
        })
        .collect();
    let sample = &signed[..signed.len().min(2_000)];
    let each = |work: &dyn Fn(&[u8])| {
        let started = Instant::now();
        for bytes in sample {
            work(bytes);
        }
        started.elapsed().as_secs_f64() * 1e6 / sample.len() as f64
    };
    let verify_us = each(&|bytes| {
        wascap::verify_module(bytes, &wascap::VerifyOptions::default()).unwrap();
    });
    let hash_us = each(&|bytes| {
        wascap::module_hash(bytes).unwrap();
    });
    let policy = weft_host::LoadPolicy::default();
    let identity_us = each(&|bytes| {
        weft_host::ActorIdentity::of_module(bytes, &policy).unwrap();
    });
    // As a host checks an actor of code it holds: compared with that code, not hashed.
    let (held, held_hash): (Arc<[u8]>, String) = (
        wascap::strip_claims(&signed[0]).unwrap().into(),
        wascap::module_hash(&signed[0]).unwrap(),
    );
    let known = move |hash: &str| (hash == held_hash).then(|| held.clone());
    let known_us = each(&|bytes| {
        weft_host::ActorIdentity::of_module_knowing(bytes, &policy, &known).unwrap();
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let host = Host::new(HostConfig {
            // A link per actor: past the default's 1,000.
            links: weft_host::links::LinkLimits {
                max_links: actors + 16,
                ..weft_host::links::LinkLimits::default()
            },
            ..HostConfig::default()
        })
        .unwrap();
        let http = Arc::new(HttpServer::new());
        host.add_provider("http", http.clone()).await.unwrap();
        let mut ids = vec![host.start_actor(&signed[0]).await.unwrap().id];
        let base = rss_kib();
        let started = Instant::now();
        for bytes in &signed[1..] {
            ids.push(host.start_actor(bytes).await.unwrap().id);
        }
        let start_each = started.elapsed() / (actors as u32 - 1).max(1);

        // The same actors on a second host, started 8 at a time.
        let second = Host::new(HostConfig::default()).unwrap();
        second.start_actor(&signed[0]).await.unwrap();
        let started = Instant::now();
        for batch in signed[1..].chunks(8) {
            let starts = batch.iter().map(|bytes| second.start_actor(bytes));
            for started in futures_util::future::join_all(starts).await {
                started.unwrap();
            }
        }
        let concurrent_each = started.elapsed() / (actors as u32 - 1).max(1);
        second.shutdown().await;
        drop(second);
        let per = |now: u64| (now.saturating_sub(base)) as f64 / (actors - 1).max(1) as f64;
        let idle = per(rss_kib());

        let over_http: usize = std::env::var("WEFT_DENSITY_HTTP")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(8_000)
            .min(actors);
        let linking = Instant::now();
        let mut addresses = Vec::with_capacity(over_http);
        for id in &ids[..over_http] {
            addresses.push(weft_bench::serve_http(&host, &http, id).await);
        }
        let link_each = linking.elapsed() / over_http.max(1) as u32;
        let linked = per(rss_kib());

        let calling = Instant::now();
        for address in &addresses {
            assert_eq!(get(*address).await, 200, "a hello did not answer 200");
        }
        let call_each = calling.elapsed() / over_http.max(1) as u32;
        let request = weft_contracts::encode(&weft_contracts::httpserver::HttpRequest {
            method: "GET".into(),
            path: "/".into(),
            ..Default::default()
        })
        .unwrap();
        for id in &ids[over_http..] {
            let answer = host
                .invoke(id, weft_contracts::httpserver::HANDLE_REQUEST, &request)
                .await
                .unwrap();
            let response: weft_contracts::httpserver::HttpResponse =
                weft_contracts::decode(&answer).unwrap();
            assert_eq!(response.status_code, 200, "a hello did not answer 200");
        }
        let called = per(rss_kib());
        let warm: usize = ids
            .iter()
            .map(|id| host.actor_pool(id).unwrap().idle_instances())
            .sum();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let reaped = host.reap_idle_instances(Duration::from_millis(10));
        let after_reap = per(rss_kib());

        println!("\n== density: {actors} distinct signed hello actors on one host (same run) ==");
        println!(
            "(l) start, code compiled: {:.1} µs per actor (target ≤ 100 µs); RSS per idle actor {idle:.1} KiB (target ≤ 32 KiB)",
            start_each.as_secs_f64() * 1e6
        );
        println!(
            "    {over_http} of them linked to an HTTP listener each: {:.1} µs per link, {linked:.1} KiB per actor (all actors)",
            link_each.as_secs_f64() * 1e6
        );
        println!(
            "    each called once, all 200 ({over_http} through the http-server provider, a fresh connection each, {:.1} µs per call; {} in process): {called:.1} KiB per actor, {warm} instances kept warm",
            call_each.as_secs_f64() * 1e6,
            actors - over_http
        );
        println!("    after reaping the {reaped} idle instances: {after_reap:.1} KiB per actor");
        println!(
            "    where a start goes (first {} modules, one at a time): claims check {verify_us:.1} µs (of which the module's SHA-256 {hash_us:.1} µs), identity with generation {identity_us:.1} µs; the same with the code held (compared, not hashed) {known_us:.1} µs",
            sample.len()
        );
        println!(
            "    started 8 at a time on a second host: {:.1} µs per actor (wall time over all)",
            concurrent_each.as_secs_f64() * 1e6
        );
    });
}
