//! `weft host` and `weft provider run` as separate processes on a real `nats-server`, with
//! the Redis provider against a real `redis-server`: HTTP → actor → Redis through either host.

use crate::up::{Up, example, get, kvcounter_example};
use crate::{Weft, signed_actor};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use weft_testing::{NatsServer, RedisServer};

/// A `weft provider run …` process, killed on drop.
pub(crate) struct ProviderProcess {
    child: Child,
}

impl ProviderProcess {
    /// Starts it and waits until it serves on the lattice.
    pub(crate) fn start(weft: &Weft, kind: &str, id: &str, nats: &NatsServer) -> ProviderProcess {
        Self::start_with(weft, kind, id, nats, &[])
    }

    /// [`Self::start`] with more arguments.
    fn start_with(
        weft: &Weft,
        kind: &str,
        id: &str,
        nats: &NatsServer,
        more: &[&str],
    ) -> ProviderProcess {
        Self::start_at(weft, kind, id, &nats.url(), more)
    }

    /// [`Self::start_with`] on lattice `it` at `url` (one NATS server, or several).
    pub(crate) fn start_at(
        weft: &Weft,
        kind: &str,
        id: &str,
        url: &str,
        more: &[&str],
    ) -> ProviderProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args([
                "provider",
                "run",
                kind,
                "--id",
                id,
                "--lattice",
                "it",
                "--nats",
            ])
            .arg(url)
            .args(more)
            .env("WEFT_HOME", weft.home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        // Owned (killed on drop) before anything can fail.
        let process = ProviderProcess { child };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("the provider did not say it serves on the lattice");
            if line.contains("provider serving on the lattice") {
                return process;
            }
        }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it exits by itself within `within`.
    pub(crate) fn exits_within(&mut self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// kvcounter with its HTTP link (listening at `address`) to provider `http` and its
/// key-value link to `redis`; neither provider is in it.
fn counter_links(actor: &std::path::Path, redis: &RedisServer, address: &str) -> String {
    format!(
        r#"
[[actors]]
path = {path:?}
[[links]]
actor = "kvcounter"
contract = "wasmcloud:httpserver"
provider = "http"
values = {{ address = "{address}" }}
[[links]]
actor = "kvcounter"
contract = "wasmcloud:keyvalue"
provider = "redis"
values = {{ url = "{url}" }}
"#,
        path = actor.to_str().unwrap(),
        url = redis.url()
    )
}

/// The counter app for a lattice host: its own HTTP listener, key-value from `redis` on the
/// lattice (a provider this host does not run).
fn lattice_app(weft: &Weft, redis: &RedisServer) -> std::path::PathBuf {
    lattice_app_of(weft, &signed_actor("kvcounter"), redis)
}

/// [`lattice_app`] with the actor at `actor`.
pub(crate) fn lattice_app_of(
    weft: &Weft,
    actor: &std::path::Path,
    redis: &RedisServer,
) -> std::path::PathBuf {
    let manifest = weft.path("lattice-app.toml");
    let links = counter_links(actor, redis, "127.0.0.1:0");
    std::fs::write(
        &manifest,
        format!("{links}\n[[providers]]\nid = \"http\"\nkind = \"http-server\"\n"),
    )
    .unwrap();
    manifest
}

fn count(address: &str) -> i64 {
    let (status, body) = get(address, "/counter/lattice");
    assert_eq!(status, 200, "{body}");
    body.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('}')
        .parse()
        .unwrap()
}

#[test]
fn two_hosts_and_a_redis_provider_process_count_in_one_redis() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let mut redis = RedisServer::start().unwrap();
    let mut provider = ProviderProcess::start(&weft, "keyvalue-redis", "redis", &nats);
    let app = lattice_app(&weft, &redis);
    let url = nats.url();
    let lattice_args = [
        "--lattice",
        "it",
        "--nats",
        &url,
        "--deadline-ms",
        "2000",
        "--trust-any-issuer",
    ];
    let a = Up::start_command(&weft, "host", &app, &lattice_args, &[]);
    let b = Up::start_command(&weft, "host", &app, &lattice_args, &[]);

    assert_eq!(count(&a.serving), 1);
    assert_eq!(count(&b.serving), 2);
    assert_eq!(count(&a.serving), 3);

    // Redis restarted under the provider process: it reconnects by itself, and the counter
    // goes on from the last acknowledged increment (Redis syncs each write before answering).
    redis.restart().unwrap();
    let reconnecting = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(&a.serving, "/counter/lattice");
        if status == 200 {
            assert!(body.ends_with(":4}"), "{body}");
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < reconnecting,
            "not reconnected in 5 s: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The provider process gone: a request fails with an error naming it within the call
    // deadline (2 s here, plus slack for a loaded machine), not a hang. NATS usually knows at
    // once that nothing serves the instance's subject ("no responders"), and then that no other
    // instance serves the id; a request that beats the server to the dropped connection waits
    // for the deadline.
    provider.kill();
    let started = Instant::now();
    let (status, body) = get(&a.serving, "/counter/lattice");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(4),
        "{waited:?}: {status} {body}"
    );
    // kvcounter answers 503 when its store is unavailable, with the host's reason.
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("provider redis: no instance of provider redis serves on lattice it")
            || body.contains("provider redis: no answer on weft.it.provider.redis.instance."),
        "{body}"
    );

    // Started again, it serves the links it is called through, and nothing was lost.
    let _provider = ProviderProcess::start(&weft, "keyvalue-redis", "redis", &nats);
    assert_eq!(count(&b.serving), 5);
}

#[test]
fn weft_host_needs_a_lattice() {
    let weft = Weft::new();
    let redis = RedisServer::start().unwrap();
    let app = lattice_app(&weft, &redis);
    let err = weft
        .run(&["host", app.to_str().unwrap(), "--control", "127.0.0.1:0"])
        .fails();
    assert!(err.contains("weft host needs --lattice NAME"), "{err}");
    // Unsigned code is for a developer's own machine, never a lattice (checked before any
    // connection is made: no NATS is needed to be refused).
    let err = weft
        .run(&[
            "host",
            app.to_str().unwrap(),
            "--lattice",
            "dev",
            "--allow-unsigned",
            "--control",
            "127.0.0.1:0",
        ])
        .fails();
    assert!(
        err.contains("--allow-unsigned runs modules nobody signed")
            && err.contains("refused on a lattice"),
        "{err}"
    );
}

/// The process id in a "provider  ID running as process PID" line.
fn provider_pid(line: &str) -> u32 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// `process = true`: `weft host` runs the provider as a child on the lattice and supervises
/// it. Killed with SIGKILL, its callers get an error within the deadline and it is restarted;
/// it stops with the host. Its config and the link's values hold secrets (by their keys),
/// which reach the provider but appear neither in its argv, nor in the host's banner, nor in
/// the link list.
#[test]
fn weft_host_restarts_a_killed_provider_process_and_stops_it_on_exit() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let app = weft.path("supervised.toml");
    let plain = std::fs::read_to_string(lattice_app(&weft, &redis))
        .unwrap()
        .replace(
            &format!("values = {{ url = \"{}\" }}", redis.url()),
            &format!(
                "values = {{ url = \"{}\", api_token = \"s3cret-token\" }}",
                redis.url()
            ),
        );
    assert!(plain.contains("s3cret-token"));
    std::fs::write(
        &app,
        format!(
            "{plain}\n[[providers]]\nid = \"redis\"\nkind = \"keyvalue-redis\"\nprocess = true\n\
             config = {{ url = \"{}\", password = \"s3cret-pw\" }}\n",
            redis.url()
        ),
    )
    .unwrap();
    let url = nats.url();
    let args = [
        "--lattice",
        "it",
        "--nats",
        &url,
        "--deadline-ms",
        "2000",
        "--trust-any-issuer",
    ];
    let host = Up::start_command(&weft, "host", &app, &args, &[]);
    let first = host
        .startup
        .iter()
        .find(|l| l.starts_with("provider  redis running as process"))
        .map(|l| provider_pid(l))
        .expect("the host named no provider process");
    assert_eq!(count(&host.serving), 1);
    let argv = std::fs::read(format!("/proc/{first}/cmdline")).unwrap();
    let argv = String::from_utf8_lossy(&argv);
    assert!(
        argv.contains("keyvalue-redis") && !argv.contains("s3cret"),
        "{argv}"
    );
    let banner = host.startup.join("\n");
    assert!(
        !banner.contains("s3cret") && banner.contains(r#""api_token": "***""#),
        "{banner}"
    );
    let listed = weft
        .run(&["link", "list", "--json", "--control", &host.control])
        .ok();
    assert!(
        listed.contains("api_token") && !listed.contains("s3cret"),
        "{listed}"
    );

    let status = Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let (status, body) = get(&host.serving, "/counter/lattice");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Known at once ("no responders") or, if the call reaches a subscription NATS has not yet
    // dropped, at the provider's share of the 2 s deadline: either way the actor answers,
    // naming the provider.
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("provider redis"), "{body}");

    let restarted = host.wait_for("restarting the provider", |l| {
        l.starts_with("provider  redis running as process")
    });
    let second = provider_pid(&restarted);
    assert_ne!(first, second);
    let back = Instant::now();
    loop {
        let (status, body) = get(&host.serving, "/counter/lattice");
        if status == 200 {
            assert!(body.ends_with(":2}"), "{body}");
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not serving again: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, _) = host.interrupt();
    assert_eq!(code, 0);
    assert!(!alive(second), "the provider process outlived its host");
}

/// examples/msg-echo as its README runs it: requests on echo.> answered by the actor.
#[test]
fn msg_echo_example_answers_nats_requests() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _up = Up::start(&weft, &example("msg-echo"), &[("NATS_URL", url.as_str())]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = runtime.block_on(async {
        let client = async_nats::connect(url.as_str()).await.unwrap();
        tokio::time::timeout(
            Duration::from_secs(5),
            client.request("echo.hi", "hello".into()),
        )
        .await
        .unwrap()
        .unwrap()
    });
    assert_eq!(&reply.payload[..], b"echo: hello");
}

/// examples/kvcounter-redis as its README runs it: two hosts, each with its supervised Redis
/// provider process, counting in one Redis.
#[test]
fn kvcounter_redis_example_counts_in_one_redis_from_two_hosts() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let (nats_url, redis_url) = (nats.url(), redis.url());
    let args = [
        "--lattice",
        "demo",
        "--nats",
        &nats_url,
        "--trust-any-issuer",
    ];
    let env = [
        ("REDIS_URL", redis_url.as_str()),
        ("KVCOUNTER_ADDRESS", "127.0.0.1:0"),
    ];
    let app = example("kvcounter-redis");
    let a = Up::start_command(&weft, "host", &app, &args, &env);
    let b = Up::start_command(&weft, "host", &app, &args, &env);
    assert_eq!(count(&a.serving), 1);
    assert_eq!(count(&b.serving), 2);

    // A host killed outright (no chance to stop its children): its provider process notices
    // and stops itself instead of living on, connected, as an orphan. The other host's own
    // provider process serves on (a host is up only once its own child serves).
    let orphan = a
        .startup
        .iter()
        .find(|l| l.starts_with("provider  redis running as process"))
        .map(|l| provider_pid(l))
        .expect("the host named no provider process");
    drop(a); // SIGKILL
    let killed = Instant::now();
    while running(orphan) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "provider process {orphan} outlived its killed host"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count(&b.serving), 3, "the other host serves on");
}

/// Whether `pid` runs (a zombie waiting for init to reap it does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(|c| c != 'Z'))
        })
        .unwrap_or(false)
}

/// `http-server` out of process: one listener in front of an actor that two hosts run. Both
/// hosts put the same link; the provider keeps its one listener and spreads the requests over
/// the hosts (their queue group). With no host left, a request is answered with an error
/// naming the actor's subject, not left hanging. (The HTTP provider runs on two threads
/// here, the key-value one on the default one: both runtimes serve.)
#[test]
fn an_http_server_provider_process_serves_an_actor_running_on_two_hosts() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let _http =
        ProviderProcess::start_with(&weft, "http-server", "http", &nats, &["--threads", "2"]);
    let _redis = ProviderProcess::start(&weft, "keyvalue-redis", "redis", &nats);
    let address = format!("127.0.0.1:{}", weft_testing::free_port().unwrap());
    let app = weft.path("behind-http-process.toml");
    std::fs::write(
        &app,
        counter_links(&signed_actor("kvcounter"), &redis, &address),
    )
    .unwrap();
    let url = nats.url();
    let lattice_args = [
        "--lattice",
        "it",
        "--nats",
        &url,
        "--deadline-ms",
        "2000",
        "--trust-any-issuer",
    ];
    let a = Up::start_command(&weft, "host", &app, &lattice_args, &[]);
    let b = Up::start_command(&weft, "host", &app, &lattice_args, &[]);
    for expected in 1..=20 {
        assert_eq!(count(&address), expected);
    }

    // One host gone: the other serves every request, once nats-server has seen the killed
    // host's connection close and dropped its subscriptions. (A request routed to the dead
    // host in that window, a few ms on a loaded machine, is lost and times out: core NATS
    // keeps no message for a subscriber that is gone. This failed the test once in session 5
    // and once in session 6, both under the full suite's load.)
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    for expected in 21..=30 {
        assert_eq!(count(&address), expected);
    }

    drop(b);
    let started = Instant::now();
    let (status, body) = get(&address, "/counter/lattice");
    assert!(started.elapsed() < Duration::from_secs(4), "{body}");
    assert!(status >= 500, "{status} {body}");
    assert!(body.contains("weft.it.actor."), "{status} {body}");
}

/// `weft provider run --threads` takes 1 or more; 0 is refused before anything starts, as
/// a usage error (exit code 2).
#[test]
fn a_provider_process_needs_at_least_one_thread() {
    let weft = Weft::new();
    let run = weft.run(&[
        "provider",
        "run",
        "keyvalue-memory",
        "--lattice",
        "it",
        "--threads",
        "0",
    ]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    assert!(
        run.stderr().contains("invalid value '0' for '--threads"),
        "{}",
        run.stderr()
    );
}

/// A supervised provider that keeps its data in memory, killed mid-load (8 keep-alive
/// clients): the host says the data is lost (a line of output and a `provider_state_lost`
/// event that `weft ctl watch` shows), never silently; meanwhile requests get a 503 saying
/// why, never a broken connection, and the restarted provider serves again from empty.
#[test]
fn a_restarted_in_memory_provider_process_reports_its_state_lost() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let app = kvcounter_example(&weft, &signed_actor("kvcounter"), true);
    let host = Up::start_command(
        &weft,
        "up",
        &app,
        &["--lattice", "it", "--nats", &url, "--trust-any-issuer"],
        &[],
    );
    let child = host
        .startup
        .iter()
        .find(|l| l.starts_with("provider  kv running as process"))
        .map(|l| provider_pid(l))
        .expect("the host named no provider process");
    assert_eq!(
        get(&host.serving, "/counter/m").1,
        r#"{"counter":"m","count":1}"#
    );
    let mut watch = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["ctl", "--lattice", "it", "--nats", &url, "watch", "--json"])
        .env("WEFT_HOME", weft.home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, events) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let load = crate::HttpLoad::start(8, || {
        let mut client = crate::ctl::KeepAlive::new(&host.serving);
        move || client.get("/counter/load")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        Command::new("kill")
            .args(["-KILL", &child.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let said = host.wait_for("saying the state is lost", |l| {
        l.contains("provider  kv: keyvalue-memory process") && l.contains("is lost")
    });
    assert!(said.contains("restarts empty"), "{said}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = events
            .recv_timeout(left)
            .expect("no provider_state_lost event");
        if line.contains("provider_state_lost") {
            break line;
        }
    };
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(event.contains(r#""subject":"kv""#), "{event}");
    // Restarted, it serves again, from empty: counter m counts only this loop's requests (a
    // request answered 503 while the process came back may still have reached it).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut asked = 0;
    loop {
        let (status, body) = get(&host.serving, "/counter/m");
        asked += 1;
        if status == 200 {
            let count: u32 = body
                .trim_start_matches(r#"{"counter":"m","count":"#)
                .trim_end_matches('}')
                .parse()
                .unwrap_or_else(|_| panic!("{body}"));
            assert!(
                (1..=asked).contains(&count),
                "{body} after {asked} request(s)"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served again: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, failures) = load.finish();
    assert!(ok > 0);
    // While nothing served the store: 503s saying why (the store, or the actor's instances
    // held by calls that were waiting on the killed process), never a broken connection.
    for failure in &failures {
        assert!(
            failure.starts_with("Ok((503,")
                && (failure.contains("provider kv") || failure.contains("is busy")),
            "{failure}"
        );
    }
    eprintln!(
        "killed mid-load: {ok} requests served, {} answered 503 while the provider restarted",
        failures.len()
    );
}

/// Health is asked of the supervised child itself: hung (SIGSTOP) while another instance of
/// its id answers the id's shared health subject, it is still found unhealthy, killed and
/// restarted.
#[test]
fn a_hung_provider_process_is_restarted_though_a_sibling_answers_for_its_id() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let app = kvcounter_example(&weft, &signed_actor("kvcounter"), true);
    let host = Up::start_command(
        &weft,
        "up",
        &app,
        &["--lattice", "it", "--nats", &url, "--trust-any-issuer"],
        &[],
    );
    let child = host
        .startup
        .iter()
        .find(|l| l.starts_with("provider  kv running as process"))
        .map(|l| provider_pid(l))
        .expect("the host named no provider process");
    let _sibling = ProviderProcess::start(&weft, "keyvalue-memory", "kv", &nats);
    assert!(
        Command::new("kill")
            .args(["-STOP", &child.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let said = host.wait_for_within("the hung child restarted", Duration::from_secs(40), |l| {
        l.starts_with("provider  kv missed") && l.ends_with("restarting it")
    });
    eprintln!("hung child found after {:?}: {said}", started.elapsed());
    let gone = Instant::now() + Duration::from_secs(5);
    while alive(child) {
        assert!(
            Instant::now() < gone,
            "the hung child {child} is still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
