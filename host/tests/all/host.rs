//! The host: links put and deleted while actors serve, providers told, errors that name the fix.

use crate::{cmd, guest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wascap::contracts;
use weft_host::actor::LoadPolicy;
use weft_host::engine::EngineConfig;
use weft_host::limits::Limits;
use weft_host::{GuestError, Host, HostConfig, HostError, InvokeError};
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall, ProviderError, async_trait};

fn host(limits: Limits) -> Host {
    Host::new(HostConfig {
        engine: EngineConfig {
            instance_slots: 32,
            ..EngineConfig::default()
        },
        policy: LoadPolicy {
            limits,
            ..LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap()
}

/// A provider that answers with the operation name and records link events.
#[derive(Default)]
struct Echoing {
    events: Mutex<Vec<String>>,
    calls: AtomicUsize,
    hang: bool,
    /// How long each call takes.
    slow: Option<Duration>,
    /// Refuses every link.
    refuse_links: bool,
    /// Calls inside now, and the most seen at once.
    inside: AtomicUsize,
    most_inside: AtomicUsize,
    /// Calls wait here until as many calls as the barrier counts are inside the provider.
    rendezvous: Option<tokio::sync::Barrier>,
}

#[async_trait]
impl Provider for Echoing {
    fn contract_id(&self) -> &str {
        contracts::KEYVALUE
    }
    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        if self.refuse_links {
            return Err(ProviderError::Link {
                actor_id: link.actor_id.clone(),
                reason: "this one refuses every link".into(),
            });
        }
        self.events
            .lock()
            .unwrap()
            .push(format!("put {}", link.link_name));
        Ok(())
    }
    /// Recorded as `shutdown`, or with the calls still inside it when there are any (a
    /// shutdown that did not wait for them).
    async fn shutdown(&self) {
        let event = match self.inside.load(Ordering::SeqCst) {
            0 => "shutdown".to_string(),
            inside => format!("shutdown with {inside} calls inside"),
        };
        self.events.lock().unwrap().push(event);
    }
    async fn delete_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.events
            .lock()
            .unwrap()
            .push(format!("del {}", link.link_name));
        Ok(())
    }
    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_inside.fetch_max(now, Ordering::SeqCst);
        if let Some(slow) = self.slow {
            tokio::time::sleep(slow).await;
        }
        self.inside.fetch_sub(1, Ordering::SeqCst);
        if let Some(rendezvous) = &self.rendezvous {
            rendezvous.wait().await;
        }
        Ok(format!("{} via {}", call.operation, call.link.provider_id).into_bytes())
    }
}

/// A guest signed for key-value, linked to `provider` running as `kv`: its id.
async fn linked_kv_actor(host: &Host, provider: Arc<dyn Provider>) -> String {
    host.add_provider("kv", provider).await.unwrap();
    let actor = host
        .start_actor(&guest(&[contracts::KEYVALUE]))
        .await
        .unwrap()
        .id;
    host.put_link(kv_link(&actor)).await.unwrap();
    actor
}

fn kv_link(actor: &str) -> LinkDefinition {
    LinkDefinition {
        actor_id: actor.into(),
        contract_id: contracts::KEYVALUE.into(),
        link_name: "default".into(),
        provider_id: "kv".into(),
        values: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_put_and_deleted_while_the_actor_serves() {
    let host = host(Limits::default());
    let provider = Arc::new(Echoing::default());
    host.add_provider("kv", provider.clone()).await.unwrap();
    let actor = host
        .start_actor(&guest(&[contracts::KEYVALUE]))
        .await
        .unwrap()
        .id;

    // No link yet: the error names the actor, the contract, the link and the fix.
    let err = host
        .invoke(&actor, "run", &cmd(b'h', 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "actor {actor} has no link for wasmcloud:keyvalue on link 'default'; add one to the \
             app manifest's links or run `weft link put"
        )),
        "{err}"
    );

    host.put_link(kv_link(&actor)).await.unwrap();
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'h', 1)).await.unwrap(),
        b"KeyValue.Get via kv"
    );
    assert_eq!(host.links(), vec![kv_link(&actor)]);

    host.delete_link(&actor, contracts::KEYVALUE, "default")
        .await
        .unwrap();
    let err = host
        .invoke(&actor, "run", &cmd(b'h', 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no link for wasmcloud:keyvalue"), "{err}");
    assert!(host.links().is_empty());

    host.put_link(kv_link(&actor)).await.unwrap();
    assert!(
        host.invoke(&actor, "run", &cmd(b'h', 1)).await.is_ok(),
        "link put again works"
    );
    assert_eq!(
        *provider.events.lock().unwrap(),
        ["put default", "del default", "put default"]
    );
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);

    // Pointed at another provider, the link takes every call after, on every worker (each
    // keeps its own copy of the calls' routes).
    let second = Arc::new(Echoing::default());
    host.add_provider("kv2", second.clone()).await.unwrap();
    host.put_link(LinkDefinition {
        provider_id: "kv2".into(),
        ..kv_link(&actor)
    })
    .await
    .unwrap();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (host, actor) = (host.clone(), actor.clone());
            tokio::spawn(async move { host.invoke(&actor, "run", &cmd(b'h', 1)).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), b"KeyValue.Get via kv2");
    }
    assert_eq!(second.calls.load(Ordering::SeqCst), 16);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);

    let err = host
        .delete_link(&actor, contracts::KEYVALUE, "nope")
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::NoSuchLink { .. }), "{err}");
}

/// `weft ctl update provider`'s core: a call in flight finishes on the old provider, which
/// is shut down only after it; new calls go to the new one; a replacement that refuses a
/// link changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_is_replaced_without_cutting_a_call_and_a_refused_replacement_changes_nothing() {
    let host = host(Limits::default());
    let old = Arc::new(Echoing {
        slow: Some(Duration::from_millis(300)),
        ..Echoing::default()
    });
    let actor = linked_kv_actor(&host, old.clone()).await;

    let in_flight = tokio::spawn({
        let (host, actor) = (host.clone(), actor.clone());
        async move { host.invoke(&actor, "run", &cmd(b'h', 1)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(old.calls.load(Ordering::SeqCst), 1, "the call is in flight");
    let new = Arc::new(Echoing::default());
    host.replace_provider("kv", new.clone()).await.unwrap();
    // The replacement waited for the call, which the old provider answered before it was
    // shut down (with no call inside); the call's last steps, in the actor, may end on its
    // worker just after.
    assert_eq!(*old.events.lock().unwrap(), ["put default", "shutdown"]);
    assert_eq!(in_flight.await.unwrap().unwrap(), b"KeyValue.Get via kv");
    assert_eq!(*new.events.lock().unwrap(), ["put default"]);
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'h', 1)).await.unwrap(),
        b"KeyValue.Get via kv"
    );
    assert_eq!(new.calls.load(Ordering::SeqCst), 1);
    assert_eq!(old.calls.load(Ordering::SeqCst), 1);

    let refusing = Arc::new(Echoing {
        refuse_links: true,
        ..Echoing::default()
    });
    let err = host
        .replace_provider("kv", refusing.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kv") && err.contains("this one refuses every link"),
        "{err}"
    );
    assert_eq!(*refusing.events.lock().unwrap(), ["shutdown"]);
    assert!(host.invoke(&actor, "run", &cmd(b'h', 1)).await.is_ok());
    assert_eq!(
        new.calls.load(Ordering::SeqCst),
        2,
        "the running one still serves"
    );
    let err = host
        .replace_provider("nope", Arc::new(Echoing::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::UnknownProvider(_)), "{err}");
}

/// `weft ctl scale`: the cap on calls at once follows the last scale, up and down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_an_actor_changes_how_many_calls_run_at_once() {
    let host = host(Limits::default());
    let actor = host
        .start_actor_with(&guest(&[contracts::KEYVALUE]), Some(1))
        .await
        .unwrap()
        .id;
    let burst = |provider: Arc<Echoing>| {
        let (host, actor) = (host.clone(), actor.clone());
        async move {
            host.add_provider("kv", provider.clone()).await.unwrap();
            host.put_link(kv_link(&actor)).await.unwrap();
            let calls: Vec<_> = (0..6)
                .map(|_| {
                    let (host, actor) = (host.clone(), actor.clone());
                    tokio::spawn(async move { host.invoke(&actor, "run", &cmd(b'h', 1)).await })
                })
                .collect();
            for call in calls {
                call.await.unwrap().unwrap();
            }
            host.stop_provider("kv").await.unwrap();
            provider.most_inside.load(Ordering::SeqCst)
        }
    };
    let slow = || {
        Arc::new(Echoing {
            slow: Some(Duration::from_millis(100)),
            ..Echoing::default()
        })
    };
    assert_eq!(burst(slow()).await, 1);
    host.scale_actor(&actor, 3).unwrap();
    assert_eq!(host.actor_pool(&actor).unwrap().limits().max_instances, 3);
    assert_eq!(burst(slow()).await, 3);
    host.scale_actor(&actor, 1).unwrap();
    assert_eq!(burst(slow()).await, 1);
    assert!(host.actor_pool(&actor).unwrap().idle_instances() <= 1);
    assert!(matches!(
        host.scale_actor("MNOPE", 2),
        Err(HostError::UnknownActor(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_an_unknown_provider_is_refused() {
    let host = host(Limits::default());
    let err = host.put_link(kv_link("MX")).await.unwrap_err();
    assert!(
        err.to_string().contains("no provider kv runs on this host"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_provider_costs_the_caller_an_error_within_the_deadline() {
    let host = host(Limits {
        call_deadline_ms: 300,
        ..Limits::default()
    });
    let hung = Arc::new(Echoing {
        hang: true,
        ..Echoing::default()
    });
    let actor = linked_kv_actor(&host, hung).await;
    let started = Instant::now();
    let err = host
        .invoke(&actor, "run", &cmd(b'h', 1))
        .await
        .unwrap_err()
        .to_string();
    let elapsed = started.elapsed();
    // The provider gets what is left of the actor's 300 ms less a margin, so the actor is
    // still running when the provider's error comes back, and answers with it.
    assert!(
        err.contains("the actor returned an error: provider kv did not answer KeyValue.Get within"),
        "{err}"
    );
    assert!(elapsed < Duration::from_millis(900), "took {elapsed:?}");
    // The host serves on.
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'e', 5)).await.unwrap(),
        cmd(b'e', 5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_actor_cannot_start_twice_and_unknown_actors_are_named() {
    let host = host(Limits::default());
    let bytes = guest(&[]);
    let id = host.start_actor(&bytes).await.unwrap().id;
    assert!(matches!(
        host.start_actor(&bytes).await,
        Err(HostError::ActorRunning(_))
    ));
    let err = host.invoke("MNOPE", "run", b"").await.unwrap_err();
    assert!(
        err.to_string().contains("no actor MNOPE runs on this host"),
        "{err}"
    );
    host.stop_actor(&id).unwrap();
    assert!(host.actors().is_empty());
}

/// `#[tokio::test]` runs on one thread. A guest waiting on a provider is a suspended future,
/// not a blocked thread: the provider answers only once two calls are inside it at once, which
/// on one thread happens only if the first guest's wait lets the second call run.
#[tokio::test]
async fn guests_waiting_on_providers_share_one_thread() {
    let host = host(Limits::default());
    let provider = Arc::new(Echoing {
        rendezvous: Some(tokio::sync::Barrier::new(2)),
        ..Echoing::default()
    });
    let actor = linked_kv_actor(&host, provider.clone()).await;

    let (one, two) = (cmd(b'h', 1), cmd(b'h', 2));
    let both = async {
        tokio::join!(
            host.invoke(&actor, "run", &one),
            host.invoke(&actor, "run", &two)
        )
    };
    let (first, second) = tokio::time::timeout(Duration::from_secs(10), both)
        .await
        .expect("the second call never reached the provider: the first blocked the thread");
    assert_eq!(first.unwrap(), b"KeyValue.Get via kv");
    assert_eq!(second.unwrap(), b"KeyValue.Get via kv");
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

/// wasmCloud 0.x actors import the waPC functions from `wasmbus` and answer the health check
/// with payload `0x80` (an empty map).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmcloud_0x_actor_imports_wasmbus_and_answers_health() {
    let bytes = std::fs::read(crate::signed_actor("kvcounter-wasmbus")).unwrap();
    let module = wasmtime::Module::new(&wasmtime::Engine::default(), &bytes).unwrap();
    let namespaces: std::collections::BTreeSet<&str> =
        module.imports().map(|i| i.module()).collect();
    assert_eq!(namespaces, ["wasmbus"].into(), "imports: {namespaces:?}");

    let host = host(Limits::default());
    let actor = host.start_actor(&bytes).await.unwrap();
    assert_eq!(actor.name, "kvcounter-wasmbus");
    let answer = host
        .invoke(&actor.id, weft_contracts::actor::HEALTH_REQUEST, &[0x80])
        .await
        .unwrap();
    let health: weft_contracts::actor::HealthCheckResponse =
        weft_contracts::decode(&answer).unwrap();
    assert!(health.healthy, "{health:?}");
}

/// `wasmcloud:builtin:logging` is served by the host itself, with no link, to actors signed for
/// it, and refused to others like any capability.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_is_served_by_the_host_to_actors_signed_for_it() {
    let host = host(Limits::default());
    let logger = host
        .start_actor(&guest(&[contracts::LOGGING]))
        .await
        .unwrap()
        .id;
    // The guest answers "boom" when its host call succeeded.
    assert_eq!(
        host.invoke(&logger, "run", &cmd(b'w', 0)).await.unwrap(),
        b"boom"
    );

    let silent = host.start_actor(&guest(&[])).await.unwrap().id;
    let err = host
        .invoke(&silent, "run", &cmd(b'w', 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is not signed for capability wasmcloud:builtin:logging"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_load_from_files_and_a_missing_file_is_named() {
    let host = host(Limits::default());
    let identity = host
        .start_actor_file(&crate::signed_actor("echo"), Some(2))
        .await
        .unwrap();
    assert_eq!(
        host.invoke(&identity.id, "echo", b"file").await.unwrap(),
        b"file"
    );
    let err = host
        .start_actor_file(std::path::Path::new("/nonexistent/a.wasm"), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read actor file /nonexistent/a.wasm"),
        "{err}"
    );

    // Neither a device nor a FIFO is read (the one would fill memory, the other wait for a
    // writer for good), and a file over the module limit is read one byte past it at most.
    let err = host
        .start_actor_file(std::path::Path::new("/dev/zero"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.wasm");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let err = tokio::time::timeout(Duration::from_secs(5), host.start_actor_file(&fifo, None))
        .await
        .expect("a FIFO held the host")
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let small = Host::new(HostConfig {
        policy: LoadPolicy {
            limits: Limits {
                max_module_bytes: 1000,
                ..Limits::default()
            },
            ..LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap();
    let big = dir.path().join("big.wasm");
    std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
    let err = small.start_actor_file(&big, None).await.unwrap_err();
    assert!(err.to_string().contains("1001 bytes"), "{err}");
    assert_eq!(
        weft_host::read_module(&big, 1000).unwrap().len(),
        1001,
        "read one byte past the limit, not the whole file"
    );
}

/// The HTTP benchmark's actor answers what the native baseline answers, in the contract's
/// `HttpResponse`, whichever form of `HttpRequest` it is sent: it reads the named form in
/// place (the SDK's `http::serve_borrowed`) and decodes the others; a payload that is no
/// request is the guest's error, and the actor keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_actor_answers_hello_world() {
    use weft_contracts::httpserver::{HANDLE_REQUEST, HttpRequest, HttpResponse};
    let host = host(Limits::default());
    let bytes = std::fs::read(crate::signed_actor("hello")).unwrap();
    let actor = host.start_actor(&bytes).await.unwrap().id;
    let request = HttpRequest {
        method: "GET".into(),
        header: [("host".to_string(), vec!["example.com".to_string()])].into(),
        body: b"ignored".to_vec(),
        ..HttpRequest::default()
    };
    let named = weft_contracts::encode(&request).unwrap();
    let positional = rmp_serde::to_vec(&request).unwrap();
    let numbers = weft_contracts::encode(
        &serde_json::json!({"method": "GET", "header": {}, "body": [1, 2, 3]}),
    )
    .unwrap();
    for form in [&named, &positional, &numbers] {
        let answer = host.invoke(&actor, HANDLE_REQUEST, form).await.unwrap();
        let response: HttpResponse = weft_contracts::decode(&answer).unwrap();
        assert_eq!(
            (response.status_code, response.body.as_slice()),
            (200, b"Hello, world!\n".as_slice())
        );
        assert_eq!(response.header["content-type"], ["text/plain"]);
    }
    let garbage = host
        .invoke(&actor, HANDLE_REQUEST, b"\x93not a request")
        .await
        .unwrap_err();
    assert!(
        matches!(&garbage, InvokeError::Guest { error: GuestError::Guest(text), .. } if text.contains("HttpRequest")),
        "{garbage:?}"
    );
    assert!(host.invoke(&actor, HANDLE_REQUEST, &named).await.is_ok());
}

/// An embedder's rule: no actor may reach key-value on this host.
#[derive(Debug)]
struct NoKeyValue;

impl weft_host::CallPolicy for NoKeyValue {
    fn check(&self, call: &weft_host::HostCall<'_>) -> Result<(), String> {
        if call.contract == contracts::KEYVALUE {
            return Err("key-value is closed on this host".into());
        }
        Ok(())
    }
}

/// The policy layer refuses what the claims allow when the host's own rules say no: the
/// provider never sees the call, the actor gets the reason, and other contracts still pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_policy_refuses_what_the_claims_allow() {
    let host = Host::new(HostConfig {
        call_policy: Some(Arc::new(NoKeyValue)),
        ..HostConfig::default()
    })
    .unwrap();
    let provider = Arc::new(Echoing::default());
    let actor = linked_kv_actor(&host, provider.clone()).await;
    let err = host
        .invoke(&actor, "run", &cmd(b'h', 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "the host's policy refuses actor {actor}'s call to wasmcloud:keyvalue (KeyValue.Get): \
             key-value is closed on this host"
        )),
        "{err}"
    );
    assert_eq!(provider.calls.load(Ordering::SeqCst), 0);
    // Calls that reach no contract are untouched.
    assert_eq!(
        host.invoke(&actor, "run", &cmd(b'e', 3)).await.unwrap(),
        cmd(b'e', 3)
    );
}

/// An actor is allowed between 1 instance and the engine's slots (shared by every actor):
/// more, or none, is refused before anything changes, naming the slots; the bounds
/// themselves are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_counts_stay_within_the_engine_s_slots() {
    let host = Host::new(HostConfig {
        engine: EngineConfig {
            instance_slots: 50,
            ..EngineConfig::default()
        },
        ..HostConfig::default()
    })
    .unwrap();
    let refused = host
        .start_actor_with(&guest(&[]), Some(1_000_000))
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            HostError::Instances {
                asked: 1_000_000,
                slots: 50
            }
        ),
        "{refused}"
    );
    assert!(host.actors().is_empty());
    let actor = host
        .start_actor_with(&guest(&[]), Some(50))
        .await
        .unwrap()
        .id;
    for asked in [0, 51, usize::MAX] {
        let refused = host.scale_actor(&actor, asked).unwrap_err().to_string();
        assert!(refused.contains("50 instance slots"), "{refused}");
    }
    assert_eq!(host.actor_pool(&actor).unwrap().limits().max_instances, 50);
    host.scale_actor(&actor, 1).unwrap();
    assert_eq!(host.actor_pool(&actor).unwrap().limits().max_instances, 1);
    assert!(host.invoke(&actor, "run", &cmd(b'e', 1)).await.is_ok());
}

/// Links are bounded in number per host and in size each (DESIGN, Limits): past either a put
/// is refused before the provider hears of it, and the links already put keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_per_host_and_bytes_per_link_obeyed_and_enforced() {
    use weft_host::links::LinkLimits;
    let host = Host::new(HostConfig {
        links: LinkLimits {
            max_links: 3,
            max_value_bytes: 1024,
            max_link_bytes: 2048,
        },
        ..HostConfig::default()
    })
    .unwrap();
    let provider = Arc::new(Echoing::default());
    host.add_provider("p", provider.clone()).await.unwrap();
    let link = |actor: &str, values: &[(&str, usize)]| LinkDefinition {
        actor_id: actor.into(),
        contract_id: contracts::KEYVALUE.into(),
        link_name: "default".into(),
        provider_id: "p".into(),
        values: values
            .iter()
            .map(|(key, len)| (key.to_string(), "v".repeat(*len)))
            .collect(),
    };
    // Obeyed: a value at its bound, a link at its bound.
    host.put_link(link("MA1", &[("a", 1024)])).await.unwrap();
    host.put_link(link("MA2", &[("a", 1000), ("b", 1000)]))
        .await
        .unwrap();
    let refused = host
        .put_link(link("MA3", &[("big", 1025)]))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, HostError::LinkTooLarge { .. }),
        "{refused}"
    );
    assert!(
        refused
            .to_string()
            .contains("its value \"big\" has 1025 bytes, over the 1024 a link value may have"),
        "{refused}"
    );
    let refused = host
        .put_link(link("MA3", &[("a", 1000), ("b", 1000), ("c", 100)]))
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("over the 2048 a link may have"),
        "{refused}"
    );
    host.put_link(link("MA3", &[])).await.unwrap();
    let refused = host.put_link(link("MA4", &[])).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("already holds 3 links, its most"),
        "{refused}"
    );
    // A link already held may be put again (changed) at the bound; the provider heard of
    // the three links put, twice of MA3's, and of none refused.
    host.put_link(link("MA3", &[("x", 10)])).await.unwrap();
    assert_eq!(host.links().len(), 3);
    assert_eq!(
        provider.events.lock().unwrap().as_slice(),
        ["put default", "put default", "put default", "put default"]
    );
    host.delete_link("MA1", contracts::KEYVALUE, "default")
        .await
        .unwrap();
    host.put_link(link("MA4", &[])).await.unwrap();
}

/// An actor of wasmCloud 0.15–0.18's generation (a `wapc_init`, no wasmbus mark) that asks for
/// an operation its generation did not have is told the ones it had, naming its ABI; its waSCC
/// link id reaches the same provider; and an actor of today's generation is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_actor_asking_for_an_operation_its_generation_lacks_is_told_which_it_has() {
    let host = host(Limits::default());
    host.add_provider("kv", Arc::new(Echoing::default()))
        .await
        .unwrap();
    let older = crate::GUEST.replace(
        r#"(func (export "__wasmbus_rpc_version") (result i32) i32.const 1)"#,
        r#"(func (export "wapc_init"))"#,
    );
    assert_ne!(older, crate::GUEST);
    let older = host
        .start_actor(&crate::sign(
            &wat::parse_str(&older).unwrap(),
            &[contracts::KEYVALUE],
        ))
        .await
        .unwrap()
        .id;
    // Linked by waSCC's contract id: the same provider, under today's id.
    host.put_link(LinkDefinition {
        contract_id: "wascc:keyvalue".into(),
        ..kv_link(&older)
    })
    .await
    .unwrap();
    assert!(
        host.links().contains(&kv_link(&older)),
        "{:?}",
        host.links()
    );

    let err = host
        .invoke(&older, "run", &cmd(b'h', 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "(wasmCloud 0.15–0.18 ABI): wasmCloud 0.15–0.18 actors have no operation \
             \"KeyValue.Get\" on wasmcloud:keyvalue; the operations it has are Get, Add"
        ),
        "{err}"
    );

    let current = host
        .start_actor(&guest(&[contracts::KEYVALUE]))
        .await
        .unwrap()
        .id;
    host.put_link(kv_link(&current)).await.unwrap();
    assert_eq!(
        host.invoke(&current, "run", &cmd(b'h', 1)).await.unwrap(),
        b"KeyValue.Get via kv"
    );
}
