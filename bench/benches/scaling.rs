//! (n) calls of one actor from N tokio worker threads in the host's process (#19 item 4): the
//! shared state on Weft's call path (the actor's admission, its pool of instances, its
//! metrics) seen without a network or a load generator in the way, so that it can be measured
//! on a 2-core machine too, where (m) has no core left for wrk at N = 2. `echo` (100 B) is
//! called through `Host::invoke` by 8 tasks per worker on a metered host (as the CLI's
//! hosts are), against the baseline of raw `wapc::WapcHost::call`s of the same module on N
//! threads, a host each (they share nothing, so they scale as the machine does). Rounds
//! alternate the two; the figures are medians over the rounds. Target: Weft's calls/s grow
//! with N as the baseline's do (its ratio to the baseline does not fall as N grows).
//!
//! `WEFT_SCALING_THREADS` lists the N (default 1, 2, 4, … up to the machine's cores);
//! `WEFT_SCALING_SECS` the seconds of each run (default 2); `WEFT_SCALING_ROUNDS` the rounds
//! (default 3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};
use weft_bench::env_or;

/// Calls each task or thread makes between looks at the clock.
const BATCH: u64 = 100;
/// Tasks per worker thread calling Weft (the actor allows them all at once).
const TASKS_PER_THREAD: usize = 8;

fn main() {
    let signed =
        std::fs::read(weft_bench::target_dir().join("actors/echo.wasm")).unwrap_or_else(|e| {
            eprintln!("echo: {e}; build the actors first (scripts/test.sh)");
            std::process::exit(2)
        });
    let payload = vec![7u8; 100];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts = weft_bench::counts_from_env("WEFT_SCALING_THREADS", cores);
    let secs = Duration::from_secs_f64(env_or("WEFT_SCALING_SECS", 2.0));
    let rounds: usize = env_or("WEFT_SCALING_ROUNDS", 3);
    println!(
        "\n== (n) echo 100 B called in process from N worker threads, Weft (Host::invoke, metered) vs raw WapcHost::call on N threads, {rounds} alternating rounds of {:.0} s ==",
        secs.as_secs_f64()
    );
    let mut single: Option<(f64, f64)> = None;
    for n in counts {
        let mut runs: Vec<(f64, f64)> = Vec::new();
        for _ in 0..rounds {
            let raw = raw_calls_per_second(&signed, &payload, n, secs);
            let weft = weft_calls_per_second(&signed, &payload, n, secs);
            runs.push((raw, weft));
        }
        let median = |pick: &dyn Fn(&(f64, f64)) -> f64| {
            weft_bench::median(&mut runs.iter().map(pick).collect::<Vec<_>>())
        };
        let (raw, weft) = (median(&|r| r.0), median(&|r| r.1));
        let ratio = median(&|r| r.1 / r.0);
        let (raw_one, weft_one) = *single.get_or_insert((raw, weft));
        println!(
            "(n) N = {n} thread(s) on {cores} cores: raw {raw:.0} calls/s ({:.2} µs a call a thread, ×{:.2} of N = 1), weft {weft:.0} calls/s ({:.2} µs, ×{:.2} of N = 1), ratio {ratio:.2}×",
            n as f64 / raw * 1e6,
            raw / raw_one,
            n as f64 / weft * 1e6,
            weft / weft_one,
        );
    }
}

/// Calls/s of `threads` threads each calling its own raw waPC host for `secs`.
fn raw_calls_per_second(signed: &[u8], payload: &[u8], threads: usize, secs: Duration) -> f64 {
    // Each thread makes its own host (a waPC host is not shared between threads); the clock
    // starts once all are made.
    let ready = std::sync::Barrier::new(threads + 1);
    let start = std::sync::OnceLock::<Instant>::new();
    let calls: u64 = std::thread::scope(|scope| {
        let running: Vec<_> = (0..threads)
            .map(|_| {
                let (ready, start) = (&ready, &start);
                scope.spawn(move || {
                    let engine = wasmtime_provider::WasmtimeEngineProviderBuilder::new()
                        .module_bytes(signed)
                        .build()
                        .unwrap();
                    let host = wapc::WapcHost::new(Box::new(engine), None).unwrap();
                    ready.wait();
                    let until = *start.get_or_init(Instant::now) + secs;
                    let mut calls = 0;
                    while Instant::now() < until {
                        for _ in 0..BATCH {
                            host.call("echo", payload).unwrap();
                        }
                        calls += BATCH;
                    }
                    calls
                })
            })
            .collect();
        ready.wait();
        start.get_or_init(Instant::now);
        running.into_iter().map(|t| t.join().unwrap()).sum()
    });
    let started = *start.get_or_init(Instant::now);
    calls as f64 / started.elapsed().as_secs_f64()
}

/// Calls/s of `TASKS_PER_THREAD` tasks a worker calling one actor on a metered host whose
/// runtime has `threads` workers, for `secs`.
fn weft_calls_per_second(signed: &[u8], payload: &[u8], threads: usize, secs: Duration) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let host = weft_bench::metered_host();
        let echo = host.start_actor(signed).await.unwrap().id;
        let tasks = threads * TASKS_PER_THREAD;
        host.scale_actor(&echo, tasks).unwrap();
        assert_eq!(host.invoke(&echo, "echo", payload).await.unwrap(), payload);
        let started = Instant::now();
        let until = started + secs;
        let running: Vec<_> = (0..tasks)
            .map(|_| {
                let (host, echo, payload) = (host.clone(), echo.clone(), payload.to_vec());
                tokio::spawn(async move {
                    let mut calls = 0;
                    while Instant::now() < until {
                        for _ in 0..BATCH {
                            host.invoke(&echo, "echo", &payload).await.unwrap();
                        }
                        calls += BATCH;
                    }
                    calls
                })
            })
            .collect();
        let mut calls = 0;
        for task in running {
            calls += task.await.unwrap();
        }
        calls as f64 / started.elapsed().as_secs_f64()
    })
}
