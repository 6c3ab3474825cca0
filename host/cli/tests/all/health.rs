//! Health probes on the real binary (#20): `weft up --health` answers `/livez` and `/readyz`;
//! deleting kvcounter's key-value link turns it (and only it) unready within one interval,
//! putting it back makes it ready again; on a lattice, Redis stopped under the Redis provider
//! (a process of its own) and NATS stopped under the host each turn readiness red with the
//! reason, and back.
//! The endpoint's bounds: method, body, head size and time, connections. Metrics on the same
//! listener, read with a Prometheus text-format parser.

use crate::up::{Up, get, request, served_at, try_request};
use crate::{Weft, signed_actor};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use weft_testing::{NatsServer, RedisServer};

/// Probes every 50 ms until `path` answers `status`, for at most `within`; returns the body.
/// A connection closed unanswered counts as not yet.
fn until(address: &str, path: &str, status: u16, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let (got, body) = try_request(address, path).unwrap_or((0, String::new()));
        if got == status {
            return body;
        }
        assert!(
            started.elapsed() < within,
            "{path} still {got}, not {status}, after {within:?}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// kvcounter (counting in memory) and hello, each on its own port, with probes on a free port
/// and a round of checks every 200 ms.
fn two_actor_app(weft: &Weft) -> std::path::PathBuf {
    let manifest = weft.path("health-app.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[[actors]]
path = "{kvcounter}"
[[actors]]
path = "{hello}"
[[providers]]
id = "http"
kind = "http-server"
[[providers]]
id = "kv"
kind = "keyvalue-memory"
[[links]]
actor = "kvcounter"
contract = "wasmcloud:httpserver"
provider = "http"
values = {{ address = "127.0.0.1:0" }}
[[links]]
actor = "hello"
contract = "wasmcloud:httpserver"
provider = "http"
values = {{ address = "127.0.0.1:0" }}
[[links]]
actor = "kvcounter"
contract = "wasmcloud:keyvalue"
provider = "kv"
"#,
            kvcounter = signed_actor("kvcounter").display(),
            hello = signed_actor("hello").display(),
        ),
    )
    .unwrap();
    manifest
}

const PROBES: [&str; 4] = ["--health", "127.0.0.1:0", "--health-interval-ms", "200"];

#[test]
fn a_deleted_link_fails_readiness_naming_it_while_everything_else_serves() {
    let weft = Weft::new();
    let up = Up::start_with(&weft, &two_actor_app(&weft), &PROBES, &[]);
    assert!(!up.health.is_empty(), "no health line: {:?}", up.startup);
    let ready = until(&up.health, "/readyz", 200, Duration::from_secs(5));
    let report: serde_json::Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(report["ready"], true, "{report}");
    assert_eq!(report["actors"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(get(&up.health, "/livez"), (200, "alive\n".into()));
    let (kvcounter, hello) = (served_at(&up, "kvcounter"), served_at(&up, "hello"));
    assert_eq!(get(&kvcounter, "/counter/a").0, 200);

    // hello under load all along: nothing that still works stops serving.
    let load = crate::HttpLoad::start(4, || {
        let mut client = crate::ctl::KeepAlive::new(&hello);
        move || client.get("/")
    });
    let control = ["--control", up.control.as_str()];
    weft.run(
        &[
            &["link", "del", "kvcounter", "wasmcloud:keyvalue"][..],
            &control,
        ]
        .concat(),
    )
    .ok();
    let deleted = Instant::now();
    let body = until(&up.health, "/readyz", 503, Duration::from_secs(2));
    let took = deleted.elapsed();
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["ready"], false);
    let actors = report["actors"].as_array().unwrap();
    let of = |name: &str| actors.iter().find(|a| a["name"] == name).unwrap().clone();
    assert_eq!(of("kvcounter")["healthy"], false, "{report}");
    let problem = of("kvcounter")["problems"][0].as_str().unwrap().to_string();
    assert!(
        problem.contains("actor kvcounter is signed for wasmcloud:keyvalue and has no link for it")
            && problem.contains("weft link put kvcounter wasmcloud:keyvalue"),
        "{problem}"
    );
    assert_eq!(of("hello")["healthy"], true, "{report}");
    println!(
        "readiness failed {} ms after the link was deleted (interval 200 ms)",
        took.as_millis()
    );

    // Per actor: hello stays ready; kvcounter does not; an unknown one is not found.
    assert_eq!(get(&up.health, "/readyz/hello").0, 200);
    assert_eq!(get(&up.health, "/readyz/kvcounter").0, 503);
    let (status, body) = get(&up.health, "/readyz/nosuch");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("weft actors"), "{body}");
    // What still works serves on, and the host is alive.
    assert_eq!(get(&hello, "/").0, 200);
    assert_eq!(get(&up.health, "/livez").0, 200);
    let actors_listed = weft.run(&[&["actors"][..], &control].concat()).ok();
    let line = |name: &str| {
        actors_listed
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed: {actors_listed}"))
            .to_string()
    };
    assert!(line("kvcounter").contains("UNHEALTHY"), "{actors_listed}");
    assert!(line("hello").contains(" healthy "), "{actors_listed}");

    weft.run(
        &[
            &["link", "put", "kvcounter", "wasmcloud:keyvalue", "kv"][..],
            &control,
        ]
        .concat(),
    )
    .ok();
    until(&up.health, "/readyz", 200, Duration::from_secs(2));
    assert_eq!(
        get(&kvcounter, "/counter/a").1,
        r#"{"counter":"a","count":2}"#
    );
    let (served, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "hello failed {} requests: {failed:?}",
        failed.len()
    );
    assert!(served > 0);
    println!("hello served {served} requests under the link's removal and return, 0 failed");
}

#[test]
fn the_probe_endpoint_keeps_its_bounds_and_answers_probes_throughout() {
    let weft = Weft::new();
    let up = Up::start_with(&weft, &two_actor_app(&weft), &PROBES, &[]);
    until(&up.health, "/readyz", 200, Duration::from_secs(5));

    // Obeyed: GET and HEAD, no body, a small head.
    assert_eq!(request(&up.health, "HEAD", "/readyz", b"").0, 200);
    // Violated: another method, a body, a head over 8 KiB, an unknown path.
    assert_eq!(request(&up.health, "POST", "/readyz", b"").0, 405);
    assert_eq!(request(&up.health, "GET", "/readyz", b"{}").0, 413);
    let mut stream = TcpStream::connect(&up.health).unwrap();
    let big = format!(
        "GET /readyz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    stream.write_all(big.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(get(&up.health, "/metrics").0, 404);

    // A head never finished is dropped after 2 s.
    let mut slow = TcpStream::connect(&up.health).unwrap();
    slow.write_all(b"GET /readyz HTTP/1.1\r\nHost:").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_millis(4500),
        "an unfinished head was dropped after {waited:?}"
    );

    // 64 connections at once: the 65th is closed unread at once; once the held ones are
    // dropped (their heads never came), probes are answered again.
    let held: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(&up.health).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut over = TcpStream::connect(&up.health).unwrap();
    over.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut nothing = [0u8; 16];
    // Closed: end of stream (or a reset) at once; kept: no answer until the read times out.
    match over.read(&mut nothing) {
        Ok(0) => {}
        Err(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("a connection over the limit was kept: {other:?}"),
    }
    until(&up.health, "/readyz", 200, Duration::from_secs(5));
    drop(held);
    assert_eq!(get(&up.health, "/livez").0, 200);
}

#[test]
fn on_a_lattice_redis_and_nats_going_away_fail_readiness_and_coming_back_restores_it() {
    let weft = Weft::new();
    let mut nats = NatsServer::start().unwrap();
    let mut redis = RedisServer::start().unwrap();
    let _provider = crate::lattice::ProviderProcess::start(&weft, "keyvalue-redis", "redis", &nats);
    let app = crate::lattice::lattice_app_of(&weft, &signed_actor("kvcounter"), &redis);
    let url = nats.url();
    let args = [
        "--lattice",
        "it",
        "--nats",
        &url,
        "--deadline-ms",
        "2000",
        "--trust-any-issuer",
        "--health",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--health-interval-ms",
        "200",
    ];
    let host = Up::start_command(&weft, "host", &app, &args, &[]);
    until(&host.health, "/readyz", 200, Duration::from_secs(10));
    let events = Events::watch(&weft, &url);

    // Lattice traffic in the metrics: sealed messages sent and opened (a count goes to the
    // Redis provider process and back), and a stranger's unsealed ping refused as such.
    assert_eq!(get(&host.serving, "/counter/lattice").0, 200);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stranger = async_nats::connect(&url).await.unwrap();
        let ping = weft_lattice::Subjects::new("it").ping();
        stranger.publish(ping, "who is there".into()).await.unwrap();
        stranger.flush().await.unwrap();
    });
    let lattice_metric = |name: &str, label: &str| -> f64 {
        let (_, text) = get(&host.health, "/metrics");
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(label))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let refused = Instant::now();
    while lattice_metric("weft_lattice_refused_messages_total", "reason=\"unsealed\"") < 1.0 {
        assert!(
            refused.elapsed() < Duration::from_secs(5),
            "the stranger's ping was not counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(lattice_metric("weft_lattice_messages_total", "direction=\"sent\"") >= 1.0);
    assert!(lattice_metric("weft_lattice_messages_total", "direction=\"received\"") >= 1.0);
    assert_eq!(
        lattice_metric("weft_lattice_refused_messages_total", "reason=\"bad_seal\""),
        0.0
    );

    redis.kill();
    let body = until(&host.health, "/readyz", 503, Duration::from_secs(5));
    assert!(
        body.contains("provider redis reports itself unhealthy: Redis at")
            && body.contains("does not answer PING"),
        "{body}"
    );
    assert_eq!(get(&host.health, "/livez").0, 200);
    let event = events.next_of("provider_unhealthy");
    assert_eq!(event["subject"], "redis", "{event}");
    assert!(
        event["detail"]
            .as_str()
            .unwrap()
            .contains("does not answer PING"),
        "{event}"
    );
    let inventory = weft
        .run(&["ctl", "--lattice", "it", "--nats", &url, "inventory"])
        .ok();
    let line = |kind: &str, name: &str| {
        inventory
            .lines()
            .find(|l| l.trim_start().starts_with(kind) && l.contains(name))
            .unwrap_or_else(|| panic!("no {kind} {name} in {inventory}"))
            .to_string()
    };
    assert!(
        line("actor", "kvcounter").contains("UNHEALTHY"),
        "{inventory}"
    );
    assert!(line("provider", "http").contains("healthy"), "{inventory}");
    let event = events.next_of("actor_unhealthy");
    assert!(
        event["detail"]
            .as_str()
            .unwrap()
            .contains("names provider redis, which is unhealthy"),
        "{event}"
    );
    redis.restart().unwrap();
    until(&host.health, "/readyz", 200, Duration::from_secs(10));
    assert_eq!(events.next_of("provider_healthy")["subject"], "redis");

    nats.kill();
    let body = until(&host.health, "/readyz", 503, Duration::from_secs(5));
    assert!(
        body.contains("the host's NATS connection to lattice it is"),
        "{body}"
    );
    assert_eq!(get(&host.health, "/livez").0, 200, "alive without NATS");
    nats.restart().unwrap();
    until(&host.health, "/readyz", 200, Duration::from_secs(15));
    assert_eq!(get(&host.serving, "/counter/lattice").0, 200);
}

/// `weft ctl watch --json` on lattice `it`, killed on drop.
struct Events {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Events {
    fn watch(weft: &Weft, nats_url: &str) -> Events {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
            .args([
                "ctl",
                "--lattice",
                "it",
                "--nats",
                nats_url,
                "watch",
                "--json",
            ])
            .env("WEFT_HOME", weft.home.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(first.starts_with("watching"), "{first}");
        Events { child, lines }
    }

    /// The next event of `kind` within 10 s.
    fn next_of(&self, kind: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} event within 10 s"));
            let event: serde_json::Value = serde_json::from_str(&line).unwrap();
            if event["kind"] == kind {
                return event;
            }
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn metrics_count_calls_per_actor_and_provider_in_prometheus_text_format() {
    let weft = Weft::new();
    // One listener for both: the same address.
    let args = [
        "--health",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--health-interval-ms",
        "200",
    ];
    let up = Up::start_with(&weft, &two_actor_app(&weft), &args, &[]);
    let metrics_line = up
        .startup
        .iter()
        .find(|l| l.starts_with("metrics   http://"))
        .unwrap_or_else(|| panic!("no metrics line: {:?}", up.startup));
    assert!(
        metrics_line.contains(&up.health),
        "{metrics_line} vs {}",
        up.health
    );
    let kvcounter = served_at(&up, "kvcounter");
    for _ in 0..3 {
        assert_eq!(get(&kvcounter, "/counter/m").0, 200);
    }

    let (status, text) = get(&up.health, "/metrics");
    assert_eq!(status, 200, "{text}");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let found: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?} in:\n{text}");
        match found[0].value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(
        value(
            "weft_actor_invocations_total",
            &[("name", "kvcounter"), ("revision", "1")]
        ),
        3.0
    );
    assert_eq!(
        value(
            "weft_provider_calls_total",
            &[("provider", "kv"), ("contract", "wasmcloud:keyvalue")]
        ),
        3.0
    );
    assert_eq!(
        value("weft_actor_instance_starts_total", &[("name", "kvcounter")]),
        1.0,
        "one instance served three calls one after another"
    );
    assert_eq!(
        value(
            "weft_actor_instances",
            &[("name", "kvcounter"), ("state", "idle")]
        ),
        1.0
    );
    assert!(value("weft_process_resident_memory_bytes", &[]) > 1e6);
    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "weft_actor_invocation_duration_seconds"
                && s.labels.get("name") == Some("kvcounter")
        })
        .unwrap_or_else(|| panic!("no duration histogram:\n{text}"));
    match &histogram.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let all = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
            assert_eq!(all, 3.0, "{buckets:?}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    // Errors by kind: the key-value link deleted, kvcounter's calls to its store fail before
    // any provider; an actor's failure is what the actor answers, not an invoke error, so its
    // invocations go on counting as served.
    let control = ["--control", up.control.as_str()];
    weft.run(
        &[
            &["link", "del", "kvcounter", "wasmcloud:keyvalue"][..],
            &control,
        ]
        .concat(),
    )
    .ok();
    assert_eq!(get(&kvcounter, "/counter/m").0, 503);
    let (_, text) = get(&up.health, "/metrics");
    assert!(
        text.contains("weft_actor_invocations_total{actor=\"")
            && text.contains("name=\"kvcounter\",revision=\"1\"} 4"),
        "{text}"
    );
    // The probes are served beside the metrics.
    assert_eq!(get(&up.health, "/livez").0, 200);
}
