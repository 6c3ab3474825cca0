//! The control plane's local transport, as `weft link` and `weft update` use it: requests
//! through the one handler, its bounds obeyed and enforced, and what it never accepts.

use crate::{GUEST, guest};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_host::control::local::{self, Endpoint, Listener, LocalError, MAX_REQUEST_BYTES};
use weft_host::control::{Control, ControlRequest, Done, ProviderFactory};
use weft_host::{Host, HostConfig, LoadPolicy};
use weft_provider_sdk::{FailureKind, Provider};

/// A provider factory that makes nothing (the tests here start none).
pub(crate) struct NoProviders;

impl ProviderFactory for NoProviders {
    fn provider(
        &self,
        kind: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<Arc<dyn Provider>, String> {
        Err(format!("no provider of kind {kind} here"))
    }
}

/// A host (that runs unsigned modules from its own manifest, as `weft up --allow-unsigned`
/// does) serving its local control endpoint on a socket in a fresh directory; the endpoint,
/// and the directory (kept until the test ends).
async fn endpoint() -> (Host, Endpoint, tempfile::TempDir) {
    let host = Host::new(HostConfig {
        policy: LoadPolicy {
            allow_unsigned: true,
            ..LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap();
    let control = Arc::new(Control::new(
        host.clone(),
        Arc::new(NoProviders),
        BTreeMap::new(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Endpoint::Socket(dir.path().join("run").join("control.sock"));
    let listener = Listener::bind(&endpoint).await.unwrap();
    tokio::spawn(local::serve(control, listener));
    (host, endpoint, dir)
}

/// The socket is its owner's alone: mode 0600 in a directory of mode 0700 made for it; a
/// second host is refused the same socket while the first serves; addresses beyond loopback
/// are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_endpoint_is_a_socket_only_its_owner_reaches() {
    use std::os::unix::fs::PermissionsExt;
    let (_host, endpoint, _dir) = endpoint().await;
    let Endpoint::Socket(path) = &endpoint else {
        panic!("not a socket")
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let taken = Listener::bind(&endpoint).await.unwrap_err().to_string();
    assert!(taken.contains("another `weft up` serves there"), "{taken}");
    // A file that is not a socket is never replaced (regression: a stale-socket check that
    // removed whatever `--control` named).
    let precious = path.parent().unwrap().join("notes.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let refused = Listener::bind(&Endpoint::Socket(precious.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("exists and is not a socket"), "{refused}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(
        local::request(&endpoint, &ControlRequest::Inventory)
            .await
            .is_ok()
    );
    let far = Endpoint::parse("0.0.0.0:7070").unwrap_err().to_string();
    assert!(far.contains("never listens beyond this machine"), "{far}");
    assert!(matches!(
        Endpoint::parse("127.0.0.1:7070"),
        Ok(Endpoint::Loopback(_))
    ));
}

/// `--allow-unsigned` is for a host's own manifest: a module without claims that arrives over
/// the control interface is refused, naming why, while signed ones start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_modules_never_arrive_over_the_control_interface() {
    let (host, address, _dir) = endpoint().await;
    // The host itself runs it, from its own manifest: the development switch is on.
    let unsigned = wat::parse_str(GUEST).unwrap();
    let own = host.start_actor(&unsigned).await.unwrap().id;
    host.stop_actor(&own).unwrap();

    let refused = local::request(
        &address,
        &ControlRequest::StartActor {
            module: unsigned,
            max_instances: None,
        },
    )
    .await
    .unwrap_err();
    let LocalError::Refused(failure) = &refused else {
        panic!("not a refusal: {refused}")
    };
    assert_eq!(failure.kind, FailureKind::BadRequest);
    assert!(
        failure
            .message
            .contains("modules sent over the control interface must be signed"),
        "{failure}"
    );
    assert!(host.actors().is_empty());

    let signed = local::request(
        &address,
        &ControlRequest::StartActor {
            module: guest(&[]),
            max_instances: None,
        },
    )
    .await
    .unwrap();
    assert!(matches!(signed, Done::Actor(_)), "{signed:?}");
    assert_eq!(host.actors().len(), 1);
}

/// A request over [`MAX_REQUEST_BYTES`] is refused from its length prefix, before anything
/// is allocated or read, and the endpoint serves the next client; one within the bound (a
/// module of 8 MiB) is carried out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_endpoint_s_request_size_is_obeyed_and_enforced() {
    let (host, address, _dir) = endpoint().await;

    let Endpoint::Socket(path) = &address else {
        panic!("not a socket")
    };
    let mut stream = tokio::net::UnixStream::connect(path).await.unwrap();
    let over = u32::try_from(MAX_REQUEST_BYTES + 1).unwrap();
    stream.write_all(&over.to_be_bytes()).await.unwrap();
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await.unwrap();
    let mut answer = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut answer).await.unwrap();
    let answer: weft_lattice::Answer = weft_lattice::decode("test", &answer).unwrap();
    let weft_lattice::Answer::Err(failure) = answer else {
        panic!("an oversized request was accepted")
    };
    assert!(
        failure.message.contains(&format!(
            "a control request of {} bytes is over the limit of {MAX_REQUEST_BYTES} bytes",
            MAX_REQUEST_BYTES + 1
        )),
        "{failure}"
    );
    // The connection is closed after the refusal.
    assert_eq!(stream.read(&mut length).await.unwrap(), 0);

    // Within the bound: a signed module padded to 8 MiB with a custom section.
    let mut padded = wat::parse_str(GUEST).unwrap();
    wasm_encoder::Section::append_to(
        &wasm_encoder::CustomSection {
            name: "padding".into(),
            data: vec![0u8; 8 << 20].into(),
        },
        &mut padded,
    );
    let done = local::request(
        &address,
        &ControlRequest::StartActor {
            module: crate::sign(&padded, &[]),
            max_instances: None,
        },
    )
    .await
    .unwrap();
    assert!(matches!(done, Done::Actor(_)), "{done:?}");
    let inventory = local::request(&address, &ControlRequest::Inventory)
        .await
        .unwrap();
    let Done::Inventory(inventory) = inventory else {
        panic!("not an inventory: {inventory:?}")
    };
    assert_eq!(inventory.actors.len(), 1);
    assert_eq!(host.actors().len(), 1);
}

/// A host's lattice control over a real nats-server, tried by a client holding no trusted
/// key: unsigned, signed by a stranger, addressed to another host, and a captured signed
/// request replayed. Each is refused with its reason and changes nothing, while the actor
/// keeps serving and the operator's own signed request is carried out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_over_the_lattice_obeys_only_a_trusted_operator_s_fresh_signature() {
    use weft_host::control::nats;
    use weft_lattice::envelope::Verifier;
    let server = weft_testing::NatsServer::start().unwrap();
    let options = weft_lattice::NatsOptions {
        url: server.url(),
        ..weft_lattice::NatsOptions::default()
    };
    let member = crate::join(&server.url(), "trust", "host").await;
    let host = Host::new(HostConfig::default()).unwrap();
    host.join_lattice(member.clone()).await.unwrap();
    let actor = host.start_actor(&guest(&[])).await.unwrap().id;
    let control = Arc::new(Control::new(
        host.clone(),
        Arc::new(NoProviders),
        BTreeMap::new(),
    ));
    let host_id = control.host_id().to_string();
    let operator = nkeys::KeyPair::new_operator();
    let _serving = nats::serve(
        control,
        member.clone(),
        std::time::Duration::from_secs(30),
        Verifier::new([operator.public_key()]),
    )
    .await
    .unwrap();

    // A member of the lattice (a provider process, say) that holds no operator key.
    let rogue = crate::join(&server.url(), "trust", "rogue member").await;
    let subject = weft_lattice::Subjects::new("trust").control_host(&host_id);
    let ask = |body: Vec<u8>| {
        let (rogue, subject) = (rogue.clone(), subject.clone());
        async move {
            weft_lattice::request(&rogue, subject, body, std::time::Duration::from_secs(5)).await
        }
    };
    let refused = |answer: Result<Vec<u8>, weft_provider_sdk::Failure>, reason: &str| {
        let Err(failure) = answer else {
            panic!("carried out: {answer:?}")
        };
        assert_eq!(failure.kind, FailureKind::Denied);
        assert!(
            failure.message.contains("control request refused") && failure.message.contains(reason),
            "{failure}"
        );
    };
    let stop = ControlRequest::StopActor {
        actor_id: actor.clone(),
    };
    let serves = || async {
        host.invoke(&actor, "run", &crate::cmd(b'e', 1))
            .await
            .is_ok()
    };

    let max_before = host.actor_pool(&actor).unwrap().limits().max_instances;
    // The app serves under load meanwhile: every call must succeed.
    let calling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let load = {
        let (host, actor, calling) = (host.clone(), actor.clone(), calling.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while calling.load(std::sync::atomic::Ordering::Relaxed) {
                match host.invoke(&actor, "run", &crate::cmd(b'e', 1)).await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::task::yield_now().await;
            }
            (ok, failed)
        })
    };

    // Every control request, unsigned and signed by a stranger's key: each refused, naming why.
    let module = guest(&[]);
    let every = [
        ControlRequest::Inventory,
        ControlRequest::StartActor {
            module: module.clone(),
            max_instances: Some(1_000_000),
        },
        stop.clone(),
        ControlRequest::UpdateActor {
            actor_id: actor.clone(),
            module,
            allow_new_capabilities: true,
            allow_new_issuer: true,
            canary: None,
        },
        ControlRequest::ScaleActor {
            actor_id: actor.clone(),
            max_instances: 1_000_000,
        },
        ControlRequest::StartProvider {
            id: "rogue".into(),
            kind: "anything".into(),
            config: BTreeMap::new(),
            process: true,
        },
        ControlRequest::UpdateProvider {
            id: "rogue".into(),
            config: None,
        },
        ControlRequest::StopProvider { id: "rogue".into() },
        ControlRequest::PutLink(weft_provider_sdk::LinkDefinition {
            actor_id: actor.clone(),
            contract_id: "wasmcloud:keyvalue".into(),
            link_name: "default".into(),
            provider_id: "rogue".into(),
            values: BTreeMap::from([("url".into(), "redis://elsewhere".into())]),
        }),
        ControlRequest::DeleteLink {
            actor_id: actor.clone(),
            contract_id: "wasmcloud:keyvalue".into(),
            link_name: "default".into(),
        },
    ];
    let stranger = nkeys::KeyPair::new_operator();
    for request in &every {
        let plain = weft_lattice::encode("test", request).unwrap();
        refused(ask(plain).await, "the message is not signed");
        refused(
            ask(nats::sealed(&stranger, &host_id, request).unwrap()).await,
            "which this host does not trust",
        );
    }
    assert_eq!(host.actors().len(), 1, "an actor started or stopped");
    assert_eq!(
        host.actor_pool(&actor).unwrap().limits().max_instances,
        max_before,
        "the actor was scaled"
    );
    assert!(host.links().is_empty(), "a link was put");
    // A forged update with the operator's own signature: other code, signed by another
    // account, claiming the running actor's module key and a higher revision. Refused: an
    // update keeps the issuer.
    let forger = wascap::KeyRole::Account.generate().unwrap();
    let forged = wascap::embed_claims(
        &wat::parse_str(GUEST).unwrap(),
        &wascap::Claims::new(
            forger.public_key(),
            actor.clone(),
            wascap::Actor {
                name: Some("guest".into()),
                caps: Some(Vec::new()),
                rev: Some(99),
                ..wascap::Actor::default()
            },
        ),
        &forger,
    )
    .unwrap();
    let update = ControlRequest::UpdateActor {
        actor_id: actor.clone(),
        module: forged,
        allow_new_capabilities: false,
        allow_new_issuer: false,
        canary: None,
    };
    let answer = ask(nats::sealed(&operator, &host_id, &update).unwrap()).await;
    let Err(failure) = answer else {
        panic!("the forged update was carried out")
    };
    assert!(failure.message.contains("issuer"), "{failure}");

    // Signed by the operator, for another host.
    refused(
        ask(nats::sealed(&operator, "NOTTHISHOST", &stop).unwrap()).await,
        "addressed to NOTTHISHOST",
    );
    assert!(serves().await, "the actor stopped on a refused request");

    // The operator's own request, once; the same bytes again are a replay.
    let scale = nats::sealed(
        &operator,
        &host_id,
        &ControlRequest::ScaleActor {
            actor_id: actor.clone(),
            max_instances: 3,
        },
    )
    .unwrap();
    assert!(ask(scale.clone()).await.is_ok());
    assert_eq!(host.actor_pool(&actor).unwrap().limits().max_instances, 3);
    refused(ask(scale).await, "a replay");
    assert!(serves().await);

    // Not a member at all: even the operator's signed request, sent without a member's seal,
    // is dropped unanswered (and counted), and changes nothing.
    let stranger = weft_lattice::connect(&options).await.unwrap();
    let before = member.refusals();
    let unsealed = nats::sealed(
        &operator,
        &host_id,
        &ControlRequest::StopActor {
            actor_id: actor.clone(),
        },
    )
    .unwrap();
    let dropped = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        stranger.request(subject.clone(), unsealed.into()),
    )
    .await;
    assert!(dropped.is_err(), "a stranger was answered: {dropped:?}");
    assert_eq!(member.refusals(), before + 1);
    assert!(serves().await);

    calling.store(false, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(failed.is_empty(), "legitimate calls failed: {failed:?}");
    assert!(ok > 10, "only {ok} calls were made");
}

/// An inventory larger than one NATS message (1 MiB on a default server) travels chunked and
/// is read whole: 40 links of 30 KiB each, all listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_over_one_message_is_read_whole() {
    use weft_host::control::nats;
    use weft_lattice::envelope::Verifier;
    let server = weft_testing::NatsServer::start().unwrap();
    let member = crate::join(&server.url(), "big", "host").await;
    let host = Host::new(HostConfig::default()).unwrap();
    host.add_provider("kv", Arc::new(weft_keyvalue_memory::MemoryKeyValue::new()))
        .await
        .unwrap();
    for n in 0..40 {
        host.put_link(weft_provider_sdk::LinkDefinition {
            actor_id: format!("MACTOR{n}"),
            contract_id: wascap::contracts::KEYVALUE.into(),
            link_name: "default".into(),
            provider_id: "kv".into(),
            values: [
                ("first".to_string(), "a".repeat(16 << 10)),
                ("second".to_string(), "b".repeat(14 << 10)),
            ]
            .into(),
        })
        .await
        .unwrap();
    }
    let control = Arc::new(Control::new(
        host.clone(),
        Arc::new(NoProviders),
        BTreeMap::new(),
    ));
    let _serving = nats::serve(
        control,
        member,
        std::time::Duration::from_secs(30),
        Verifier::new([nkeys::KeyPair::new_operator().public_key()]),
    )
    .await
    .unwrap();
    let viewer = crate::join(&server.url(), "big", "viewer").await;
    let hosts = nats::inventories(&viewer, std::time::Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].links.len(), 40);
    assert!(
        hosts[0]
            .links
            .iter()
            .all(|link| link.values["first"].len() == 16 << 10)
    );
}
