//! Lattice benchmarks against real servers started for the run (weft-testing), each with its
//! baseline measured in the same run:
//! (f) latency of an actor call across two hosts (host B invokes `echo` on host A through
//!     NATS, 100 B) vs a raw async-nats request-reply between two connections (target ≤ 1.3×).
//!     Besides criterion's two back-to-back measurements, the ratio is also taken paired:
//!     rounds alternating between the two, the median of the per-round ratios. On a shared
//!     2-core machine the latency of both drifts by tens of percent within a minute, and
//!     measurements seconds apart compare the drift as much as the two calls;
//! (g) throughput of kvcounter increments, each an actor call making an `Increment` host call
//!     through the Redis provider, 50 at a time (the actor allows 50 instances), vs
//!     `redis-benchmark -t incr -c 50` on the same Redis (target ≥ 0.5×). Measured with the
//!     provider served out of process on the lattice (each increment crosses NATS twice, and
//!     nats-server shares the 2 cores), and with it in the host's process, as `weft up` runs a
//!     provider without `process = true`; each under two Redis durability settings:
//!     `appendfsync always` (the test harness's: a write is on disk before it is acknowledged)
//!     and `everysec` (Redis's default with an append-only file). Rounds alternate Weft and
//!     redis-benchmark; the median of the rounds' ratios is the figure, as in (f). Also
//!     printed: the CPU time of each process an increment, summed over the rounds (from
//!     `/proc`: the host, nats-server, the provider process, Redis, redis-benchmark), and
//!     how busy the cores were, so that what holds the ratio can be read off the output;
//! (h) a provider process replaced under load: kvcounter increments through the Redis
//!     provider process, 8 at a time, while a new process of it starts, the host's calls are
//!     handed over to it and the old one is told to leave ([`Host::hand_over_provider`], what
//!     `weft ctl update provider` does), [`SWAPS`] times: the time from starting the new
//!     process to the old one's exit, and the p99 latency of the calls overlapping a swap
//!     against the p99 of the calls in between, in the same run (target ≤ 2×).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use criterion::Criterion;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_contracts::httpserver::{HANDLE_REQUEST, HttpRequest};
use weft_host::{Host, HostConfig};
use weft_keyvalue_redis::RedisKeyValue;
use weft_lattice::{self as lattice, NatsOptions};
use weft_provider_sdk::LinkDefinition;
use weft_provider_sdk::runner::{self, RunnerOptions};
use weft_testing::{NatsServer, RedisServer};

const LATTICE: &str = "bench";
/// (g)'s increments at a time, on both sides: the issue's 50, or `WEFT_LATTICE_CONCURRENCY`
/// (to see how the rate follows the calls in flight).
fn concurrency() -> usize {
    std::env::var("WEFT_LATTICE_CONCURRENCY")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(50)
}
/// Increments in one of (g)'s Weft rounds (redis-benchmark makes five times as many);
/// `WEFT_LATTICE_INCREMENTS` sets another, e.g. a long round to profile.
fn increments() -> usize {
    std::env::var("WEFT_LATTICE_INCREMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}
const THROUGHPUT_ROUNDS: usize = 9;
/// Redis's `appendfsync` settings (g) runs under.
const DURABILITIES: [&str; 2] = ["always", "everysec"];

/// `WEFT_LATTICE_GROUPS` lists the groups to run (`f,g,h`, the default: all);
/// `WEFT_LATTICE_DURABILITIES` the `appendfsync` settings (g) runs under (default both);
/// `WEFT_LATTICE_ROUNDS` (g)'s rounds; `WEFT_LATTICE_INCREMENTS` the increments in each of its Weft rounds;
/// `WEFT_LATTICE_CONCURRENCY` its increments at a time.
fn groups() -> String {
    std::env::var("WEFT_LATTICE_GROUPS").unwrap_or_else(|_| "f,g,h".into())
}

const PAIRED_ROUNDS: usize = 40;
const PAIRED_CALLS: usize = 200;

fn options(nats: &NatsServer) -> NatsOptions {
    NatsOptions {
        url: nats.url(),
        ..NatsOptions::default()
    }
}

/// The lattice issuer of every member in this run (the provider process gets its seed in
/// [`ISSUER_ENV`]).
fn credentials() -> &'static lattice::Credentials {
    static CREDENTIALS: std::sync::OnceLock<lattice::Credentials> = std::sync::OnceLock::new();
    CREDENTIALS.get_or_init(|| match std::env::var(ISSUER_ENV) {
        Ok(seed) => lattice::Credentials::new(
            nkeys::KeyPair::from_seed(&seed).expect("an issuer seed"),
            [],
        )
        .expect("usable credentials"),
        Err(_) => lattice::Credentials::generate(),
    })
}

/// Where the provider process finds the lattice issuer's seed.
const ISSUER_ENV: &str = "WEFT_BENCH_ISSUER";

/// A member of the benchmark's lattice, signed by [`credentials`].
async fn join(nats: &NatsServer, name: &str) -> Arc<lattice::Member> {
    let client = lattice::connect(&options(nats)).await.unwrap();
    lattice::Member::join(client, LATTICE, name, credentials())
        .await
        .unwrap()
}

async fn member(nats: &NatsServer) -> Host {
    let host = Host::new(HostConfig::default()).unwrap();
    host.join_lattice(join(nats, "host").await).await.unwrap();
    host
}

fn signed(name: &str) -> Vec<u8> {
    std::fs::read(weft_testing::actors::signed_actor(name)).unwrap()
}

/// `redis-benchmark -t incr` on the server at `port`: its requests/s, how many it made, and
/// the CPU it used itself, in clock ticks.
fn redis_benchmark(port: u16) -> (f64, usize, u64) {
    use std::io::Read;
    let requests = increments() * 5;
    let mut child = std::process::Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "incr",
            "-c",
            &concurrency().to_string(),
        ])
        .args(["-n", &requests.to_string(), "-q"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-benchmark is not installed (apt install redis-tools)");
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    // Its output has ended, so it has ended or is about to: its CPU time is read once it is a
    // zombie (until it is waited for, its /proc entry still holds it), then it is reaped.
    let pid = child.id();
    let ending = Instant::now();
    while ending.elapsed() < Duration::from_secs(5) {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let used = weft_testing::process::cpu_ticks(pid).unwrap_or_default();
    child.wait().unwrap();
    // "INCR: 123456.79 requests per second, p50=0.199 msec"
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("INCR"))
        .unwrap_or_default();
    let rate = line
        .split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("cannot read redis-benchmark's output: {text}"));
    (rate, requests, used)
}

/// The CPU time some processes used over some (g) rounds, from `/proc`: where an increment's
/// work goes, process by process, and how busy the cores were meanwhile.
struct CpuSplit {
    names: Vec<&'static str>,
    /// Clock ticks (1/100 s) each used, summed over the rounds.
    ticks: Vec<u64>,
    increments: usize,
    wall: Duration,
}

impl CpuSplit {
    fn new(names: &[&'static str]) -> Self {
        CpuSplit {
            names: names.to_vec(),
            ticks: vec![0; names.len()],
            increments: 0,
            wall: Duration::ZERO,
        }
    }

    /// Runs `round` (which makes increments and returns how many) and adds what the
    /// processes `pids` (in the order of the names) used meanwhile.
    fn measure(&mut self, pids: &[u32], round: impl FnOnce() -> usize) {
        let read = || -> Vec<u64> {
            pids.iter()
                .map(|&pid| weft_testing::process::cpu_ticks(pid).unwrap_or_default())
                .collect()
        };
        let (before, started) = (read(), Instant::now());
        self.increments += round();
        self.wall += started.elapsed();
        for ((total, after), before) in self.ticks.iter_mut().zip(read()).zip(before) {
            *total += after.saturating_sub(before);
        }
    }

    /// Adds a round measured elsewhere (redis-benchmark's own time, read as it ended).
    fn add(&mut self, ticks: &[u64], increments: usize, wall: Duration) {
        for (total, more) in self.ticks.iter_mut().zip(ticks) {
            *total += more;
        }
        self.increments += increments;
        self.wall += wall;
    }

    /// `host 8.3 µs, nats-server 4.8, …, 19.8 in all, cores 71% busy`.
    fn describe(&self) -> String {
        let per = |ticks: u64| ticks as f64 * 1e4 / self.increments.max(1) as f64;
        let each: Vec<String> = self
            .names
            .iter()
            .zip(&self.ticks)
            .enumerate()
            .map(|(i, (name, &ticks))| {
                let unit = if i == 0 { " µs" } else { "" };
                format!("{name} {:.1}{unit}", per(ticks))
            })
            .collect();
        let all: u64 = self.ticks.iter().sum();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let busy = all as f64 / 100.0 / (self.wall.as_secs_f64() * cores).max(f64::MIN_POSITIVE);
        format!(
            "{}, {:.1} in all; cores {:.0}% busy",
            each.join(", "),
            per(all),
            busy * 100.0
        )
    }
}

/// Starts kvcounter on `host`, allowed [`concurrency`] calls at once, linked for key-value to
/// provider `provider_id` with the Redis at `redis_url`; returns its id.
async fn start_counter(host: &Host, provider_id: &str, redis_url: String) -> String {
    let counter = host
        .start_actor_with(&signed("kvcounter"), Some(concurrency()))
        .await
        .unwrap()
        .id;
    host.put_link(LinkDefinition {
        actor_id: counter.clone(),
        contract_id: "wasmcloud:keyvalue".into(),
        link_name: "default".into(),
        provider_id: provider_id.into(),
        values: [("url".to_string(), redis_url)].into(),
    })
    .await
    .unwrap();
    counter
}

/// Runs [`increments`] counter requests, [`concurrency`] at a time; returns how many per
/// second, and how many it made.
async fn increments_per_second(host: &Host, counter: &str, request: &[u8]) -> (f64, usize) {
    let increments = increments();
    let started = Instant::now();
    let concurrency = concurrency();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (host, counter, request) = (host.clone(), counter.to_string(), request.to_vec());
            tokio::spawn(async move {
                for _ in 0..increments / concurrency {
                    host.invoke(&counter, HANDLE_REQUEST, &request)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let made = increments / concurrency * concurrency;
    (made as f64 / started.elapsed().as_secs_f64(), made)
}

/// Set in the environment of the provider process this benchmark starts (itself, run
/// again): the NATS URL and the provider id to serve, space-separated.
const PROVIDER_PROCESS_ENV: &str = "WEFT_BENCH_PROVIDER";

/// The provider process's life: serves the Redis provider on the lattice until killed, on
/// one thread, as `weft provider run keyvalue-redis` does by default.
fn provider_process(spec: &str) {
    let (url, provider_id) = spec.split_once(' ').expect("NATS URL and provider id");
    let options = RunnerOptions {
        nats: NatsOptions {
            url: url.into(),
            ..NatsOptions::default()
        },
        lattice: LATTICE.into(),
        credentials: credentials().clone(),
        provider_id: provider_id.into(),
        actor_call_deadline: Duration::from_secs(5),
        announce_ready: None,
        own_health: None,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(runner::run(
            Arc::new(RedisKeyValue::new(None)),
            options,
            std::future::pending(),
        ))
        .unwrap();
}

/// Kills the provider process when dropped.
struct ProviderProcess(std::process::Child);

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the Redis provider in a process of its own on the lattice, as `provider_id`;
/// returns once it answers health checks.
async fn provider_in_its_own_process(nats: &NatsServer, provider_id: &str) -> ProviderProcess {
    let process = spawn_provider_process(nats, provider_id);
    let health = lattice::Subjects::new(LATTICE).provider_health(provider_id);
    let client = join(nats, "bench").await;
    while lattice::request(
        &client,
        health.clone(),
        Vec::new(),
        Duration::from_millis(500),
    )
    .await
    .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process
}

/// Provider process replacements (h) makes, and the calls it keeps in flight meanwhile.
const SWAPS: usize = 5;
const SWAP_CONCURRENCY: usize = 8;

/// The instances of `provider_id` that say they serve now, asked as `member`.
async fn instances(member: &lattice::Member, provider_id: &str) -> Vec<String> {
    let subject = member.subjects().provider_instances(provider_id);
    lattice::gather(
        member,
        subject.clone(),
        Vec::new(),
        Duration::from_millis(50),
        4096,
        16,
    )
    .await
    .unwrap()
    .into_iter()
    .filter_map(|(body, _)| lattice::decode::<lattice::ProviderInstance>(&subject, &body).ok())
    .map(|instance| instance.instance)
    .collect()
}

/// Starts the Redis provider in a process of its own on the lattice, as `provider_id`.
fn spawn_provider_process(nats: &NatsServer, provider_id: &str) -> ProviderProcess {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(
            PROVIDER_PROCESS_ENV,
            format!("{} {provider_id}", nats.url()),
        )
        .env(ISSUER_ENV, credentials().issuer_seed().unwrap())
        .spawn()
        .unwrap();
    ProviderProcess(child)
}

/// What (h) measured.
struct Replacement {
    /// From starting the new process to the old one's exit, each swap, sorted.
    took: Vec<Duration>,
    steady_p99: Duration,
    overlapping_p99: Duration,
    steady_calls: usize,
    overlapping_calls: usize,
    failed: usize,
}

fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort_unstable();
    latencies
        .get(latencies.len().saturating_sub(1) * 99 / 100)
        .copied()
        .unwrap_or_default()
}

/// (h): see the top of this file.
async fn replace_under_load(nats: &NatsServer, redis: &RedisServer) -> Replacement {
    let provider_id = "redis-swap";
    let observer = join(nats, "bench-swap").await;
    let mut current = provider_in_its_own_process(nats, provider_id).await;
    let mut current_instance = instances(&observer, provider_id).await.remove(0);
    let host = member(nats).await;
    let counter = start_counter(&host, provider_id, redis.url()).await;
    let request = weft_contracts::encode(&HttpRequest {
        method: "GET".into(),
        path: "/counter/swap".into(),
        ..HttpRequest::default()
    })
    .unwrap();
    let base = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..SWAP_CONCURRENCY)
        .map(|_| {
            let (host, counter, request, stop) =
                (host.clone(), counter.clone(), request.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut calls, mut failed) = (Vec::new(), 0);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    match host.invoke(&counter, HANDLE_REQUEST, &request).await {
                        Ok(_) => calls.push((started - base, started.elapsed())),
                        Err(_) => failed += 1,
                    }
                }
                (calls, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut windows = Vec::new();
    let mut took = Vec::new();
    for _ in 0..SWAPS {
        let started = Instant::now();
        let next = spawn_provider_process(nats, provider_id);
        let new = loop {
            if let Some(new) = instances(&observer, provider_id)
                .await
                .into_iter()
                .find(|i| *i != current_instance)
            {
                break new;
            }
        };
        host.hand_over_provider(provider_id, &new, &[])
            .await
            .unwrap();
        let leave = observer
            .subjects()
            .provider_instance_leave(provider_id, &current_instance);
        lattice::request(&observer, leave, Vec::new(), Duration::from_secs(2))
            .await
            .unwrap();
        while current.0.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(started.elapsed());
        windows.push((started - base, base.elapsed()));
        (current, current_instance) = (next, new);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut steady, mut overlapping, mut failed) = (Vec::new(), Vec::new(), 0);
    for worker in load {
        let (calls, failures) = worker.await.unwrap();
        failed += failures;
        for (at, latency) in calls {
            let overlaps = windows
                .iter()
                .any(|(from, to)| at <= *to && at + latency >= *from);
            // The first second warms up: not steady.
            if overlaps {
                overlapping.push(latency);
            } else if at > Duration::from_secs(1) {
                steady.push(latency);
            }
        }
    }
    drop(current);
    took.sort_unstable();
    Replacement {
        took,
        steady_calls: steady.len(),
        overlapping_calls: overlapping.len(),
        steady_p99: p99(&mut steady),
        overlapping_p99: p99(&mut overlapping),
        failed,
    }
}

/// What (g) found under one durability setting: medians over the rounds.
struct Throughput {
    durability: &'static str,
    redis_benchmark: f64,
    out_of_process: f64,
    out_ratio: f64,
    out_lowest: f64,
    out_highest: f64,
    in_process: f64,
    in_ratio: f64,
    /// Where the CPU went: over NATS, in the host's process, redis-benchmark's rounds.
    cpu: [CpuSplit; 3],
}

impl Throughput {
    /// From rounds of (out of process, in process, redis-benchmark), each in increments/s.
    fn of(durability: &'static str, rounds: Vec<(f64, f64, f64)>, cpu: [CpuSplit; 3]) -> Self {
        let column =
            |pick: fn(&(f64, f64, f64)) -> f64| -> Vec<f64> { rounds.iter().map(pick).collect() };
        let mut out_ratios = column(|r| r.0 / r.2);
        let out_ratio = weft_bench::median(&mut out_ratios);
        Throughput {
            durability,
            redis_benchmark: weft_bench::median(&mut column(|r| r.2)),
            out_of_process: weft_bench::median(&mut column(|r| r.0)),
            out_ratio,
            out_lowest: out_ratios.first().copied().unwrap_or(f64::NAN),
            out_highest: out_ratios.last().copied().unwrap_or(f64::NAN),
            in_process: weft_bench::median(&mut column(|r| r.1)),
            in_ratio: weft_bench::median(&mut column(|r| r.1 / r.2)),
            cpu,
        }
    }
}

fn main() {
    if let Ok(spec) = std::env::var(PROVIDER_PROCESS_ENV) {
        return provider_process(&spec);
    }
    let output = weft_bench::target_dir().join("criterion");
    let mut c = Criterion::default()
        .output_directory(&output)
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let nats = NatsServer::start().unwrap();

    let groups = groups();
    let mut report: Vec<String> = Vec::new();
    if groups.contains('f') {
        // (f) two hosts vs raw request-reply.
        let (_a, b, echo) = runtime.block_on(async {
            let (a, b) = (member(&nats).await, member(&nats).await);
            let echo = a.start_actor(&signed("echo")).await.unwrap().id;
            (a, b, echo)
        });
        let payload = vec![7u8; 100];
        assert_eq!(
            runtime.block_on(b.invoke(&echo, "echo", &payload)).unwrap(),
            payload
        );
        let (requester, responder) = runtime.block_on(async {
            let requester = async_nats::connect(nats.url()).await.unwrap();
            let responder = async_nats::connect(nats.url()).await.unwrap();
            let mut requests = responder.subscribe("raw.echo").await.unwrap();
            let replier = responder.clone();
            tokio::spawn(async move {
                while let Some(message) = requests.next().await {
                    if let Some(reply) = message.reply {
                        replier.publish(reply, message.payload).await.unwrap();
                    }
                }
            });
            lattice::round_trip(&responder, Duration::from_secs(5))
                .await
                .unwrap();
            (requester, responder)
        });
        {
            let mut group = c.benchmark_group("lattice_call_100B");
            group.bench_function("raw_async_nats_request", |bench| {
                bench.to_async(&runtime).iter(|| async {
                    requester
                        .request("raw.echo", payload.clone().into())
                        .await
                        .unwrap()
                })
            });
            group.bench_function("weft_invoke_on_other_host", |bench| {
                bench
                    .to_async(&runtime)
                    .iter(|| async { b.invoke(&echo, "echo", &payload).await.unwrap() })
            });
            group.finish();
        }
        let paired = runtime.block_on(weft_bench::paired_ratio(
            PAIRED_ROUNDS,
            PAIRED_CALLS,
            || async {
                requester
                    .request("raw.echo", payload.clone().into())
                    .await
                    .unwrap();
            },
            || async {
                b.invoke(&echo, "echo", &payload).await.unwrap();
            },
        ));
        drop(responder);
        c.final_summary();
        let mean = |bench: &str| weft_bench::mean_ns(&output, "lattice_call_100B", bench);
        if let (Some(weft), Some(raw)) = (
            mean("weft_invoke_on_other_host"),
            mean("raw_async_nats_request"),
        ) {
            report.push(format!(
                "(f) actor call across two hosts, 100 B: weft {:.1} µs, raw async-nats request-reply {:.1} µs, ratio {:.2}× (target ≤ 1.3×)",
                weft / 1e3,
                raw / 1e3,
                weft / raw
            ));
        }
        report.push(format!(
            "    paired, {PAIRED_ROUNDS} rounds of {PAIRED_CALLS} calls each way: median weft {:.1} µs, raw {:.1} µs, median ratio {:.2}× (rounds' ratios {:.2}–{:.2}×)",
            paired.weft_us, paired.raw_us, paired.ratio, paired.lowest, paired.highest
        ));
    }
    if groups.contains('g') {
        // (g) increments through the Redis provider, out of process and in, vs redis-benchmark.
        let request = weft_contracts::encode(&HttpRequest {
            method: "GET".into(),
            path: "/counter/bench".into(),
            ..HttpRequest::default()
        })
        .unwrap();
        let durabilities =
            std::env::var("WEFT_LATTICE_DURABILITIES").unwrap_or_else(|_| DURABILITIES.join(","));
        let round_count = std::env::var("WEFT_LATTICE_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(THROUGHPUT_ROUNDS);
        let throughputs: Vec<Throughput> = DURABILITIES
            .iter()
            .filter(|durability| durabilities.contains(**durability))
            .map(|durability| {
                let redis = RedisServer::start_with(&["--appendfsync", durability]).unwrap();
                let provider_id = format!("redis-{durability}");
                let (provider, member, remote, local, local_counter) = runtime.block_on(async {
                    let provider = provider_in_its_own_process(&nats, &provider_id).await;
                    let member = member(&nats).await;
                    let remote = start_counter(&member, &provider_id, redis.url()).await;
                    // The same provider in a host's process, as `weft up` runs it without `process`.
                    let local = Host::new(HostConfig::default()).unwrap();
                    local
                        .add_provider(&provider_id, Arc::new(RedisKeyValue::new(None)))
                        .await
                        .unwrap();
                    let local_counter = start_counter(&local, &provider_id, redis.url()).await;
                    (provider, member, remote, local, local_counter)
                });
                let mut rounds = Vec::new();
                let (host_pid, provider_pid) = (std::process::id(), provider.0.id());
                let nats_pid = nats.pid().expect("nats-server runs");
                let redis_pid = redis.pid().expect("redis-server runs");
                let mut over_nats = CpuSplit::new(&["host", "nats-server", "provider", "Redis"]);
                let mut in_host = CpuSplit::new(&["host", "Redis"]);
                let mut baseline = CpuSplit::new(&["Redis", "redis-benchmark"]);
                for _ in 0..round_count {
                    let (mut out, mut inside) = (0.0, 0.0);
                    over_nats.measure(&[host_pid, nats_pid, provider_pid, redis_pid], || {
                        let (rate, made) =
                            runtime.block_on(increments_per_second(&member, &remote, &request));
                        out = rate;
                        made
                    });
                    in_host.measure(&[host_pid, redis_pid], || {
                        let (rate, made) = runtime.block_on(increments_per_second(
                            &local,
                            &local_counter,
                            &request,
                        ));
                        inside = rate;
                        made
                    });
                    let redis_before = weft_testing::process::cpu_ticks(redis_pid);
                    let started = Instant::now();
                    let (rate, requests, benchmark_ticks) = redis_benchmark(redis.port());
                    let redis_used = weft_testing::process::cpu_ticks(redis_pid)
                        .zip(redis_before)
                        .map_or(0, |(after, before)| after.saturating_sub(before));
                    baseline.add(&[redis_used, benchmark_ticks], requests, started.elapsed());
                    rounds.push((out, inside, rate));
                }
                drop(provider);
                Throughput::of(durability, rounds, [over_nats, in_host, baseline])
            })
            .collect();

        report.push(format!(
            "(g) increments through the Redis provider, {concurrency} at a time, vs redis-benchmark -t incr -c {concurrency} on the same Redis (target ≥ 1.0× at 50); median of {round_count} alternating rounds:",
            concurrency = concurrency()
        ));
        for t in &throughputs {
            report.push(format!(
                "    appendfsync {}: redis-benchmark {:.0}/s; provider out of process, over NATS: weft {:.0}/s, ratio {:.2}× (rounds {:.2}–{:.2}×); in the host's process: weft {:.0}/s, ratio {:.2}×",
                t.durability,
                t.redis_benchmark,
                t.out_of_process,
                t.out_ratio,
                t.out_lowest,
                t.out_highest,
                t.in_process,
                t.in_ratio
            ));
            let [over_nats, in_host, baseline] = &t.cpu;
            report.push(format!(
                "      CPU an increment, all rounds (/proc): over NATS: {}; in the host's process: {}; redis-benchmark's rounds: {}",
                over_nats.describe(),
                in_host.describe(),
                baseline.describe()
            ));
        }
    }
    if groups.contains('h') {
        // (h) a provider process replaced under load.
        let swap_redis = RedisServer::start_with(&["--appendfsync", "everysec"]).unwrap();
        let replaced = runtime.block_on(replace_under_load(&nats, &swap_redis));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        report.push(format!(
            "(h) provider process replaced under load ({SWAP_CONCURRENCY} increments at a time, {SWAPS} swaps): new process started to old one gone median {:.0} ms (longest {:.0} ms); p99 of the {} calls overlapping a swap {:.2} ms vs {:.2} ms for the {} calls between swaps: ratio {:.2}× (target ≤ 2×); {} calls failed",
            ms(replaced.took[replaced.took.len() / 2]),
            ms(replaced.took[replaced.took.len() - 1]),
            replaced.overlapping_calls,
            ms(replaced.overlapping_p99),
            ms(replaced.steady_p99),
            replaced.steady_calls,
            replaced.overlapping_p99.as_secs_f64() / replaced.steady_p99.as_secs_f64(),
            replaced.failed
        ));
    }
    println!("\n== Lattice benchmarks (same run, real nats-server and redis-server) ==");
    for line in report {
        println!("{line}");
    }
}
