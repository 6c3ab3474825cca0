//! HTTP from an external load generator, the server pinned to N cores (#19 items 3 and 4):
//! (m) `wrk` (keep-alive connections, one request at a time each) against the http-server
//!     provider → `hello` actor and against a native hyper hello world, each server a process
//!     of its own pinned with `taskset` to cores 0..N, wrk pinned to the cores left over (on a
//!     machine with no core left, wrk shares the server's: said in the output). Rounds
//!     alternate the two servers; the figures are the medians of the rounds, the ratio the
//!     median of the rounds' ratios. Targets: on one core Weft ≥ 0.85× hyper with p99 ≤ 1.5×
//!     hyper's; as N grows, Weft's ratio does not fall.
//!
//! Also printed: each server's CPU time per request (user and system, read from `/proc`),
//! steadier than requests/s on a shared machine, and what it says Weft adds to a request.
//!
//! Both servers run as `weft up --threads N` runs: a current-thread tokio runtime on one core,
//! N workers on N. The Weft server keeps metrics, as the CLI's hosts always do.
//!
//! A third server joins the rounds where `wasmtime` 48 is installed (`WEFT_WASMTIME` names
//! the binary, else the one on the `PATH`; `scripts/bench-tools.sh` installs it;
//! `WEFT_WASI_HELLO` names a component built before, where nothing can be built): `wasmtime
//! serve -S cli`, otherwise with its defaults, running the same hello as a wasi:http component (`wasi-hello/`,
//! built here for `wasm32-wasip2`), the comparison the issue made. Without it the output
//! says so on its first line.
//!
//! `WEFT_CORES` lists the N to run (default: 1, 2, 4, 8, … up to the machine's cores);
//! `WEFT_CORES_SECS` the seconds of each run (default 5); `WEFT_CORES_ROUNDS` the rounds
//! (default 3). Needs `wrk` (Debian package `wrk`; `scripts/setup.sh` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use weft_bench::env_or;

/// Set in a child started to serve: `native` or `weft`, then the worker threads.
const SERVE_ENV: &str = "WEFT_CORES_SERVE";
/// Connections per server core.
const CONNECTIONS_PER_CORE: usize = 16;

fn main() {
    if let Ok(serve) = std::env::var(SERVE_ENV) {
        return serve_until_stdin_closes(&serve);
    }
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is not installed: install the Debian package `wrk` (scripts/setup.sh does)");
        std::process::exit(2);
    }
    if Command::new("taskset").arg("-V").output().is_err() {
        eprintln!("taskset is not installed: install the Debian package `util-linux`");
        std::process::exit(2);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts = weft_bench::counts_from_env("WEFT_CORES", cores);
    let secs: u64 = env_or("WEFT_CORES_SECS", 5);
    let rounds: usize = env_or("WEFT_CORES_ROUNDS", 3);
    let mut kinds = vec![Kind::Native, Kind::Weft];
    match wasmtime_serve() {
        Ok(serve) => kinds.push(serve),
        Err(why) => println!(
            "(m) wasmtime serve NOT RUN: {why}. `bash scripts/bench-tools.sh` installs it (a long build)."
        ),
    }
    println!(
        "\n== (m) HTTP hello world under wrk, server pinned to N of {cores} cores, {rounds} alternating rounds of {secs} s (same run) =="
    );
    for n in counts {
        if n > cores {
            println!("N = {n}: skipped, the machine has {cores} cores");
            continue;
        }
        let server_cpus = format!("0-{}", n - 1);
        let (client_cpus, shared) = if n < cores {
            (format!("{n}-{}", cores - 1), false)
        } else {
            (format!("0-{}", cores - 1), true)
        };
        let client_threads = if shared { cores } else { cores - n };
        let connections = CONNECTIONS_PER_CORE * n;
        let mut runs: Vec<(Wrk, Wrk)> = Vec::new();
        let mut serve_runs: Vec<Wrk> = Vec::new();
        for round in 0..rounds {
            let mut measured: [Option<Wrk>; 3] = [None, None, None];
            // Which server goes first turns with the rounds, so each sees the machine as the
            // others do.
            for at in 0..kinds.len() {
                let which = (at + round) % kinds.len();
                let Some(kind) = kinds.get(which) else {
                    continue;
                };
                let server = Server::start(kind, n, &server_cpus);
                let run =
                    |secs: u64| wrk(&client_cpus, client_threads, connections, secs, server.port);
                run(1); // warm-up
                let cpu_before = cpu_secs(server.child.id());
                let mut one = run(secs);
                let cpu = cpu_secs(server.child.id()) - cpu_before;
                one.cpu_us = cpu * 1e6 / one.requests;
                measured[which] = Some(one);
            }
            let [Some(native), Some(weft), serve] = measured else {
                unreachable!()
            };
            runs.push((native, weft));
            serve_runs.extend(serve);
        }
        let median = |pick: &dyn Fn(&(Wrk, Wrk)) -> f64| {
            weft_bench::median(&mut runs.iter().map(pick).collect::<Vec<_>>())
        };
        let mut ratios: Vec<f64> = runs.iter().map(|(h, w)| w.rps / h.rps).collect();
        let ratio = weft_bench::median(&mut ratios);
        println!(
            "(m) N = {n} server core(s), wrk on {} ({client_threads} thread(s), {connections} connections){}: native hyper {:.0} req/s, weft {:.0} req/s, ratio {ratio:.2}× (rounds {:.2}–{:.2}×); p99 hyper {:.2} ms, weft {:.2} ms, ratio {:.2}×",
            if shared {
                format!("the same {cores} cores")
            } else {
                format!("cores {client_cpus}")
            },
            if shared {
                " [shared: no core left for wrk]"
            } else {
                ""
            },
            median(&|r| r.0.rps),
            median(&|r| r.1.rps),
            ratios.first().copied().unwrap_or(f64::NAN),
            ratios.last().copied().unwrap_or(f64::NAN),
            median(&|r| r.0.p99_ms),
            median(&|r| r.1.p99_ms),
            median(&|r| r.1.p99_ms / r.0.p99_ms),
        );
        println!(
            "    server CPU per request (user + system, from /proc): native hyper {:.2} µs, weft {:.2} µs, weft adds {:.2} µs",
            median(&|r| r.0.cpu_us),
            median(&|r| r.1.cpu_us),
            median(&|r| r.1.cpu_us - r.0.cpu_us),
        );
        if serve_runs.len() == runs.len() {
            let mut weft_to_serve: Vec<f64> = runs
                .iter()
                .zip(&serve_runs)
                .map(|((_, w), s)| w.rps / s.rps)
                .collect();
            let serve_median = |pick: &dyn Fn(&Wrk) -> f64| {
                weft_bench::median(&mut serve_runs.iter().map(pick).collect::<Vec<_>>())
            };
            println!(
                "    wasmtime serve (the same hello as a wasi:http component) {:.0} req/s, p99 {:.2} ms, {:.2} µs CPU a request: weft is {:.2}× it (rounds {:.2}–{:.2}×)",
                serve_median(&|w| w.rps),
                serve_median(&|w| w.p99_ms),
                serve_median(&|w| w.cpu_us),
                weft_bench::median(&mut weft_to_serve),
                weft_to_serve.first().copied().unwrap_or(f64::NAN),
                weft_to_serve.last().copied().unwrap_or(f64::NAN),
            );
        }
    }
}

/// A server that bench (m) runs.
enum Kind {
    Native,
    Weft,
    /// `wasmtime serve` (the binary) running the wasi:http hello component (its path).
    WasmtimeServe(std::path::PathBuf, std::path::PathBuf),
}

/// `wasmtime serve` and its hello component, if `wasmtime` (`WEFT_WASMTIME`, else on the
/// `PATH`) runs and the component builds; else why not.
fn wasmtime_serve() -> Result<Kind, String> {
    let wasmtime = std::env::var_os("WEFT_WASMTIME")
        .map_or_else(|| "wasmtime".into(), std::path::PathBuf::from);
    let version = Command::new(&wasmtime)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", wasmtime.display()))?;
    if !version.status.success() {
        return Err(format!("{} --version failed", wasmtime.display()));
    }
    let component = match std::env::var_os("WEFT_WASI_HELLO") {
        Some(prebuilt) => std::path::PathBuf::from(prebuilt),
        None => build_wasi_hello()?,
    };
    println!(
        "(m) third server: {} serve ({})",
        wasmtime.display(),
        String::from_utf8_lossy(&version.stdout).trim()
    );
    Ok(Kind::WasmtimeServe(wasmtime, component))
}

/// Builds `wasi-hello/` for wasm32-wasip2; returns the component's path.
fn build_wasi_hello() -> Result<std::path::PathBuf, String> {
    let crate_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("wasi-hello");
    let target = weft_bench::target_dir();
    let built = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&crate_dir)
        .status()
        .map_err(|e| format!("cannot run cargo to build {}: {e}", crate_dir.display()))?;
    if !built.success() {
        return Err(format!(
            "{} did not build (the target: rustup target add wasm32-wasip2)",
            crate_dir.display()
        ));
    }
    Ok(target.join("wasm32-wasip2/release/wasi_hello.wasm"))
}

/// A server child pinned to its cores; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(kind: &Kind, threads: usize, cpus: &str) -> Self {
        match kind {
            Kind::Native => Self::start_child("native", threads, cpus),
            Kind::Weft => Self::start_child("weft", threads, cpus),
            Kind::WasmtimeServe(wasmtime, component) => {
                Self::start_serve(wasmtime, component, cpus)
            }
        }
    }

    /// This benchmark run again as a server of `kind`.
    fn start_child(kind: &str, threads: usize, cpus: &str) -> Self {
        let mut child = Command::new("taskset")
            .args(["-c", cpus])
            .arg(std::env::current_exe().unwrap())
            .env(SERVE_ENV, format!("{kind} {threads}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the {kind} server said {line:?}, not its port"));
        Server { child, port }
    }

    /// `wasmtime serve` on a free loopback port, with its defaults otherwise (as the issue
    /// measured it): a tokio worker per core it is pinned to, a fresh instance per request.
    fn start_serve(wasmtime: &std::path::Path, component: &std::path::Path, cpus: &str) -> Self {
        let mut child = Command::new("taskset")
            .args(["-c", cpus])
            .arg(wasmtime)
            // `-S cli`: Rust's std (its panic handler reads the environment) imports more of
            // WASI than the proxy world that serve offers by default.
            .args(["serve", "-S", "cli", "--addr", "127.0.0.1:0"])
            .arg(component)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // "Serving HTTP on http://127.0.0.1:PORT/"
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("wasmtime serve ended without saying its address");
            }
            if let Some(address) = line.trim().strip_prefix("Serving HTTP on http://") {
                let port = address
                    .trim_end_matches('/')
                    .rsplit(':')
                    .next()
                    .unwrap_or_default();
                break port
                    .parse()
                    .unwrap_or_else(|_| panic!("wasmtime serve said {line:?}"));
            }
        };
        // Its per-request log lines go nowhere; a full pipe would stall it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one wrk run measured.
struct Wrk {
    rps: f64,
    p99_ms: f64,
    requests: f64,
    /// The server's CPU time per request, µs (filled in by the caller).
    cpu_us: f64,
}

/// CPU seconds (user and system) process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    weft_testing::process::cpu_ticks(pid).expect("the server's /proc/PID/stat") as f64 / 100.0
}

fn wrk(cpus: &str, threads: usize, connections: usize, secs: u64, port: u16) -> Wrk {
    let output = Command::new("taskset")
        .args(["-c", cpus, "wrk", "--latency"])
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{secs}s"))
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && !text.contains("Non-2xx") && !text.contains("Socket errors"),
        "wrk failed or saw failures:\n{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |label: &str| -> &str {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} in wrk's output:\n{text}"))
            .trim()
    };
    let requests = text
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"))
        .0;
    Wrk {
        rps: field("Requests/sec:").parse().unwrap(),
        p99_ms: millis(field("99%")),
        requests: requests.parse().unwrap(),
        cpu_us: f64::NAN,
    }
}

/// A wrk duration (`812.00us`, `1.20ms`, `2.01s`) in milliseconds.
fn millis(text: &str) -> f64 {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1e3)
    } else {
        panic!("wrk wrote {text:?} for a latency")
    };
    number.parse::<f64>().unwrap() * scale
}

/// The child: serves hello world (`native` or `weft`) on a free loopback port, says the port
/// on stdout, and exits when its stdin closes.
fn serve_until_stdin_closes(serve: &str) {
    let (kind, threads) = serve.split_once(' ').unwrap();
    let threads: usize = threads.parse().unwrap();
    let mut runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        runtime.worker_threads(threads);
        runtime
    };
    let runtime = runtime.enable_all().build().unwrap();
    runtime.block_on(async {
        let port = match kind {
            "native" => weft_bench::native_hello().await.port(),
            "weft" => weft_hello().await,
            other => panic!("no server {other}"),
        };
        println!("{port}");
        tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().lines().count();
        })
        .await
        .unwrap();
    });
    std::process::exit(0);
}

async fn weft_hello() -> u16 {
    let signed = weft_bench::signed_hello();
    let (host, address) = weft_bench::metered_http_host(&signed).await;
    // The host lives as long as the process.
    std::mem::forget(host);
    address.port()
}
