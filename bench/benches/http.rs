//! HTTP load, the same client against both servers in the same run:
//! (d) requests/s through the http-server provider → `hello` actor vs a native hyper hello
//!     world (target ≥ 0.5×);
//! (e) the same load on Weft while the actor is swapped every 100 ms: failed requests (must
//!     be 0), throughput, and p99 latency of requests that overlap a swap vs steady state
//!     (target ≤ 2×);
//! (j″) the same load on hello built with wasmCloud 0.15–0.18's SDK and with waSCC's (the host
//!     translating each request and answer) vs the wasmbus hello on the same owned contract
//!     types (`hello-owned`), rounds alternating (what serving an older generation costs:
//!     target ≤ 1.1×); (d′) in the same rounds, `hello` (the SDK's borrowed request) vs
//!     `hello-owned`.
//! (k) what keeping metrics costs: the same hello on a second host that keeps them
//!     (`HostConfig::metrics`) vs the first, rounds alternating (target ≥ 0.95×).
//! The load client is a tokio task per keep-alive connection (hyper's HTTP/1 client), each
//! sending one request at a time for a fixed duration; client and servers share the process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_bench::HELLO;
use weft_host::{Host, HostConfig, UpdateOptions};
use weft_http_server::HttpServer;

const CONNECTIONS: usize = 16;
const RUN: Duration = Duration::from_secs(4);
const WARM_UP: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Outcome {
    ok: usize,
    failed: Vec<String>,
    /// (start, latency) of every successful request after warm-up.
    latencies: Vec<(Instant, Duration)>,
}

async fn load(address: SocketAddr) -> (Outcome, Instant, Instant) {
    let started = Instant::now();
    let (measure_from, until) = (started + WARM_UP, started + WARM_UP + RUN);
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let outcome = outcome.clone();
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(address).await.unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(connection);
                while Instant::now() < until {
                    let request = Request::get("/")
                        .header("host", "bench")
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let start = Instant::now();
                    let result = match sender.send_request(request).await {
                        Ok(response) => {
                            let status = response.status();
                            match response.into_body().collect().await.map(|b| b.to_bytes()) {
                                Ok(body) if status == 200 && body == HELLO.as_bytes() => Ok(()),
                                other => Err(format!("{status}: {other:?}")),
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    let latency = start.elapsed();
                    if start < measure_from {
                        continue;
                    }
                    let mut outcome = outcome.lock().unwrap();
                    match result {
                        Ok(()) => {
                            outcome.ok += 1;
                            outcome.latencies.push((start, latency));
                        }
                        Err(e) => outcome.failed.push(e),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let outcome = std::mem::take(&mut *outcome.lock().unwrap());
    (outcome, measure_from, until)
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    let at = (latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1));
    latencies.get(at).copied().unwrap_or_default()
}

fn main() {
    let signed = weft_bench::signed_hello();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let native = weft_bench::native_hello().await;
        let (native_run, _, _) = load(native).await;
        assert!(native_run.failed.is_empty(), "native server failed: {:?}", native_run.failed.first());

        let host = Host::new(HostConfig::default()).unwrap();
        let http = Arc::new(HttpServer::new());
        host.add_provider("http", http.clone()).await.unwrap();
        let actor = host.start_actor(&signed).await.unwrap().id;
        let weft = weft_bench::serve_http(&host, &http, &actor).await;
        let (steady, _, _) = load(weft).await;
        assert!(steady.failed.is_empty(), "weft failed: {:?}", steady.failed.first());

        let signed_for_metrics = signed.clone();
        // (e) the same load while the actor is swapped every 100 ms.
        let windows = Arc::new(Mutex::new(Vec::new()));
        let swapper = {
            let (host, actor, windows) = (host.clone(), actor.clone(), windows.clone());
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(Duration::from_millis(100));
                let stop = Instant::now() + WARM_UP + RUN;
                while Instant::now() < stop {
                    ticker.tick().await;
                    let start = Instant::now();
                    host.update_actor(&actor, &signed, UpdateOptions::default()).await.unwrap();
                    windows.lock().unwrap().push((start, Instant::now()));
                }
            })
        };
        let (swapping, from, until) = load(weft).await;
        swapper.await.unwrap();
        let windows: Vec<_> = windows.lock().unwrap().iter().copied().filter(|(s, _)| *s >= from && *s < until).collect();
        let in_swap: Vec<Duration> = swapping
            .latencies
            .iter()
            .filter(|(start, latency)| windows.iter().any(|(s, e)| *start <= *e && *start + *latency >= *s))
            .map(|(_, l)| *l)
            .collect();

        let secs = RUN.as_secs_f64();
        let (native_rps, weft_rps) = (native_run.ok as f64 / secs, steady.ok as f64 / secs);
        let steady_p99 = p99(steady.latencies.iter().map(|(_, l)| *l).collect());
        let swap_p99 = p99(in_swap.clone());
        println!("\n== HTTP load, {CONNECTIONS} keep-alive connections, {} s each (same run) ==", RUN.as_secs());
        println!(
            "(d) hello world: native hyper {native_rps:.0} req/s, weft http-server → hello actor {weft_rps:.0} req/s, ratio {:.2}× (target ≥ 0.5×)",
            weft_rps / native_rps
        );
        println!(
            "(e) swapping every 100 ms: {} swaps, {} failed requests, {:.0} req/s (steady {weft_rps:.0}); p99 of the {} requests overlapping a swap {:.2} ms vs steady p99 {:.2} ms, ratio {:.2}× (target ≤ 2×)",
            windows.len(),
            swapping.failed.len(),
            swapping.ok as f64 / secs,
            in_swap.len(),
            swap_p99.as_secs_f64() * 1e3,
            steady_p99.as_secs_f64() * 1e3,
            swap_p99.as_secs_f64() / steady_p99.as_secs_f64()
        );
        if let Some(first) = swapping.failed.first() {
            println!("    first failure: {first}");
        }

        // (j″) older generations, served through the same provider.
        // Against the wasmbus hello on the same owned contract types as theirs; `hello`
        // itself (the borrowed request) is loaded in the same rounds, for (d′).
        let mut servers = Vec::new();
        for name in ["hello-owned", "wasmcloud-hello", "wascc-hello"] {
            let bytes = std::fs::read(weft_bench::target_dir().join("actors").join(format!("{name}.wasm")))
                .unwrap_or_else(|e| {
                    eprintln!("{name}: {e}; build the actors first (scripts/test.sh)");
                    std::process::exit(2)
                });
            let id = host.start_actor(&bytes).await.unwrap().id;
            servers.push((name, weft_bench::serve_http(&host, &http, &id).await));
        }
        servers.push(("hello", weft));
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); servers.len()];
        for _ in 0..OLDER_ROUNDS {
            for ((name, address), rate) in servers.iter().zip(rates.iter_mut()) {
                let (run, _, _) = load(*address).await;
                assert!(run.failed.is_empty(), "{name} failed: {:?}", run.failed.first());
                rate.push(run.ok as f64 / secs);
            }
        }
        // In `servers`' order: hello-owned first (the baseline), the older two, hello last.
        let (owned, borrowed) = (&rates[0], &rates[servers.len() - 1]);
        for (index, (name, _)) in servers.iter().enumerate().skip(1).take(2) {
            let mut ratios: Vec<f64> = owned.iter().zip(&rates[index]).map(|(w, o)| w / o).collect();
            println!(
                "(j″) http-server → {name} vs → hello-owned (wasmbus), {OLDER_ROUNDS} alternating rounds: {:.0} vs {:.0} req/s (medians), cost ratio {:.2}× (rounds {:.2}–{:.2}×; target ≤ 1.1×)",
                weft_bench::median(&mut rates[index].clone()),
                weft_bench::median(&mut owned.clone()),
                weft_bench::median(&mut ratios),
                ratios.iter().copied().fold(f64::INFINITY, f64::min),
                ratios.iter().copied().fold(0.0, f64::max),
            );
        }

        let mut gains: Vec<f64> = borrowed.iter().zip(owned).map(|(b, o)| b / o).collect();
        println!(
            "(d′) http-server → hello (the SDK's borrowed request) vs → hello-owned, in the same rounds: {:.0} vs {:.0} req/s (medians), ratio {:.2}× (rounds {:.2}–{:.2}×)",
            weft_bench::median(&mut borrowed.clone()),
            weft_bench::median(&mut owned.clone()),
            weft_bench::median(&mut gains),
            gains.iter().copied().fold(f64::INFINITY, f64::min),
            gains.iter().copied().fold(0.0, f64::max),
        );

        // (k) the same hello on a host keeping metrics, rounds alternating with the first.
        let (counted, with_metrics) = weft_bench::metered_http_host(&signed_for_metrics).await;
        let (mut off, mut on, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..OLDER_ROUNDS {
            let (plain, _, _) = load(weft).await;
            let (metered, _, _) = load(with_metrics).await;
            assert!(metered.failed.is_empty(), "with metrics failed: {:?}", metered.failed.first());
            off.push(plain.ok as f64 / secs);
            on.push(metered.ok as f64 / secs);
            ratios.push(metered.ok as f64 / plain.ok as f64);
        }
        let scraped = counted.metrics_text().unwrap();
        assert!(String::from_utf8_lossy(&scraped).contains("weft_actor_invocations_total"));
        println!(
            "(k) metrics on vs off, {OLDER_ROUNDS} alternating rounds: {:.0} vs {:.0} req/s (medians), ratio {:.2}× (rounds {:.2}–{:.2}×; target ≥ 0.95×)",
            weft_bench::median(&mut on),
            weft_bench::median(&mut off),
            weft_bench::median(&mut ratios.clone()),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
        );
    });
}

/// Rounds of (j″), each loading the three hellos in turn.
const OLDER_ROUNDS: usize = 5;
