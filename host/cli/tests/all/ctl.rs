//! `weft ctl` against two `weft host` processes started with no app, on a real `nats-server`:
//! deploy, link, call, update (a module over NATS's 1 MiB max payload), stop, inventory and
//! events.

use crate::up::{Up, get};
use crate::{Weft, unsigned_actor};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wasm_encoder::Section;
use weft_testing::NatsServer;

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
    let empty = weft.path("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let host_args = ["--lattice", "it", "--nats", &url, "--heartbeat-secs", "1"];
    let a = Up::start_command(&weft, "host", &empty, &host_args, &[]);
    let b = Up::start_command(
        &weft,
        "host",
        &empty,
        &[&host_args[..], &["--label", "zone=b"]].concat(),
        &[],
    );
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
    let linked = ctl(&[
        "link",
        "put",
        "kvcounter",
        "wasmcloud:httpserver",
        "http",
        "--value",
        &value,
    ])
    .ok();
    assert_eq!(linked.matches("linked").count(), 2, "{linked}");
    // Idempotent: the same link again changes nothing on either host.
    let again = ctl(&[
        "link",
        "put",
        "kvcounter",
        "wasmcloud:httpserver",
        "http",
        "--value",
        &value,
    ])
    .ok();
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
    while (kinds.last().map(String::as_str) != Some("actor_stopped") || beating.len() < 2)
        && Instant::now() < until
    {
        let Ok(line) = events.recv_timeout(Duration::from_secs(2)) else {
            continue;
        };
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        let kind = event["kind"].as_str().unwrap().to_string();
        if kind == "host_heartbeat" {
            beating.insert(event["host_id"].as_str().unwrap().to_string());
        } else {
            kinds.push(kind);
        }
    }
    drop(watch);
    assert_eq!(beating.len(), 2, "{beating:?}");
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
            "actor_updated",
            "actor_stopped"
        ],
    );
}
