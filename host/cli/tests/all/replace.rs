//! Provider processes replaced live over NATS (#16): a host's supervised children
//! (`process = true`) and processes started by hand (`weft provider run`), replaced with
//! `weft ctl update provider` under 8 keep-alive HTTP clients. No request fails, Redis holds
//! exactly the acknowledged increments, the HTTP port never closes, and the old process is
//! gone afterwards.

use crate::ctl::{KeepAlive, bare_host};
use crate::lattice::{ProviderProcess, lattice_app_of};
use crate::up::Up;
use crate::{HttpLoad, Weft, signed_actor};
use std::time::{Duration, Instant};
use weft_testing::{NatsServer, RedisServer};

/// Whether process `pid` is gone (a supervised child is reaped by its host).
fn gone_within(pid: u64, within: Duration) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The kvcounter app on two hosts, HTTP (zone b) and Redis key-value (zone a) each a
/// process its host supervises; 5 replacements of the Redis provider process and 3 of the
/// HTTP one, for at least 20 s of load.
#[test]
fn supervised_provider_processes_are_replaced_under_load_losing_nothing() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let url = nats.url();
    let host = |zone: &str| {
        let label = format!("zone={zone}");
        bare_host(
            &weft,
            &["--lattice", "it", "--nats", &url, "--label", &label],
        )
    };
    let (_a, _b) = (host("a"), host("b"));
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--lattice", "it", "--nats", &url, "--wait-ms", "300"];
        all.extend_from_slice(args);
        weft.run(&all)
    };
    let address = format!("127.0.0.1:{}", weft_testing::free_port().unwrap());
    let app = weft.path("app.toml");
    std::fs::write(
        &app,
        format!(
            r#"
[[actors]]
path = "{actor}"
instances = 16

[[providers]]
id = "http"
kind = "http-server"
process = true
on = {{ zone = "b" }}

[[providers]]
id = "kv"
kind = "keyvalue-redis"
process = true
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
            actor = signed_actor("kvcounter").display(),
            redis = redis.url()
        ),
    )
    .unwrap();
    let applied = ctl(&["apply", app.to_str().unwrap()]).ok();
    assert_eq!(applied.matches("started").count(), 4, "{applied}");
    let pid_of = |id: &str| {
        let inventory: serde_json::Value =
            serde_json::from_str(&ctl(&["inventory", "--json"]).ok()).unwrap();
        inventory
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|host| host["providers"].as_array().unwrap().iter())
            .find(|p| p["id"] == id)
            .and_then(|p| p["pid"].as_u64())
            .unwrap_or_else(|| panic!("no process of {id} in {inventory}"))
    };
    assert_eq!(
        KeepAlive::new(&address).get("/counter/load").unwrap(),
        (200, r#"{"counter":"load","count":1}"#.into())
    );

    let load = HttpLoad::start(8, || {
        let mut client = KeepAlive::new(&address);
        move || client.get("/counter/load")
    });
    let started = Instant::now();
    let (mut kv_swaps, mut http_swaps) = (0, 0);
    let mut took = Vec::new();
    while kv_swaps < 5 || http_swaps < 3 || started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1500));
        let (id, swaps) = if kv_swaps <= http_swaps * 2 {
            ("kv", &mut kv_swaps)
        } else {
            ("http", &mut http_swaps)
        };
        let old = pid_of(id);
        let updating = Instant::now();
        let replaced = ctl(&["update", "provider", id]).ok();
        took.push(updating.elapsed());
        assert!(replaced.contains(&format!("provider {id}")), "{replaced}");
        assert!(
            gone_within(old, Duration::from_secs(10)),
            "the old {id} process {old} is still running"
        );
        assert_ne!(pid_of(id), old, "{id} was not replaced");
        *swaps += 1;
    }
    let elapsed = started.elapsed();
    let (ok, failures) = load.finish();
    took.sort_unstable();
    eprintln!(
        "provider processes: {elapsed:?}, {kv_swaps} key-value and {http_swaps} HTTP \
         replacements (update to old process gone: median {:?}, longest {:?}), {ok} \
         successful requests, {} failed",
        took[took.len() / 2],
        took[took.len() - 1],
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} requests failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(ok > 0);
    assert_eq!(
        redis.get("counter:load").unwrap(),
        Some((ok + 1).to_string()),
        "increments were lost or doubled"
    );

    // A replacement that cannot start changes nothing: the old process keeps serving.
    let http = pid_of("http");
    let refused = ctl(&[
        "update",
        "provider",
        "http",
        "--config",
        "max_connections=lots",
    ])
    .refused();
    assert!(refused.contains("max_connections"), "{refused}");
    assert_eq!(pid_of("http"), http);
    let (status, _) = KeepAlive::new(&address).get("/counter/load").unwrap();
    assert_eq!(status, 200);
}

/// Processes started by hand (`weft provider run`): `weft ctl update provider` moves the
/// lattice's calls to the newest process of the id and tells the older one to leave, under
/// load, twice; with one process only, it says to start the replacement first.
#[test]
fn a_provider_process_run_by_hand_hands_over_to_the_one_started_after_it() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let url = nats.url();
    let mut old = ProviderProcess::start(&weft, "keyvalue-redis", "redis", &nats);
    let app = lattice_app_of(&weft, &signed_actor("kvcounter"), &redis);
    let host = Up::start_command(
        &weft,
        "host",
        &app,
        &["--lattice", "it", "--nats", &url, "--trust-any-issuer"],
        &[],
    );
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--lattice", "it", "--nats", &url, "--wait-ms", "300"];
        all.extend_from_slice(args);
        weft.run(&all)
    };
    let (status, body) = KeepAlive::new(&host.serving)
        .get("/counter/lattice")
        .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"counter":"lattice","count":1}"#)
    );
    let alone = ctl(&["update", "provider", "redis"]).refused();
    assert!(alone.contains("start its replacement first"), "{alone}");

    let serving = host.serving.clone();
    let load = HttpLoad::start(8, || {
        let mut client = KeepAlive::new(&serving);
        move || client.get("/counter/lattice")
    });
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(1));
        let new = ProviderProcess::start(&weft, "keyvalue-redis", "redis", &nats);
        let replaced = ctl(&["update", "provider", "redis"]).ok();
        assert!(replaced.contains("provider redis"), "{replaced}");
        assert!(
            old.exits_within(Duration::from_secs(10)),
            "the old process did not leave"
        );
        old = new;
    }
    std::thread::sleep(Duration::from_secs(1));
    let (ok, failures) = load.finish();
    assert!(
        failures.is_empty(),
        "{} requests failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(
        redis.get("counter:lattice").unwrap(),
        Some((ok + 1).to_string()),
        "increments were lost or doubled"
    );
    let settings = ctl(&["update", "provider", "redis", "--config", "url=redis://x"]).refused();
    assert!(settings.contains("its settings are its own"), "{settings}");
}
