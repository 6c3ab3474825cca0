//! A program that embeds `weft-host` (not the `weft` binary) is driven by `weft ctl` over a
//! real nats-server: the control plane is the library's, with the embedder's own provider
//! factory (regression: the control plane lived in the binary, so an embedding program could
//! not be driven at all).

use crate::{Weft, signed_actor};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use weft_contracts::httpserver::{HANDLE_REQUEST, HttpRequest, HttpResponse};
use weft_host::control::{Control, ProviderFactory, nats};
use weft_host::{Host, HostConfig};
use weft_keyvalue_memory::MemoryKeyValue;
use weft_provider_sdk::Provider;
use weft_testing::NatsServer;

/// The embedding program carries one provider kind of its own.
struct OnlyMemory;

impl ProviderFactory for OnlyMemory {
    fn provider(
        &self,
        kind: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn Provider>, String> {
        match kind {
            "keyvalue-memory" => Ok(Arc::new(MemoryKeyValue::new())),
            other => Err(format!(
                "this program carries no provider of kind {other:?}"
            )),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedding_program_is_driven_by_weft_ctl() {
    let nats = NatsServer::start().unwrap();
    let url = nats.url();
    let client = weft_lattice::connect(&weft_lattice::NatsOptions {
        url: url.clone(),
        ..weft_lattice::NatsOptions::default()
    })
    .await
    .unwrap();
    // The embedder's lattice issuer signs its own membership and weft ctl's.
    let credentials = weft_lattice::Credentials::generate();
    let issuer = credentials.issuer_seed().unwrap();
    let member = weft_lattice::Member::join(client, "embedded", "embedder", &credentials)
        .await
        .unwrap();
    let host = Host::new(HostConfig::default()).unwrap();
    host.join_lattice(member.clone()).await.unwrap();
    let labels = BTreeMap::from([("program".to_string(), "embedder".to_string())]);
    let control = Arc::new(Control::new(host.clone(), Arc::new(OnlyMemory), labels));
    // The embedder trusts one operator key; `weft ctl` signs with it.
    let operator = wascap::KeyRole::Operator.generate().unwrap();
    let trusted = weft_lattice::envelope::Verifier::new([operator.public_key()]);
    let _serving = nats::serve(control, member, Duration::from_secs(30), trusted)
        .await
        .unwrap();
    let seed = operator.seed().unwrap();

    let weft = Arc::new(Weft::new());
    let kvcounter = signed_actor("kvcounter");
    let ctl_weft = weft.clone();
    let ctl = move |args: Vec<String>| {
        let weft_args: Vec<String> = [
            "ctl",
            "--lattice",
            "embedded",
            "--nats",
            &url,
            "--lattice-issuer",
            &issuer,
        ]
        .into_iter()
        .map(String::from)
        .chain(["--ctl-seed".to_string(), seed.clone()])
        .chain(args)
        .collect();
        let run = ctl_weft.run(&weft_args.iter().map(String::as_str).collect::<Vec<_>>());
        (run.output.status.success(), run.stdout(), run.stderr())
    };
    let ctl = |args: &[&str]| {
        let ctl = ctl.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || ctl(args))
    };

    // Without the key (the test's key store has an operator key of its own, which the
    // embedder does not trust), nothing starts.
    let untrusted = weft.run(&[
        "ctl",
        "--lattice",
        "embedded",
        "--nats",
        &nats.url(),
        "--lattice-issuer",
        &credentials.issuer_seed().unwrap(),
        "start",
        "provider",
        "keyvalue-memory",
        "--id",
        "kv",
    ]);
    assert!(!untrusted.output.status.success());
    assert!(
        untrusted
            .stdout()
            .contains("which this host does not trust"),
        "{}{}",
        untrusted.stdout(),
        untrusted.stderr()
    );
    assert!(host.links().is_empty());

    let (ok, out, err) = ctl(&["start", "provider", "keyvalue-memory", "--id", "kv"])
        .await
        .unwrap();
    assert!(ok, "{out}{err}");
    let (ok, out, err) = ctl(&["start", "actor", kvcounter.to_str().unwrap()])
        .await
        .unwrap();
    assert!(ok && out.contains("actor kvcounter"), "{out}{err}");
    let (ok, out, err) = ctl(&["link", "put", "kvcounter", "wasmcloud:keyvalue", "kv"])
        .await
        .unwrap();
    assert!(ok && out.contains("linked"), "{out}{err}");

    // The embedding program's own host serves what weft ctl put there.
    let actor = host.actors().first().unwrap().id.clone();
    let request = weft_contracts::encode(&HttpRequest {
        method: "GET".into(),
        path: "/counter/embedded".into(),
        ..HttpRequest::default()
    })
    .unwrap();
    for expected in 1..=2 {
        let answer = host.invoke(&actor, HANDLE_REQUEST, &request).await.unwrap();
        let response: HttpResponse = weft_contracts::decode(&answer).unwrap();
        let body = String::from_utf8(response.body).unwrap();
        assert!(body.ends_with(&format!(":{expected}}}")), "{body}");
    }

    let (ok, out, err) = ctl(&["inventory"]).await.unwrap();
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("program=embedder") && out.contains("kvcounter") && out.contains("kv "),
        "{out}"
    );
    // A kind the embedder does not carry is refused, naming it; nothing changes.
    let (ok, out, err) = ctl(&["start", "provider", "http-server", "--id", "http"])
        .await
        .unwrap();
    assert!(!ok, "{out}{err}");
    assert!(
        out.contains("this program carries no provider of kind \"http-server\""),
        "{out}{err}"
    );
}
