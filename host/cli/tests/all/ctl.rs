//! `weft ctl` against two `weft host` processes started with no app, on a real `nats-server`:
//! deploy, link, call, update (a module over NATS's 1 MiB max payload), stop, inventory and
//! events; and issue 6's swap of actors and providers under load, deployed with `weft ctl apply`.

use crate::up::{Up, example, get, kvcounter_example};
use crate::{HttpLoad, Weft, signed_actor, unsigned_actor};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wasm_encoder::Section;
use weft_testing::{NatsServer, RedisServer};

/// `module` with a custom section of `bytes` zero bytes appended.
fn padded(module: &[u8], bytes: usize) -> Vec<u8> {
    let mut out = module.to_vec();
    wasm_encoder::CustomSection {
        name: "weft-test-padding".into(),
        data: vec![0; bytes].into(),
    }
    .append_to(&mut out);
    out
}

/// A child process killed (and reaped) on drop, even when the test fails first.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `weft host` with no app (it waits for `weft ctl`), with `args` (lattice, NATS, labels),
/// running actors of any issuer (the example actors are signed by the build's key store).
pub(crate) fn bare_host(weft: &Weft, args: &[&str]) -> Up {
    let empty = weft.path("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let args = [args, &["--trust-any-issuer"]].concat();
    Up::start_command(weft, "host", &empty, &args, &[])
}

fn host_id(host: &Up) -> String {
    let line = host
        .startup
        .iter()
        .find_map(|l| l.strip_prefix("host id   "))
        .expect("weft host printed no host id");
    line.trim().to_string()
}

#[test]
fn weft_ctl_deploys_links_updates_and_stops_across_two_hosts() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host_args = ["--lattice", "it", "--nats", &url, "--heartbeat-secs", "1"];
    let a = bare_host(&weft, &host_args);
    let b = bare_host(&weft, &[&host_args[..], &["--label", "zone=b"]].concat());
    let (a_id, b_id) = (host_id(&a), host_id(&b));
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--lattice", "it", "--nats", &url];
        all.extend_from_slice(args);
        weft.run(&all)
    };

    // Events, from before the first change.
    let mut watch = Killed(
        Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["ctl", "--lattice", "it", "--nats", &url, "watch", "--json"])
            .env("WEFT_HOME", weft.home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, events) = mpsc::channel::<String>();
    let stdout = watch.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert!(
        events
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .starts_with("watching")
    );

    let inventory: serde_json::Value =
        serde_json::from_str(&ctl(&["inventory", "--json"]).ok()).unwrap();
    let hosts = inventory.as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{inventory}");
    assert!(
        hosts
            .iter()
            .any(|h| h["host_id"] == b_id.as_str() && h["labels"]["zone"] == "b")
    );

    // Sign rev 1 and a rev 2 padded past NATS's 1 MiB max payload.
    let v1 = weft.path("kvcounter-1.wasm");
    weft.sign_kvcounter(&unsigned_actor("kvcounter"), &v1, "1");
    let big = weft.path("kvcounter-big.wasm");
    std::fs::write(
        &big,
        padded(
            &std::fs::read(unsigned_actor("kvcounter")).unwrap(),
            1_500_000,
        ),
    )
    .unwrap();
    let v2 = weft.path("kvcounter-2.wasm");
    weft.sign_kvcounter(&big, &v2, "2");
    assert!(std::fs::metadata(&v2).unwrap().len() > 1 << 20);

    let started = ctl(&["start", "actor", v1.to_str().unwrap(), "--host", &a_id]).ok();
    assert!(started.contains("actor kvcounter M"), "{started}");
    ctl(&[
        "start",
        "provider",
        "keyvalue-memory",
        "--id",
        "kv",
        "--host",
        &a_id,
    ])
    .ok();
    ctl(&[
        "start",
        "provider",
        "http-server",
        "--id",
        "http",
        "--host",
        &b_id,
    ])
    .ok();
    let address = format!("127.0.0.1:{}", weft_testing::free_port().unwrap());
    ctl(&["link", "put", "kvcounter", "wasmcloud:keyvalue", "kv"]).ok();
    let value = format!("address={address}");
    let put_http_link = || {
        ctl(&[
            "link",
            "put",
            "kvcounter",
            "wasmcloud:httpserver",
            "http",
            "--value",
            &value,
        ])
        .ok()
    };
    let linked = put_http_link();
    assert_eq!(linked.matches("linked").count(), 2, "{linked}");
    // Idempotent: the same link again changes nothing on either host.
    let again = put_http_link();
    assert_eq!(again.matches("unchanged").count(), 2, "{again}");

    // HTTP on host B's provider → the actor on host A → key-value on host A.
    assert_eq!(
        get(&address, "/counter/c").1,
        r#"{"counter":"c","count":1}"#
    );
    let listed = ctl(&["link", "list"]).ok();
    assert!(
        listed.contains("wasmcloud:httpserver") && listed.contains("wasmcloud:keyvalue"),
        "{listed}"
    );
    // One actor's links: a header and its two links.
    let got = ctl(&["link", "get", "kvcounter"]).ok();
    assert_eq!(got.lines().count(), 3, "{got}");
    // A host that joins now adopts the lattice's links, and has both.
    let c = bare_host(&weft, &host_args);
    assert!(
        c.startup
            .iter()
            .any(|l| l == "links     2 adopted from the lattice's other hosts"),
        "{:?}",
        c.startup
    );
    let inventory: serde_json::Value =
        serde_json::from_str(&ctl(&["inventory", "--json"]).ok()).unwrap();
    let c_links = inventory
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host_id"] == host_id(&c).as_str())
        .map(|h| h["links"].as_array().unwrap().len());
    assert_eq!(c_links, Some(2), "{inventory}");
    drop(c);
    let unknown = ctl(&["link", "get", "nosuch"]).fails();
    assert!(
        unknown.contains("no host of the lattice runs an actor named or keyed \"nosuch\""),
        "{unknown}"
    );

    // Lattice-wide update with a module over 1 MiB; the count goes on.
    let updated = ctl(&["update", "actor", "kvcounter", v2.to_str().unwrap()]).ok();
    assert!(updated.contains("revision 2"), "{updated}");
    assert_eq!(
        get(&address, "/counter/c").1,
        r#"{"counter":"c","count":2}"#
    );
    // A lower revision is refused, naming why, and the running one keeps serving.
    let refused = ctl(&["update", "actor", "kvcounter", v1.to_str().unwrap()]).fails();
    assert!(refused.contains("1 of 1 host(s) failed"), "{refused}");
    assert_eq!(
        get(&address, "/counter/c").1,
        r#"{"counter":"c","count":3}"#
    );

    // A host that is gone is reported, not waited on.
    let unknown = ctl(&["stop", "actor", "kvcounter", "--host", "NOSUCHHOST"]).fails();
    assert!(unknown.contains("no host NOSUCHHOST answered"), "{unknown}");

    ctl(&["stop", "actor", "kvcounter"]).ok();
    let (status, body) = get(&address, "/counter/c");
    assert!(status >= 500, "{status} {body}");
    let gone = ctl(&["stop", "actor", "kvcounter"]).fails();
    assert!(
        gone.contains("no host of the lattice runs an actor named or keyed \"kvcounter\""),
        "{gone}"
    );

    // What the watcher saw, in order, including heartbeats from both hosts.
    let mut kinds = Vec::new();
    let mut beating = std::collections::BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(10);
    let both = |beating: &std::collections::BTreeSet<String>| {
        beating.contains(&a_id) && beating.contains(&b_id)
    };
    while (kinds.last().map(String::as_str) != Some("actor_stopped") || !both(&beating))
        && Instant::now() < until
    {
        let Ok(line) = events.recv_timeout(Duration::from_secs(2)) else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        let kind = event["kind"].as_str().unwrap().to_string();
        if kind == "host_heartbeat" {
            beating.insert(event["host_id"].as_str().unwrap().to_string());
        } else if kind.ends_with("healthy") {
            // Health changes come with the rounds of checks, at times of their own
            // (tests/all/health.rs follows them).
        } else {
            kinds.push(kind);
        }
    }
    drop(watch);
    assert!(both(&beating), "{beating:?}");
    assert_eq!(
        kinds,
        [
            "actor_started",
            "provider_started",
            "provider_started",
            "link_put",
            "link_put",
            "link_put",
            "link_put",
            "host_started",
            "actor_updated",
            "change_refused",
            "actor_stopped"
        ],
    );

    // The audit trail: every change each host was asked for, who signed it, how it ended.
    let trail: serde_json::Value = serde_json::from_str(&ctl(&["audit", "--json"]).ok()).unwrap();
    let entries = trail.as_array().unwrap();
    let of = |action: &str| -> Vec<&serde_json::Value> {
        entries.iter().filter(|e| e["action"] == action).collect()
    };
    assert_eq!(of("start_actor").len(), 1, "{trail}");
    assert_eq!(
        of("put_link").len(),
        6,
        "three puts on each of two hosts: {trail}"
    );
    let updates = of("update_actor");
    assert_eq!(updates.len(), 2, "{trail}");
    assert_eq!(
        (updates[0]["ok"].as_bool(), updates[1]["ok"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(
        updates[1]["result"].as_str().unwrap().contains("revision"),
        "the refusal says why: {}",
        updates[1]
    );
    let signer = entries[0]["by"].as_str().unwrap();
    assert!(
        signer.starts_with('O') && entries.iter().all(|e| e["by"] == signer),
        "{trail}"
    );
    assert!(
        entries
            .windows(2)
            .all(|w| w[0]["at_unix_ms"].as_u64() <= w[1]["at_unix_ms"].as_u64()),
        "oldest first"
    );
    assert!(
        !trail.to_string().contains("127.0.0.1:0"),
        "link values are not recorded: {trail}"
    );
    let table = ctl(&["audit"]).ok();
    assert!(
        table.contains("REFUSED") && table.contains("update_actor"),
        "{table}"
    );
}

/// An HTTP/1.1 client that keeps its connection open between requests, as browsers and
/// proxies do, and opens a new one only after the server answers `Connection: close`. Any
/// error (a reset, a connection closed under a request) is returned, never retried.
pub(crate) struct KeepAlive {
    address: String,
    connection: Option<BufReader<TcpStream>>,
}

impl KeepAlive {
    pub(crate) fn new(address: &str) -> Self {
        KeepAlive {
            address: address.to_string(),
            connection: None,
        }
    }

    pub(crate) fn get(&mut self, path: &str) -> Result<(u16, String), String> {
        let result = self.try_get(path);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn try_get(&mut self, path: &str) -> Result<(u16, String), String> {
        if self.connection.is_none() {
            let stream = TcpStream::connect(&self.address).map_err(|e| format!("connect: {e}"))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            self.connection = Some(BufReader::new(stream));
        }
        let connection = self.connection.as_mut().unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.address);
        connection
            .get_mut()
            .write_all(head.as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut status_line = String::new();
        match connection.read_line(&mut status_line) {
            Ok(0) => return Err("the server closed the connection under a request".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {status_line:?}"))?;
        let (mut length, mut close) = (0, false);
        loop {
            let mut line = String::new();
            connection
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().map_err(|_| line.to_string())?,
                "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        connection
            .read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
        if close {
            self.connection = None;
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Issue 6's acceptance test: the kvcounter app deployed with `weft ctl apply` on two hosts
/// (HTTP on one, Redis key-value on the other, the actor on both), 8 keep-alive HTTP clients
/// for at least 20 s while the actor is updated 50+ times and the key-value provider replaced
/// 5+ times (and the HTTP provider twice) through `weft ctl`: no request fails, and the Redis
/// counter equals the number of successful increments.
#[test]
fn lattice_wide_swaps_under_load_fail_no_request_and_lose_no_increment() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let url = nats.url();
    let host = |zone: &str| {
        let label = format!("zone={zone}");
        bare_host(
            &weft,
            &["--lattice", "swap", "--nats", &url, "--label", &label],
        )
    };
    let (a, b) = (host("a"), host("b"));
    let ctl = |args: &[&str]| {
        let mut all = vec![
            "ctl",
            "--lattice",
            "swap",
            "--nats",
            &url,
            "--wait-ms",
            "300",
        ];
        all.extend_from_slice(args);
        weft.run(&all)
    };

    // Revision 1 to deploy; two different modules of revision 2 to swap between.
    let unsigned = std::fs::read(unsigned_actor("kvcounter")).unwrap();
    let sign = |name: &str, module: &[u8], rev: &str| {
        let input = weft.path(&format!("{name}-unsigned.wasm"));
        std::fs::write(&input, module).unwrap();
        let output = weft.path(&format!("{name}.wasm"));
        weft.sign_kvcounter(&input, &output, rev);
        output
    };
    let v1 = sign("v1", &unsigned, "1");
    let versions = [
        sign("v2a", &padded(&unsigned, 16), "2"),
        sign("v2b", &padded(&unsigned, 32), "2"),
    ];
    let address = format!("127.0.0.1:{}", weft_testing::free_port().unwrap());
    let app = weft.path("app.toml");
    std::fs::write(
        &app,
        format!(
            r#"
[[actors]]
path = "{v1}"
instances = 24

[[providers]]
id = "http"
kind = "http-server"
on = {{ zone = "b" }}

[[providers]]
id = "kv"
kind = "keyvalue-redis"
on = {{ zone = "a" }}

[[links]]
actor = "kvcounter"
contract = "wasmcloud:httpserver"
provider = "http"
values = {{ address = "{address}" }}

[[links]]
actor = "kvcounter"
contract = "wasmcloud:keyvalue"
provider = "kv"
values = {{ url = "{redis}" }}
"#,
            v1 = v1.display(),
            redis = redis.url()
        ),
    )
    .unwrap();

    // Deployed once; applied again, nothing changes.
    let run = ctl(&["apply", app.to_str().unwrap()]);
    let applied = run.ok();
    assert_eq!(applied.matches("started").count(), 4, "{applied}");
    // Progress on stderr, a line per step as it ends; the result alone on stdout.
    let progress = run.stderr();
    assert!(progress.starts_with("apply [0 done, "), "{progress}");
    assert_eq!(progress.matches(": started").count(), 4, "{progress}");
    assert!(!applied.contains("apply ["), "{applied}");
    assert_eq!(applied.matches("linked").count(), 4, "{applied}");
    let again = ctl(&["apply", app.to_str().unwrap()]).ok();
    assert_eq!(again.matches("unchanged").count(), 8, "{again}");
    let inventory: serde_json::Value =
        serde_json::from_str(&ctl(&["inventory", "--json"]).ok()).unwrap();
    let zone_of = |provider: &str| {
        inventory
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["providers"][0]["id"] == provider)
            .map(|h| h["labels"]["zone"].clone())
    };
    assert_eq!(zone_of("http"), Some("b".into()), "{inventory}");
    assert_eq!(zone_of("kv"), Some("a".into()), "{inventory}");
    assert_eq!(
        KeepAlive::new(&address).get("/counter/load").unwrap(),
        (200, r#"{"counter":"load","count":1}"#.into())
    );

    let load = HttpLoad::start(8, || {
        let mut client = KeepAlive::new(&address);
        move || client.get("/counter/load")
    });

    let started = Instant::now();
    let (mut actor_updates, mut kv_swaps, mut http_swaps) = (0, 0, 0);
    while actor_updates < 50 || kv_swaps < 5 || started.elapsed() < Duration::from_secs(20) {
        let module = &versions[actor_updates % 2];
        let updated = ctl(&["update", "actor", "kvcounter", module.to_str().unwrap()]).ok();
        assert_eq!(updated.matches("revision 2").count(), 2, "{updated}");
        actor_updates += 1;
        if actor_updates % 8 == 0 {
            let replaced = ctl(&["update", "provider", "kv"]).ok();
            assert!(
                replaced.contains("provider kv (keyvalue-redis)"),
                "{replaced}"
            );
            kv_swaps += 1;
        }
        if actor_updates % 25 == 0 {
            ctl(&["update", "provider", "http"]).ok();
            http_swaps += 1;
        }
    }
    let elapsed = started.elapsed();
    let (ok, failures) = load.finish();
    eprintln!(
        "lattice swap: {elapsed:?}, {actor_updates} actor updates, {kv_swaps} key-value and \
         {http_swaps} HTTP provider replacements, {ok} successful requests, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} requests failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(http_swaps >= 2 && ok > 0);
    // The first request counted 1; every successful one after it, one more.
    assert_eq!(
        redis.get("counter:load").unwrap(),
        Some((ok + 1).to_string()),
        "increments were lost or doubled"
    );
    drop((a, b));
}

/// examples/lattice as its README runs it: two labelled hosts, `weft ctl apply` of the
/// example's manifest (HTTP on the edge host, Redis on the core one, each a process its host
/// supervises), then the actor and both provider processes swapped and the actor scaled, the
/// count going on across all of it.
#[test]
fn lattice_example_deploys_with_apply_and_swaps_as_its_readme_says() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let url = nats.url();
    let host = |zone: &str| {
        let label = format!("zone={zone}");
        bare_host(
            &weft,
            &["--lattice", "demo", "--nats", &url, "--label", &label],
        )
    };
    let (_edge, _core) = (host("edge"), host("core"));
    let address = format!("127.0.0.1:{}", weft_testing::free_port().unwrap());
    let redis_url = redis.url();
    let ctl = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["ctl", "--lattice", "demo", "--nats", &url])
            .args(args)
            .env("WEFT_HOME", weft.home.path())
            .env("KVCOUNTER_ADDRESS", &address)
            .env("REDIS_URL", &redis_url)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "weft ctl {args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    // The example's manifest, with the actor signed by this test's key store (the shared
    // target/actors/kvcounter.wasm is signed by whichever test built it last), so the test
    // can sign the next revision with the same module key, as the README's user does.
    let v1 = weft.path("kvcounter.wasm");
    weft.sign_kvcounter(&unsigned_actor("kvcounter"), &v1, "1");
    let app = weft.path("app.toml");
    let example_app = std::fs::read_to_string(example("lattice")).unwrap();
    assert!(example_app.contains("../../target/actors/kvcounter.wasm"));
    std::fs::write(
        &app,
        example_app.replace("../../target/actors/kvcounter.wasm", v1.to_str().unwrap()),
    )
    .unwrap();
    let applied = ctl(&["apply", app.to_str().unwrap()]);
    assert_eq!(applied.matches("started").count(), 4, "{applied}");
    let again = ctl(&["apply", app.to_str().unwrap()]);
    assert_eq!(again.matches("unchanged").count(), 8, "{again}");
    let count = || get(&address, "/counter/a").1;
    assert_eq!(count(), r#"{"counter":"a","count":1}"#);

    // Re-signed as the README does (`weft claims sign … --rev 2`, the same key store).
    let rev2 = weft.path("kvcounter-rev2.wasm");
    weft.sign_kvcounter(&v1, &rev2, "2");
    let updated = ctl(&["update", "actor", "kvcounter", rev2.to_str().unwrap()]);
    assert_eq!(updated.matches("revision 2").count(), 2, "{updated}");
    ctl(&["update", "provider", "redis"]);
    ctl(&["update", "provider", "http"]);
    let scaled = ctl(&["scale", "kvcounter", "48"]);
    assert_eq!(scaled.lines().count(), 2, "{scaled}");
    let inventory = ctl(&["inventory"]);
    assert_eq!(inventory.matches("rev 2 max 48").count(), 2, "{inventory}");
    // Both providers are processes their hosts supervise, replaced (not restarted).
    assert_eq!(inventory.matches("0 restart(s)").count(), 2, "{inventory}");
    assert_eq!(count(), r#"{"counter":"a","count":2}"#);
    assert_eq!(redis.get("counter:a").unwrap().as_deref(), Some("2"));

    // What apply cannot place is refused before anything changes, saying why.
    let refuse = |manifest: &str, expected: &str| {
        let bad = weft.path("bad.toml");
        std::fs::write(&bad, manifest).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(["ctl", "--lattice", "demo", "--nats", &url, "apply"])
            .arg(&bad)
            .env("WEFT_HOME", weft.home.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(expected),
            "{stderr}"
        );
    };
    refuse(
        "[[providers]]\nid = \"kv2\"\nkind = \"keyvalue-memory\"\non = { zone = \"mars\" }\n",
        "no host has the labels {\"zone\": \"mars\"} for provider kv2",
    );
    let inventory = ctl(&["inventory"]);
    assert!(!inventory.contains("kv2"), "{inventory}");
}

/// A lattice with no host: `weft ctl` says so (NATS's "no responders" on the inventory's
/// inbox is not taken for a host's answer).
#[test]
fn weft_ctl_on_a_lattice_with_no_host_says_so() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--lattice", "empty", "--nats", &url];
        all.extend_from_slice(args);
        weft.run(&all)
    };
    for args in [&["inventory"][..], &["link", "put", "a", "b", "c"]] {
        let refused = ctl(args).fails();
        assert!(
            refused.contains("no host answered on the lattice; start one with `weft host`"),
            "{args:?}: {refused}"
        );
    }
}

/// A host on a lattice runs only the issuers it is told to trust: without `--issuer-allow`
/// (or `--trust-any-issuer`) it does not start; with it, an actor of another issuer sent by
/// the operator is refused, and one of the allowed issuer runs.
#[test]
fn a_lattice_host_runs_only_the_issuers_it_allows() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let refused = weft
        .run(&["host", "--lattice", "issuers", "--nats", &url])
        .fails();
    assert!(
        refused.contains("--issuer-allow") && refused.contains("--trust-any-issuer"),
        "{refused}"
    );

    let kvcounter = signed_actor("kvcounter");
    let issuer = wascap::verify_module(
        &std::fs::read(&kvcounter).unwrap(),
        &wascap::VerifyOptions::new(),
    )
    .unwrap()
    .into_inner()
    .issuer;
    let empty = weft.path("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let host = Up::start_command(
        &weft,
        "host",
        &empty,
        &[
            "--lattice",
            "issuers",
            "--nats",
            &url,
            "--issuer-allow",
            &issuer,
        ],
        &[],
    );
    assert!(
        host.startup
            .iter()
            .any(|l| l.contains(&format!("issuers   {issuer}"))),
        "{:?}",
        host.startup
    );
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--lattice", "issuers", "--nats", &url];
        all.extend_from_slice(args);
        weft.run(&all)
    };
    let echo = signed_actor("echo");
    let other = ctl(&["start", "actor", echo.to_str().unwrap()]);
    assert!(!other.output.status.success());
    assert!(
        other.stdout().contains("issuer") || other.stderr().contains("issuer"),
        "{}{}",
        other.stdout(),
        other.stderr()
    );
    let allowed = ctl(&["start", "actor", kvcounter.to_str().unwrap()]);
    assert!(
        allowed.output.status.success() && allowed.stdout().contains("actor kvcounter"),
        "{}{}",
        allowed.stdout(),
        allowed.stderr()
    );

    // Its code is now held by the host, which checks another module claiming that code's hash
    // by comparing bytes: the allowed issuer's kvcounter with one byte of its code changed is
    // refused as changed after signing, and the running one keeps its place.
    let mut changed = std::fs::read(&kvcounter).unwrap();
    let at = changed
        .windows(7)
        .position(|w| w == b"counter")
        .expect("kvcounter's code names its counter");
    changed[at] ^= 0x20;
    let tampered = weft.path("tampered-kvcounter.wasm");
    std::fs::write(&tampered, &changed).unwrap();
    let refused = ctl(&["start", "actor", tampered.to_str().unwrap()]);
    let said = format!("{}{}", refused.stdout(), refused.stderr());
    assert!(
        !refused.output.status.success() && said.contains("changed after signing"),
        "{said}"
    );
    let inventory = ctl(&["inventory"]).ok();
    assert!(inventory.contains("kvcounter"), "{inventory}");
}

/// `weft ctl update provider` on the in-memory key-value provider of `weft up` keeps the data
/// (it used to answer 0 and start the counter again from 1).
#[test]
fn replacing_the_in_memory_store_keeps_the_count() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let app = kvcounter_example(&weft, &signed_actor("kvcounter"), false);
    let up = Up::start_command(
        &weft,
        "up",
        &app,
        &["--lattice", "mem", "--nats", &url, "--trust-any-issuer"],
        &[],
    );
    for n in 1..=5 {
        assert_eq!(
            get(&up.serving, "/counter/kept").1,
            format!(r#"{{"counter":"kept","count":{n}}}"#)
        );
    }
    let replaced = weft
        .run(&[
            "ctl",
            "--lattice",
            "mem",
            "--nats",
            &url,
            "update",
            "provider",
            "kv",
        ])
        .ok();
    assert!(
        replaced.contains("provider kv (keyvalue-memory)"),
        "{replaced}"
    );
    assert_eq!(
        get(&up.serving, "/counter/kept").1,
        r#"{"counter":"kept","count":6}"#,
        "the replacement started empty"
    );
}

/// `weft ctl start provider --process`: the host starts the provider as a child it
/// supervises; the inventory shows its pid, uptime and restarts; killed, it is restarted;
/// `weft ctl stop provider` ends it.
#[test]
fn ctl_starts_supervises_and_stops_a_provider_process() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let _host = bare_host(&weft, &["--lattice", "proc", "--nats", &url]);
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--lattice", "proc", "--nats", &url];
        all.extend_from_slice(args);
        weft.run(&all)
    };
    let started = ctl(&[
        "start",
        "provider",
        "keyvalue-memory",
        "--id",
        "kv",
        "--process",
    ])
    .ok();
    assert!(
        started.contains("provider kv (keyvalue-memory)"),
        "{started}"
    );
    let provider = || {
        let inventory: serde_json::Value =
            serde_json::from_str(&ctl(&["inventory", "--json"]).ok()).unwrap();
        inventory[0]["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "kv")
            .cloned()
    };
    let first = provider().expect("no provider kv in the inventory");
    assert_eq!(first["process"], true, "{first}");
    assert_eq!(first["restarts"], 0, "{first}");
    let pid = first["pid"].as_u64().expect("no pid") as u32;
    let table = ctl(&["inventory"]).ok();
    assert!(
        table.contains(&format!("process {pid}, up")) && table.contains("0 restart(s)"),
        "{table}"
    );

    assert!(
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let restarted = loop {
        let now = provider().unwrap();
        if now["restarts"] == 1 && now["pid"].as_u64().is_some() {
            break now;
        }
        assert!(Instant::now() < deadline, "not restarted: {now}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let second = restarted["pid"].as_u64().unwrap() as u32;
    assert_ne!(second, pid);

    // A new process would start empty: the replacement is refused, naming why.
    let refused = ctl(&["update", "provider", "kv"]).refused();
    assert!(
        refused.contains("keeps its data in its process's memory"),
        "{refused}"
    );
    assert_eq!(provider().unwrap()["pid"].as_u64(), Some(u64::from(second)));

    let stopped = ctl(&["stop", "provider", "kv"]).ok();
    assert!(stopped.contains("done"), "{stopped}");
    assert!(provider().is_none(), "still in the inventory after stop");
    let gone = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{second}")).exists() {
        assert!(
            Instant::now() < gone,
            "the provider process {second} is still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `weft ctl` prints its result on stdout and, unless asked with `-v`, nothing else: not the
/// NATS client's connection notices (regression: they were mixed into its output).
#[test]
fn weft_ctl_prints_its_result_and_client_notices_only_with_v() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let host = bare_host(&weft, &["--lattice", "it", "--nats", &url]);
    let id = host_id(&host);
    let quiet = weft.run(&["ctl", "--lattice", "it", "--nats", &url, "inventory"]);
    assert!(quiet.ok().contains(&id));
    assert_eq!(quiet.stderr(), "", "log lines on a quiet command");
    let told = weft.run(&["ctl", "-v", "--lattice", "it", "--nats", &url, "inventory"]);
    assert!(told.ok().contains(&id));
    assert!(
        told.stderr().contains("INFO") && !told.stdout().contains("INFO"),
        "-v shows notices, on stderr only: {}",
        told.stderr()
    );
}
