//! `weft ctl update actor … --canary` on a `weft host` of a real nats-server, under HTTP
//! load (#18 item 4): a new revision failing one call in five is rolled back by the host by
//! itself, every failed request being one the canary served, none after; a good revision is
//! promoted at the end of its window; an operator ends one by hand; each verdict is an event
//! and in the audit trail. And `weft update … --canary` on a `weft up` (no NATS): the same
//! verdicts, read from the host's audit trail.

use crate::ctl::KeepAlive;
use crate::up::{Up, served_at};
use crate::{HttpLoad, Weft, signed_actor};
use std::time::{Duration, Instant};
use weft_testing::NatsServer;

/// The count in "Revision N: F failed of C call(s)" of a verdict, as (F, C).
fn figures(verdict: &str, revision: &str) -> (usize, usize) {
    let at = verdict
        .find(&format!("Revision {revision}: "))
        .unwrap_or_else(|| panic!("no figures of revision {revision} in {verdict}"));
    let words: Vec<&str> = verdict[at..].split_whitespace().collect();
    (words[2].parse().unwrap(), words[5].parse().unwrap())
}

/// Keep-alive clients loading hello throughout.
const CLIENTS: usize = 4;

/// Signs `code` (an actor built here) as hello revision `rev`; its file.
fn signer(weft: &Weft) -> impl Fn(&str, &str) -> std::path::PathBuf + '_ {
    |code, rev| {
        let file = weft.path(&format!("hello-{code}-{rev}.wasm"));
        weft.sign_as(&signed_actor(code), &file, "hello", rev, &["-s"]);
        file
    }
}

/// [`CLIENTS`] keep-alive clients loading hello at `hello`, running for 300 ms already.
fn load_hello(hello: &str) -> HttpLoad {
    let hello = hello.to_string();
    let load = HttpLoad::start(CLIENTS, move || {
        let mut client = KeepAlive::new(&hello);
        move || client.get("/")
    });
    std::thread::sleep(Duration::from_millis(300));
    load
}

/// What the load saw when an update put `flaky` (failing one call in five) on trial as
/// revision 2 beside revision 1 at 20%: `said` (the command's output, ending with `refusal`)
/// names the verdict, reached within 15 s; every request that failed was one the canary served
/// (its figures are taken at the verdict, so a call each client had already sent to it may
/// still fail after them); hello keeps serving and nothing fails after. Returns the canary's
/// failed and served calls, and the load's successes and failures at the verdict.
fn check_rolled_back(
    said: &str,
    took: Duration,
    load: &HttpLoad,
    refusal: &str,
) -> (usize, usize, usize, usize) {
    let (ok_at_verdict, failed_at_verdict) = load.counts();
    assert!(
        said.contains("canary of hello revision 2 beside revision 1: 20.0% of the calls")
            && said.contains("ROLLED BACK")
            && said.contains("its error rate")
            && said.contains(refusal),
        "{said}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}: {said}");
    let (canary_failed, canary_calls) = figures(said, "2");
    assert!(
        (canary_failed..=canary_failed + CLIENTS).contains(&failed_at_verdict),
        "{failed_at_verdict} requests failed, the canary {canary_failed}: {said}"
    );
    assert!(
        canary_failed > 0 && canary_failed * 10 >= canary_calls,
        "{said}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let (ok_after, failed_after) = load.counts();
    assert_eq!(
        failed_after, failed_at_verdict,
        "requests failed after the rollback"
    );
    assert!(ok_after > ok_at_verdict, "hello stopped serving");
    (
        canary_failed,
        canary_calls,
        ok_at_verdict,
        failed_at_verdict,
    )
}

#[test]
fn a_bad_canary_is_rolled_back_by_itself_and_a_good_one_promoted_under_load() {
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let sign = signer(&weft);
    let v1 = sign("hello", "1");
    let manifest = crate::up::hello_app(&weft, &v1);
    let args = ["--lattice", "canary", "--nats", &url, "--trust-any-issuer"];
    let host = Up::start_command(&weft, "host", &manifest, &args, &[]);
    let hello = served_at(&host, "hello");
    let ctl = |args: &[&str]| {
        let all = [&["ctl", "--lattice", "canary", "--nats", &url][..], args].concat();
        weft.run(&all)
    };

    let load = load_hello(&hello);
    assert_eq!(load.counts().1, 0, "hello failed before any canary");

    // A bad revision, on trial for 30 s, is rolled back as soon as its figures show it.
    let bad = sign("flaky", "2");
    let (ok_before, _) = load.counts();
    let started = Instant::now();
    let run = ctl(&[
        "update",
        "actor",
        "hello",
        bad.to_str().unwrap(),
        "--canary",
        "20%",
        "--watch-for",
        "30s",
    ]);
    let took = started.elapsed();
    let said = run.refused();
    let (canary_failed, canary_calls, ok_at_verdict, failed_at_verdict) = check_rolled_back(
        &said,
        took,
        &load,
        "the canary was rolled back on 1 of 1 host(s)",
    );
    // It served its share only.
    let during = ok_at_verdict - ok_before + failed_at_verdict;
    assert!(
        canary_calls <= during / 5 + 16,
        "the canary served {canary_calls} of {during} requests"
    );
    let inventory = ctl(&["inventory", "--json"]).ok();
    let hosts: serde_json::Value = serde_json::from_str(&inventory).unwrap();
    assert_eq!(hosts[0]["actors"][0]["revision"], 1, "{inventory}");
    assert!(hosts[0]["actors"][0]["canary"].is_null(), "{inventory}");
    println!("{said}");
    println!(
        "bad canary rolled back in {} ms: {canary_failed} of its {canary_calls} requests \
         failed, of {during} served meanwhile; none after",
        took.as_millis()
    );

    // A good revision is promoted at the end of its window, with nothing failing.
    let good = sign("hello", "3");
    let started = Instant::now();
    let said = ctl(&[
        "update",
        "actor",
        "hello",
        good.to_str().unwrap(),
        "--canary",
        "50%",
        "--watch-for",
        "2s",
    ])
    .ok();
    let took = started.elapsed();
    assert!(
        said.contains("PROMOTED") && said.contains("did as well"),
        "{said}"
    );
    assert!(took >= Duration::from_secs(2), "{took:?}");
    let (_, failed_now) = load.counts();
    assert_eq!(
        failed_now, failed_at_verdict,
        "requests failed during a good canary: {said}"
    );
    let inventory = ctl(&["inventory"]).ok();
    assert!(inventory.contains("rev 3"), "{inventory}");

    // An operator ends one by hand; with none running, saying so is refused.
    let next = sign("hello", "4");
    let plan = ["--canary", "10%", "--watch-for", "1h"];
    let canary = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "ctl",
            "--lattice",
            "canary",
            "--nats",
            &url,
            "update",
            "actor",
            "hello",
        ])
        .arg(&next)
        .args(plan)
        .env("WEFT_HOME", weft.home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the canary runs (the inventory shows it), roll it back.
    let running = Instant::now();
    while !ctl(&["inventory", "--json"]).ok().contains("share_ppm") {
        assert!(
            running.elapsed() < Duration::from_secs(20),
            "the canary never showed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let inventory = ctl(&["inventory"]).ok();
    assert!(inventory.contains("rev 3 max"), "{inventory}");
    assert!(inventory.contains("canary rev 4 at 10.0%"), "{inventory}");
    let decided = ctl(&["canary", "rollback", "hello"]).ok();
    assert!(
        decided.contains("rolled back") && decided.contains("an operator decided so"),
        "{decided}"
    );
    let canary = canary.wait_with_output().unwrap();
    assert!(!canary.status.success());
    assert!(String::from_utf8_lossy(&canary.stdout).contains("ROLLED BACK"));
    assert!(
        ctl(&["canary", "promote", "hello"])
            .refused()
            .contains("no canary of actor")
    );

    let (ok, failures) = load.finish();
    assert_eq!(failures.len(), failed_at_verdict, "{:?}", failures.last());
    let audit = ctl(&["audit"]).ok();
    for action in [
        "canary_actor",
        "canary_rolled_back",
        "canary_promoted",
        "roll_back_canary",
    ] {
        assert!(
            audit.contains(action),
            "no {action} in the audit trail:\n{audit}"
        );
    }
    println!("{ok} requests served in all; only the bad canary's failed");
}

#[test]
fn weft_update_with_a_canary_on_weft_up_rolls_back_a_bad_one_and_promotes_a_good_one() {
    let weft = Weft::new();
    let sign = signer(&weft);
    let v1 = sign("hello", "1");
    let manifest = crate::up::hello_app(&weft, &v1);
    let up = Up::start(&weft, &manifest, &[]);
    let hello = served_at(&up, "hello");
    let load = load_hello(&hello);
    let update = |file: &std::path::Path, share: &str, window: &str| {
        weft.run(&[
            "update",
            "hello",
            file.to_str().unwrap(),
            "--canary",
            share,
            "--watch-for",
            window,
            "--control",
            &up.control,
        ])
    };

    // A revision failing one call in five, on trial for 30 s: rolled back as soon as its
    // figures show it, and nothing fails after.
    let started = Instant::now();
    let said = update(&sign("flaky", "2"), "20%", "30s").refused();
    let took = started.elapsed();
    let (_, _, _, failed_at_verdict) = check_rolled_back(
        &said,
        took,
        &load,
        "the canary was rolled back; the running version serves every call",
    );
    let actors = weft.run(&["actors", "--control", &up.control]).ok();
    assert!(actors.contains("rev 1"), "{actors}");
    println!(
        "{said}\nbad canary rolled back, the command done in {} ms; {failed_at_verdict} requests failed",
        took.as_millis()
    );

    // A good revision is promoted at the end of its 2 s window, nothing failing.
    let started = Instant::now();
    let said = update(&sign("hello", "3"), "50%", "2s").ok();
    assert!(
        said.contains("PROMOTED") && said.contains("did as well"),
        "{said}"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    let actors = weft.run(&["actors", "--control", &up.control]).ok();
    assert!(actors.contains("rev 3"), "{actors}");

    // An operator ends one by hand (`weft canary rollback`); the waiting update says so.
    let canary = std::process::Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["update", "hello"])
        .arg(sign("hello", "4"))
        .args([
            "--canary",
            "10%",
            "--watch-for",
            "1h",
            "--control",
            &up.control,
        ])
        .env("WEFT_HOME", weft.home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let running = Instant::now();
    while !weft
        .run(&["actors", "--json", "--control", &up.control])
        .ok()
        .contains("share_ppm")
    {
        assert!(
            running.elapsed() < Duration::from_secs(20),
            "the canary never showed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let actors = weft.run(&["actors", "--control", &up.control]).ok();
    assert!(actors.contains("rev 3 canary rev 4 at 10.0%"), "{actors}");
    let decided = weft
        .run(&["canary", "rollback", "hello", "--control", &up.control])
        .ok();
    assert!(decided.contains("an operator decided so"), "{decided}");
    let canary = canary.wait_with_output().unwrap();
    assert!(!canary.status.success());
    assert!(String::from_utf8_lossy(&canary.stdout).contains("ROLLED BACK"));
    let refused = weft
        .run(&["canary", "promote", "hello", "--control", &up.control])
        .refused();
    assert!(refused.contains("no canary of actor"), "{refused}");
    let (ok, failures) = load.finish();
    assert_eq!(failures.len(), failed_at_verdict, "{:?}", failures.last());
    println!("{said}\n{ok} requests served; only the bad canary's failed");
}

#[test]
fn a_canary_share_out_of_bounds_is_refused_before_anything_is_sent() {
    let weft = Weft::new();
    let run = weft.run(&[
        "ctl",
        "--lattice",
        "none",
        "update",
        "actor",
        "hello",
        "x.wasm",
        "--canary",
        "150%",
    ]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    assert!(
        run.stderr().contains("between 0% and 100%"),
        "{}",
        run.stderr()
    );
    let run = weft.run(&[
        "ctl",
        "--lattice",
        "none",
        "update",
        "actor",
        "hello",
        "x.wasm",
        "--watch-for",
        "5s",
    ]);
    assert!(run.stderr().contains("--canary"), "{}", run.stderr());
    // The same bounds for `weft update` on a `weft up`.
    let run = weft.run(&["update", "hello", "x.wasm", "--canary", "0%"]);
    assert_eq!(run.output.status.code(), Some(2), "{}", run.stderr());
    assert!(run.stderr().contains("more than 0%"), "{}", run.stderr());
}
