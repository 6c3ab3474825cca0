//! Actors of each generation of the lineage's ABI, built from the SDK crates of their time
//! (`actors/legacy`: wascc-actor 0.7 for waSCC, wasmcloud-actor-* 0.1–0.2 for wasmCloud
//! 0.15–0.18; `actors/kvcounter-wasmbus` for wasmbus-rpc), run unmodified side by side by one
//! `weft up` with the in-process providers, and answering as their own hosts did.

use crate::up::{Up, get, request, served_at as address};
use crate::{Weft, signed_actor};

/// One app: every generation's echo and kvcounter, each on its own port, one shared store.
fn app(weft: &Weft) -> std::path::PathBuf {
    let mut app = String::from(
        "[[providers]]\nid = \"http\"\nkind = \"http-server\"\n\n\
         [[providers]]\nid = \"kv\"\nkind = \"keyvalue-memory\"\n\n",
    );
    for (actor, http, kv) in [
        ("wascc-echo", "wascc:http_server", None),
        (
            "wascc-kvcounter",
            "wascc:http_server",
            Some("wascc:keyvalue"),
        ),
        ("wasmcloud-echo", "wasmcloud:httpserver", None),
        (
            "wasmcloud-kvcounter",
            "wasmcloud:httpserver",
            Some("wasmcloud:keyvalue"),
        ),
        (
            "kvcounter-wasmbus",
            "wasmcloud:httpserver",
            Some("wasmcloud:keyvalue"),
        ),
    ] {
        let path = signed_actor(actor);
        app.push_str(&format!(
            "[[actors]]\npath = {:?}\n\n[[links]]\nactor = \"{actor}\"\ncontract = \"{http}\"\n\
             provider = \"http\"\nvalues = {{ address = \"127.0.0.1:0\" }}\n\n",
            path.to_str().unwrap()
        ));
        if let Some(kv) = kv {
            app.push_str(&format!(
                "[[links]]\nactor = \"{actor}\"\ncontract = \"{kv}\"\nprovider = \"kv\"\n\n"
            ));
        }
    }
    let manifest = weft.path("generations.toml");
    std::fs::write(&manifest, app).unwrap();
    manifest
}

#[test]
fn echo_and_kvcounter_of_every_generation_answer_as_their_hosts_did() {
    let weft = Weft::new();
    let up = Up::start(&weft, &app(&weft), &[]);

    // echo: the request as the actor's SDK decoded it (single-string headers), answered
    // as its SDK encoded the response (status, JSON content type).
    for actor in ["wascc-echo", "wasmcloud-echo"] {
        let (status, body) = request(
            &address(&up, actor),
            "POST",
            "/hello/there?x=1&y=2",
            b"ping",
        );
        assert_eq!(status, 200, "{actor}: {body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["method"], "POST", "{actor}: {body}");
        assert_eq!(echoed["path"], "/hello/there", "{actor}: {body}");
        assert_eq!(echoed["query_string"], "x=1&y=2", "{actor}: {body}");
        assert_eq!(echoed["body"], "ping", "{actor}: {body}");
        assert_eq!(echoed["header"]["content-length"], "4", "{actor}: {body}");
        // From the extras contract of its generation, served by the host's number generator.
        assert_eq!(
            echoed["guid"].as_str().map(str::len),
            Some(36),
            "{actor}: {body}"
        );
        let random = echoed["random"].as_u64().unwrap_or_default();
        assert!((1..=6).contains(&random), "{actor}: {body}");
    }

    // kvcounter: the three generations add to one counter in one store, in turn.
    let mut expected = 0;
    for round in 0..2 {
        for actor in [
            "wascc-kvcounter",
            "wasmcloud-kvcounter",
            "kvcounter-wasmbus",
        ] {
            expected += 1;
            let (status, body) = get(&address(&up, actor), "/counter/shared");
            assert_eq!(status, 200, "{actor}, round {round}: {body}");
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
            let count = if actor == "kvcounter-wasmbus" {
                answer["count"].clone()
            } else {
                answer["counter"].clone()
            };
            assert_eq!(count, expected, "{actor}, round {round}: {body}");
        }
    }

    // Each actor's generation is what `weft actors` shows.
    let listed = weft.run(&["actors", "--control", up.control.as_str()]).ok();
    for (actor, generation) in [
        ("wascc-echo", "wascc"),
        ("wascc-kvcounter", "wascc"),
        ("wasmcloud-echo", "wasmcloud-0.18"),
        ("wasmcloud-kvcounter", "wasmcloud-0.18"),
        ("kvcounter-wasmbus", "wasmbus"),
    ] {
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("{actor} ")))
            .unwrap_or_else(|| panic!("{actor} not listed: {listed}"));
        assert!(line.contains(&format!(" {generation} [")), "{line}");
    }
}

#[test]
fn claims_inspect_names_each_generation() {
    let weft = Weft::new();
    for (actor, generation) in [
        ("wascc-echo", "waSCC"),
        ("wasmcloud-kvcounter", "wasmCloud 0.15–0.18"),
        ("kvcounter-wasmbus", "wasmbus-rpc"),
        ("kvcounter", "wasmbus-rpc"),
    ] {
        let path = signed_actor(actor);
        let shown = weft
            .run(&["claims", "inspect", path.to_str().unwrap()])
            .ok();
        let row = shown
            .lines()
            .find(|l| l.trim_start().starts_with("ABI"))
            .unwrap_or_else(|| panic!("no ABI row for {actor}: {shown}"));
        assert!(row.trim_end().ends_with(generation), "{actor}: {row}");
    }
}
