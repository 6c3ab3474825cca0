//! `weft up` on the kvcounter example, as a user runs it: serve, count, relink at runtime,
//! refuse what it must refuse, stop on Ctrl-C.

use crate::{HttpLoad, Weft, signed_actor, unsigned_actor};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) fn example(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .join("app.toml")
}

/// The kvcounter example app as a test runs it: the actor at `actor`, listening on a free
/// port; with `memory_process`, its in-memory store runs as a supervised child process.
pub(crate) fn kvcounter_example(
    weft: &Weft,
    actor: &std::path::Path,
    memory_process: bool,
) -> std::path::PathBuf {
    let mut app = std::fs::read_to_string(example("kvcounter"))
        .unwrap()
        .replace(
            "../../target/actors/kvcounter.wasm",
            actor.to_str().unwrap(),
        )
        .replace("${KVCOUNTER_ADDRESS:-127.0.0.1:8080}", "127.0.0.1:0");
    if memory_process {
        app = app.replace(
            "kind = \"keyvalue-memory\"",
            "kind = \"keyvalue-memory\"\nprocess = true",
        );
    }
    static WRITTEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let manifest = weft.path(&format!("kvcounter-app-{n}.toml"));
    std::fs::write(&manifest, app).unwrap();
    manifest
}

/// A running `weft up` (or `weft host`), killed on drop.
pub(crate) struct Up {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub(crate) serving: String,
    pub(crate) control: String,
    /// Where it serves health probes, if it was asked to (`--health`).
    pub(crate) health: String,
    /// What it printed up to "Weft is up".
    pub(crate) startup: Vec<String>,
}

impl Up {
    pub(crate) fn start(weft: &Weft, manifest: &std::path::Path, env: &[(&str, &str)]) -> Up {
        Self::start_with(weft, manifest, &[], env)
    }

    pub(crate) fn start_with(
        weft: &Weft,
        manifest: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Up {
        Self::start_command(weft, "up", manifest, args, env)
    }

    /// `weft SUBCOMMAND MANIFEST ARGS…`, once it says it is up.
    pub(crate) fn start_command(
        weft: &Weft,
        subcommand: &str,
        manifest: &std::path::Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Up {
        // Each its own control socket (the default one would be shared by every host here).
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = weft.path(&format!("run/control-{n}.sock"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
        command
            .args([
                subcommand,
                manifest.to_str().unwrap(),
                "--control",
                socket.to_str().unwrap(),
            ])
            .args(args)
            .env("WEFT_HOME", weft.home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut serving, mut control, mut health) = (String::new(), String::new(), String::new());
        let mut startup = Vec::new();
        // `--build` compiles the actors first: in a fresh clone, with `-p` selecting other
        // features than the test command's full build, that is a release build of their
        // dependencies, which takes minutes while other tests load both cores.
        let within = if args.contains(&"--build") {
            Duration::from_secs(300)
        } else {
            Duration::from_secs(30)
        };
        loop {
            let line = lines.recv_timeout(within).expect("weft up did not come up");
            startup.push(line.clone());
            if let Some(rest) = line.strip_prefix("serving   http://") {
                serving = rest.split('/').next().unwrap().to_string();
            }
            if let Some(rest) = line.strip_prefix("control   ") {
                control = rest.split(' ').next().unwrap().to_string();
            }
            if let Some(rest) = line.strip_prefix("health    http://") {
                health = rest.split('/').next().unwrap().to_string();
            }
            if line == "Weft is up. Ctrl-C stops it." {
                break;
            }
        }
        Up {
            child,
            lines,
            serving,
            control,
            health,
            startup,
        }
    }

    /// The process id of the running `weft`.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line of output that `matches`, and returns it.
    pub(crate) fn wait_for(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        self.wait_for_within(what, Duration::from_secs(20), matches)
    }

    /// [`Up::wait_for`], for up to `within`.
    pub(crate) fn wait_for_within(
        &self,
        what: &str,
        within: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if matches(&line) => return line,
                Ok(_) => continue,
                Err(_) => panic!("weft up printed no line {what} within {within:?}"),
            }
        }
    }

    pub(crate) fn interrupt(mut self) -> (i32, Vec<String>) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        let rest: Vec<String> = self.lines.try_iter().collect();
        (code, rest)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; returns status and body.
pub(crate) fn get(address: &str, path: &str) -> (u16, String) {
    request(address, "GET", path, b"")
}

/// A plain HTTP/1.1 request; returns status and body.
pub(crate) fn request(address: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    exchange(address, &[head.as_bytes(), body].concat())
}

/// An app of hello (the module at `actor`) served over HTTP on a free port; its manifest.
pub(crate) fn hello_app(weft: &Weft, actor: &std::path::Path) -> std::path::PathBuf {
    let manifest = weft.path("hello-app.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[actors]]\npath = {:?}\n[[providers]]\nid = \"http\"\nkind = \"http-server\"\n\
             [[links]]\nactor = \"hello\"\ncontract = \"wasmcloud:httpserver\"\nprovider = \"http\"\n\
             values = {{ address = \"127.0.0.1:0\" }}\n",
            actor.to_str().unwrap()
        ),
    )
    .unwrap();
    manifest
}

/// Sends `message` (a whole HTTP/1.1 request, `Connection: close`) to `address` as written;
/// the status (0 when none came back) and the body of the answer.
pub(crate) fn exchange(address: &str, message: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(message).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn kvcounter_example_counts_relinks_at_runtime_and_stops_on_ctrl_c() {
    signed_actor("kvcounter"); // built and signed by the test command
    let weft = Weft::new();
    let up = Up::start(
        &weft,
        &example("kvcounter"),
        &[("KVCOUNTER_ADDRESS", "127.0.0.1:0")],
    );

    assert_eq!(
        get(&up.serving, "/counter/alpha"),
        (200, r#"{"counter":"alpha","count":1}"#.into())
    );
    assert_eq!(
        get(&up.serving, "/counter/alpha"),
        (200, r#"{"counter":"alpha","count":2}"#.into())
    );
    assert_eq!(
        get(&up.serving, "/counter/beta").1,
        r#"{"counter":"beta","count":1}"#
    );
    assert_eq!(get(&up.serving, "/counter/no%20way").0, 400);
    assert_eq!(get(&up.serving, "/elsewhere").0, 404);

    let control = ["--control", up.control.as_str()];
    let listed = weft
        .run(&[&["link", "list", "--json"][..], &control].concat())
        .ok();
    assert!(
        listed.contains("wasmcloud:keyvalue") && listed.contains("wasmcloud:httpserver"),
        "{listed}"
    );
    let got: serde_json::Value = serde_json::from_str(
        &weft
            .run(&[&["link", "get", "kvcounter", "--json"][..], &control].concat())
            .ok(),
    )
    .unwrap();
    assert_eq!(got.as_array().unwrap().len(), 2, "{got}");
    let unknown = weft
        .run(&[&["link", "get", "nosuch"][..], &control].concat())
        .fails();
    assert!(
        unknown.contains("no running actor is named or keyed"),
        "{unknown}"
    );

    // Delete the key-value link while serving: requests fail, naming the missing link.
    weft.run(
        &[
            &["link", "del", "kvcounter", "wasmcloud:keyvalue"][..],
            &control,
        ]
        .concat(),
    )
    .ok();
    let (status, body) = get(&up.serving, "/counter/alpha");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("has no link for wasmcloud:keyvalue on link 'default'"),
        "{body}"
    );

    // Put it back: the same store, so the count goes on.
    weft.run(
        &[
            &["link", "put", "kvcounter", "wasmcloud:keyvalue", "kv"][..],
            &control,
        ]
        .concat(),
    )
    .ok();
    assert_eq!(
        get(&up.serving, "/counter/alpha").1,
        r#"{"counter":"alpha","count":3}"#
    );

    // A link to a provider that does not exist is refused, and the app serves on.
    let err = weft
        .run(
            &[
                &["link", "put", "kvcounter", "wasmcloud:keyvalue", "nope"][..],
                &control,
            ]
            .concat(),
        )
        .fails();
    assert!(err.contains("no provider nope runs on this host"), "{err}");
    assert_eq!(
        get(&up.serving, "/counter/alpha").1,
        r#"{"counter":"alpha","count":4}"#
    );

    let (code, rest) = up.interrupt();
    assert_eq!(code, 0, "weft up did not exit cleanly: {rest:?}");
    assert_eq!(rest.last().map(String::as_str), Some("stopped"));
}

fn manifest_with_actor(weft: &Weft, actor: &std::path::Path) -> std::path::PathBuf {
    let path = weft.path("app.toml");
    std::fs::write(
        &path,
        format!("[[actors]]\npath = {:?}\n", actor.to_str().unwrap()),
    )
    .unwrap();
    path
}

#[test]
fn up_names_a_missing_actor_file_and_how_to_make_it() {
    let weft = Weft::new();
    let manifest = manifest_with_actor(&weft, &weft.path("nowhere.wasm"));
    let err = weft
        .run(&["up", manifest.to_str().unwrap(), "--control", "127.0.0.1:0"])
        .fails();
    assert!(
        err.contains("nowhere.wasm") && err.contains("build and sign it with `weft build`"),
        "{err}"
    );
}

#[test]
fn up_refuses_an_unsigned_actor_and_says_how_to_sign_it() {
    let weft = Weft::new();
    let manifest = manifest_with_actor(&weft, &unsigned_actor("echo"));
    let err = weft
        .run(&["up", manifest.to_str().unwrap(), "--control", "127.0.0.1:0"])
        .fails();
    assert!(
        err.contains("module is not signed") && err.contains("weft claims sign"),
        "{err}"
    );
}

#[test]
fn up_refuses_a_bad_manifest_with_its_name() {
    let weft = Weft::new();
    let path = weft.path("bad.toml");
    std::fs::write(&path, "[[actors]]\npth = 'x'\n").unwrap();
    let err = weft.run(&["up", path.to_str().unwrap()]).fails();
    assert!(
        err.contains("bad.toml is not a valid app manifest"),
        "{err}"
    );
    let path = weft.path("kind.toml");
    std::fs::write(&path, "[[providers]]\nid = 'x'\nkind = 'carrier-pigeon'\n").unwrap();
    let err = weft
        .run(&["up", path.to_str().unwrap(), "--control", "127.0.0.1:0"])
        .fails();
    assert!(err.contains("kind \"carrier-pigeon\""), "{err}");
}

/// A manifest serving `actor` (built and signed by the test command) over HTTP on a free port
/// with an in-memory store.
fn counter_app(weft: &Weft, actor: &str, http_values: &str) -> std::path::PathBuf {
    counter_app_at(weft, actor, &signed_actor(actor), http_values)
}

/// The same app, with the actor's module at `path`.
fn counter_app_at(
    weft: &Weft,
    actor: &str,
    path: &std::path::Path,
    http_values: &str,
) -> std::path::PathBuf {
    let manifest = weft.path(&format!("{actor}.toml"));
    std::fs::write(
        &manifest,
        format!(
            r#"
[[actors]]
path = {path:?}
[[providers]]
id = "http"
kind = "http-server"
[[providers]]
id = "kv"
kind = "keyvalue-memory"
[[links]]
actor = "{actor}"
contract = "wasmcloud:httpserver"
provider = "http"
values = {{ address = "127.0.0.1:0"{http_values} }}
[[links]]
actor = "{actor}"
contract = "wasmcloud:keyvalue"
provider = "kv"
"#,
            path = path.to_str().unwrap()
        ),
    )
    .unwrap();
    manifest
}

/// The kvcounter written for wasmCloud 0.x with wasmbus-rpc and the published interface crates
/// runs on Weft unmodified and answers as Weft's own kvcounter does.
#[test]
fn wasmcloud_0x_kvcounter_runs_unmodified() {
    let weft = Weft::new();
    let up = Up::start(&weft, &counter_app(&weft, "kvcounter-wasmbus", ""), &[]);
    assert_eq!(
        get(&up.serving, "/counter/alpha"),
        (200, r#"{"counter":"alpha","count":1}"#.into())
    );
    assert_eq!(
        get(&up.serving, "/counter/alpha"),
        (200, r#"{"counter":"alpha","count":2}"#.into())
    );
    assert_eq!(get(&up.serving, "/counter/no%20way").0, 400);
    assert_eq!(get(&up.serving, "/elsewhere").0, 404);
}

#[test]
fn http_body_limit_obeyed_and_enforced() {
    let weft = Weft::new();
    let manifest = counter_app(&weft, "kvcounter", r#", max_body_bytes = "64""#);
    let up = Up::start(&weft, &manifest, &[]);
    let (status, body) = request(&up.serving, "POST", "/counter/c", &[b'x'; 64]);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"counter":"c","count":1}"#)
    );
    let (status, body) = request(&up.serving, "POST", "/counter/c", &[b'x'; 65]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("over the limit of 64 bytes"), "{body}");
    // The refused request never reached the actor: the count goes on from 1.
    assert_eq!(
        get(&up.serving, "/counter/c").1,
        r#"{"counter":"c","count":2}"#
    );
}

/// The README's run command: `weft up --build` builds and signs the example's actors with this
/// user's keys, then serves.
#[test]
fn up_build_builds_signs_and_serves_the_example() {
    let weft = Weft::new();
    let up = Up::start_with(
        &weft,
        &example("kvcounter"),
        &["--build"],
        &[("KVCOUNTER_ADDRESS", "127.0.0.1:0")],
    );
    assert_eq!(
        get(&up.serving, "/counter/built").1,
        r#"{"counter":"built","count":1}"#
    );
    assert!(
        weft.path("keys/kvcounter_account.nk").is_file(),
        "not signed with this key store"
    );
}

/// `weft up --watch`: a re-signed actor file is swapped in while the app serves (the count
/// goes on); a version with a lower revision is refused and the running one keeps serving.
#[test]
fn watch_swaps_in_new_versions_and_reports_refusals() {
    let weft = Weft::new();
    let wasm = weft.path("kvcounter.wasm");
    let sign = |rev: &str| weft.sign_kvcounter(&unsigned_actor("kvcounter"), &wasm, rev);
    sign("1");
    let manifest = counter_app_at(&weft, "kvcounter", &wasm, "");
    let up = Up::start_with(&weft, &manifest, &["--watch"], &[]);
    assert_eq!(
        get(&up.serving, "/counter/w").1,
        r#"{"counter":"w","count":1}"#
    );

    sign("2");
    let line = up.wait_for("updated", |l| {
        l.starts_with("updated") || l.starts_with("refused")
    });
    assert!(
        line.starts_with("updated   kvcounter to revision 2"),
        "{line}"
    );
    assert_eq!(
        get(&up.serving, "/counter/w").1,
        r#"{"counter":"w","count":2}"#
    );

    sign("1");
    let line = up.wait_for("refused", |l| {
        l.starts_with("updated") || l.starts_with("refused")
    });
    assert!(
        line.contains("revision 1 is lower than the running revision 2"),
        "{line}"
    );
    assert!(line.contains("the running version keeps serving"), "{line}");
    assert_eq!(
        get(&up.serving, "/counter/w").1,
        r#"{"counter":"w","count":3}"#
    );
}

/// A request that reports failures instead of panicking: (status, body) or what went wrong.
pub(crate) fn try_request(address: &str, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Issue 4's acceptance test, through HTTP: 8 concurrent clients against the kvcounter app
/// while the actor is swapped 50 times with `weft update`; no request fails and the counter
/// equals the number of successful increments.
#[test]
fn swap_under_http_load_fails_no_request_and_loses_no_increment() {
    let weft = Weft::new();
    let sign = |rev: i32| {
        let path = weft.path(&format!("kvcounter-{rev}.wasm"));
        weft.sign_kvcounter(&unsigned_actor("kvcounter"), &path, &rev.to_string());
        path
    };
    let manifest = weft.path("app.toml");
    let example = std::fs::read_to_string(example("kvcounter")).unwrap();
    // The example app, with the actor signed by this test's keys and a free port.
    let app = example
        .replace(
            "../../target/actors/kvcounter.wasm",
            sign(1).to_str().unwrap(),
        )
        .replace("${KVCOUNTER_ADDRESS:-127.0.0.1:8080}", "127.0.0.1:0");
    std::fs::write(&manifest, app).unwrap();
    let up = Up::start(&weft, &manifest, &[]);

    let load = HttpLoad::start(8, || {
        let address = up.serving.clone();
        move || try_request(&address, "/counter/load")
    });
    for rev in 2..=51 {
        let next = sign(rev);
        let out = weft
            .run(&[
                "update",
                "kvcounter",
                next.to_str().unwrap(),
                "--control",
                &up.control,
            ])
            .ok();
        assert!(out.contains(&format!("to revision {rev}")), "{out}");
    }
    let (ok, failures) = load.finish();
    eprintln!(
        "HTTP swap: 50 swaps, {ok} successful requests, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} requests failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(ok > 0);
    let expected = format!(r#"{{"counter":"load","count":{}}}"#, ok + 1);
    assert_eq!(
        get(&up.serving, "/counter/load").1,
        expected,
        "increments were lost or doubled"
    );
}

/// examples/pinger-ponger as its app.toml says: pinger calls ponger by its call alias, in the
/// host's process; a call alias no actor has is answered with the host's reason.
#[test]
fn pinger_ponger_example_calls_an_actor_from_an_actor() {
    signed_actor("pinger"); // built and signed by the test command
    signed_actor("ponger");
    let weft = Weft::new();
    let up = Up::start(
        &weft,
        &example("pinger-ponger"),
        &[("PINGER_ADDRESS", "127.0.0.1:0")],
    );
    assert_eq!(get(&up.serving, "/"), (200, "pong: ".into()));
    let (status, body) = get(&up.serving, "/to/weft/examples/nobody");
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("does not run on this host"), "{body}");
}

/// examples/dice as its app.toml says: the actor asks the host's built-in number generator,
/// which it is signed for and never linked to.
#[test]
fn dice_example_rolls_with_the_hosts_number_generator() {
    signed_actor("dice");
    let weft = Weft::new();
    let up = Up::start(&weft, &example("dice"), &[("DICE_ADDRESS", "127.0.0.1:0")]);
    let mut guids = std::collections::BTreeSet::new();
    let mut rolls = std::collections::BTreeSet::new();
    for _ in 0..120 {
        let (status, body) = get(&up.serving, "/");
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
        guids.insert(answer["guid"].as_str().unwrap().to_string());
        rolls.insert(answer["roll"].as_u64().unwrap());
    }
    assert_eq!(guids.len(), 120, "every GUID differs");
    assert_eq!(rolls.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let (status, body) = get(&up.serving, "/sides/1");
    assert_eq!((status, body.contains("\"roll\":1")), (200, true), "{body}");
}

/// Where `weft up` said it serves `actor`.
pub(crate) fn served_at(up: &Up, actor: &str) -> String {
    up.startup
        .iter()
        .find_map(|line| {
            let rest = line.strip_prefix("serving   http://")?;
            rest.ends_with(&format!("→ {actor}"))
                .then(|| rest.split('/').next().unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("no serving line for {actor}: {:?}", up.startup))
}

/// examples/fetch as its app.toml says: an actor's HTTP request out reaches the host its
/// link allows (hello, served by the same `weft up`), and no other.
#[test]
fn fetch_example_reaches_only_the_hosts_its_link_allows() {
    signed_actor("fetch");
    signed_actor("hello");
    let hello = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hello_address = hello.local_addr().unwrap().to_string();
    drop(hello);
    let weft = Weft::new();
    let up = Up::start(
        &weft,
        &example("fetch"),
        &[
            ("FETCH_ADDRESS", "127.0.0.1:0"),
            ("HELLO_ADDRESS", hello_address.as_str()),
        ],
    );
    let fetch = served_at(&up, "fetch");
    let (status, body) = get(&fetch, &format!("/?url=http://{hello_address}/"));
    assert_eq!((status, body.as_str()), (200, "Hello, world!\n"));

    // Not on the link's allowed_hosts: refused, saying how to allow it; fetch serves on.
    let (status, body) = get(&fetch, "/?url=http://127.0.0.1:1/");
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(
            "the link does not allow 127.0.0.1:1; add it to the link value allowed_hosts"
        ),
        "{body}"
    );
    let (status, _) = get(&fetch, &format!("/?url=http://{hello_address}/"));
    assert_eq!(status, 200);
}

/// examples/notes as its app.toml says: notes stored as files under the link's root and read
/// back; a name that would leave the root is refused and nothing outside it is touched.
#[test]
fn notes_example_keeps_blobs_under_its_links_root() {
    signed_actor("notes");
    let weft = Weft::new();
    let root = weft.path("notes-root");
    let up = Up::start(
        &weft,
        &example("notes"),
        &[
            ("NOTES_ADDRESS", "127.0.0.1:0"),
            ("NOTES_ROOT", root.to_str().unwrap()),
        ],
    );
    let (status, body) = request(&up.serving, "PUT", "/todo", b"buy milk");
    assert_eq!(status, 201, "{body}");
    assert_eq!(get(&up.serving, "/todo"), (200, "buy milk".to_string()));
    assert_eq!(std::fs::read(root.join("notes/todo")).unwrap(), b"buy milk");
    assert_eq!(get(&up.serving, "/nothing").0, 404);

    let (status, body) = request(&up.serving, "PUT", "/../escaped", b"x");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("use one path component"), "{body}");
    assert!(!root.join("escaped").exists() && !root.parent().unwrap().join("escaped").exists());
    let big = vec![b'x'; 65_537];
    let (status, body) = request(&up.serving, "PUT", "/big", &big);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("over the link's max_object_bytes (65536)"),
        "{body}"
    );
    assert_eq!(get(&up.serving, "/todo").0, 200);
}
