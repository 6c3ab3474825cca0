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
//! (n′) the same for a call that goes on to a provider: a relay actor (inline WAT) makes one
//! host call to a provider that answers with the request (`weft:null`, in the host's
//! process) through its link, so the outbound path's shared state (the router, the link and
//! provider tables, the provider's metrics) is measured too; the baseline is the same module
//! on raw waPC hosts whose host-call callback answers the same way.
//!
//! `WEFT_SCALING_THREADS` lists the N (default 1, 2, 4, … up to the machine's cores);
//! `WEFT_SCALING_SECS` the seconds of each run (default 2); `WEFT_SCALING_ROUNDS` the rounds
//! (default 3); `WEFT_SCALING_PATHS` which of `echo` and `provider` to run (default both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};
use weft_bench::env_or;

/// Calls each task or thread makes between looks at the clock.
const BATCH: u64 = 100;
/// Tasks per worker thread calling Weft (the actor allows them all at once).
const TASKS_PER_THREAD: usize = 8;

/// What each call does: `echo` answers it; the relay calls the null provider first.
#[derive(Clone, Copy, PartialEq)]
enum Path {
    Echo,
    Provider,
}

impl Path {
    /// The operation called.
    fn operation(self) -> &'static str {
        match self {
            Path::Echo => "echo",
            Path::Provider => "relay",
        }
    }
}

/// The contract of the provider (n′) calls.
const NULL_CONTRACT: &str = "weft:null";

fn main() {
    let echo =
        std::fs::read(weft_bench::target_dir().join("actors/echo.wasm")).unwrap_or_else(|e| {
            eprintln!("echo: {e}; build the actors first (scripts/test.sh)");
            std::process::exit(2)
        });
    let payload = vec![7u8; 100];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts = weft_bench::counts_from_env("WEFT_SCALING_THREADS", cores);
    let secs = Duration::from_secs_f64(env_or("WEFT_SCALING_SECS", 2.0));
    let rounds: usize = env_or("WEFT_SCALING_ROUNDS", 3);
    let paths: String = env_or("WEFT_SCALING_PATHS", "echo,provider".to_string());
    for path in paths.split(',') {
        let (path, signed, label) = match path.trim() {
            "echo" => (Path::Echo, echo.clone(), "(n)"),
            "provider" => (Path::Provider, sign_relay(), "(n′)"),
            other => {
                eprintln!("WEFT_SCALING_PATHS: no path {other:?} (echo, provider)");
                std::process::exit(2)
            }
        };
        let what = match path {
            Path::Echo => "echo 100 B",
            Path::Provider => "a relay calling a provider that answers at once, 100 B",
        };
        println!(
            "\n== {label} {what}, called in process from N worker threads, Weft (Host::invoke, metered) vs raw WapcHost::call on N threads, {rounds} alternating rounds of {:.0} s ==",
            secs.as_secs_f64()
        );
        run(label, path, &signed, &payload, &counts, cores, secs, rounds);
    }
}

/// Each N's rounds of one path, and their medians printed.
#[allow(clippy::too_many_arguments)]
fn run(
    label: &str,
    path: Path,
    signed: &[u8],
    payload: &[u8],
    counts: &[usize],
    cores: usize,
    secs: Duration,
    rounds: usize,
) {
    let mut single: Option<(f64, f64)> = None;
    for &n in counts {
        let mut runs: Vec<(f64, f64)> = Vec::new();
        for _ in 0..rounds {
            let raw = raw_calls_per_second(path, signed, payload, n, secs);
            let weft = weft_calls_per_second(path, signed, payload, n, secs);
            runs.push((raw, weft));
        }
        let median = |pick: &dyn Fn(&(f64, f64)) -> f64| {
            weft_bench::median(&mut runs.iter().map(pick).collect::<Vec<_>>())
        };
        let (raw, weft) = (median(&|r| r.0), median(&|r| r.1));
        let ratio = median(&|r| r.1 / r.0);
        let (raw_one, weft_one) = *single.get_or_insert((raw, weft));
        println!(
            "{label} N = {n} thread(s) on {cores} cores: raw {raw:.0} calls/s ({:.2} µs a call a thread, ×{:.2} of N = 1), weft {weft:.0} calls/s ({:.2} µs, ×{:.2} of N = 1), ratio {ratio:.2}×",
            n as f64 / raw * 1e6,
            raw / raw_one,
            n as f64 / weft * 1e6,
            weft / weft_one,
        );
    }
}

/// Calls/s of `threads` threads each calling its own raw waPC host for `secs`.
fn raw_calls_per_second(
    path: Path,
    signed: &[u8],
    payload: &[u8],
    threads: usize,
    secs: Duration,
) -> f64 {
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
                    // The provider's part, played by the callback: the request as the answer.
                    let answer: Box<wapc::HostCallback> =
                        Box::new(|_, _, _, _, request| Ok(request.to_vec()));
                    let host = wapc::WapcHost::new(Box::new(engine), Some(answer)).unwrap();
                    ready.wait();
                    let until = *start.get_or_init(Instant::now) + secs;
                    let mut calls = 0;
                    while Instant::now() < until {
                        for _ in 0..BATCH {
                            host.call(path.operation(), payload).unwrap();
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
fn weft_calls_per_second(
    path: Path,
    signed: &[u8],
    payload: &[u8],
    threads: usize,
    secs: Duration,
) -> f64 {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let host = weft_bench::metered_host();
        let echo = host.start_actor(signed).await.unwrap().id;
        if path == Path::Provider {
            host.add_provider("null", std::sync::Arc::new(NullProvider))
                .await
                .unwrap();
            host.put_link(weft_provider_sdk::LinkDefinition {
                actor_id: echo.clone(),
                contract_id: NULL_CONTRACT.into(),
                link_name: "default".into(),
                provider_id: "null".into(),
                values: Default::default(),
            })
            .await
            .unwrap();
        }
        let operation = path.operation();
        let tasks = threads * TASKS_PER_THREAD;
        host.scale_actor(&echo, tasks).unwrap();
        assert_eq!(
            host.invoke(&echo, operation, payload).await.unwrap(),
            payload
        );
        let started = Instant::now();
        let until = started + secs;
        let running: Vec<_> = (0..tasks)
            .map(|_| {
                let (host, echo, payload) = (host.clone(), echo.clone(), payload.to_vec());
                tokio::spawn(async move {
                    let mut calls = 0;
                    while Instant::now() < until {
                        for _ in 0..BATCH {
                            host.invoke(&echo, operation, &payload).await.unwrap();
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

/// A provider that answers every call with its request, at once.
struct NullProvider;

#[weft_provider_sdk::async_trait]
impl weft_provider_sdk::Provider for NullProvider {
    fn contract_id(&self) -> &str {
        NULL_CONTRACT
    }

    async fn handle_call(
        &self,
        call: weft_provider_sdk::ProviderCall,
    ) -> Result<Vec<u8>, weft_provider_sdk::ProviderError> {
        Ok(call.payload)
    }
}

/// The relay of (n′), signed for [`NULL_CONTRACT`]: every call it gets, it makes to the
/// provider linked for that contract (operation `Null.Echo`, link `default`) and answers with
/// what that said.
fn sign_relay() -> Vec<u8> {
    let code = weft_bench::relay_module(Some((NULL_CONTRACT, "Null.Echo")));
    let account = wascap::KeyRole::Account.generate().unwrap();
    let claims = wascap::Claims::new(
        account.public_key(),
        wascap::KeyRole::Module.generate().unwrap().public_key(),
        wascap::Actor {
            name: Some("relay".into()),
            caps: Some(vec![NULL_CONTRACT.into()]),
            ..wascap::Actor::default()
        },
    );
    wascap::embed_claims(&code, &claims, &account).unwrap()
}
