//! Runtime benchmarks, each printed with its ratio to a baseline measured in the same run:
//! (a) `Host::invoke(echo, 100 B)` vs a raw `wapc::WapcHost::call` on wasmtime-provider 2.25
//!     with the same module (target ≤ 1.0×), by criterion back to back and paired (rounds
//!     alternating the two, the median of the rounds' ratios);
//! (b) starting an instance from a cached module (`WapcInstance::new`: ready for calls, from
//!     the start-up snapshot where there is one) vs bare wasmtime `InstancePre::instantiate` of
//!     the same module on the same wasmtime engine (target ≤ 1.5×);
//! (c) swap latency: `Host::update_actor` to a new version whose code is already compiled,
//!     from new bytes to new calls on the new version (target ≤ 1 ms);
//! (i) an actor-to-actor call between two local actors: invoking a relay actor that calls
//!     echo by its module key and answers what echo said, less invoking the same relay
//!     answering its request itself (what the call from actor to actor adds), vs invoking echo
//!     directly (target ≤ 2×);
//! (j) serving an older-generation actor: `HttpServer.HandleRequest` on a hello actor built
//!     with waSCC's and with wasmCloud 0.15–0.18's SDK (the host translating the request and
//!     the answer) vs the same hello built with Weft's wasmbus SDK on the same owned contract
//!     types (`hello-owned`), paired (target ≤ 1.1×); and that hello vs `hello`, the same
//!     answer from the SDK's borrowed request (`http::serve_borrowed`), paired: what reading
//!     the request in place saves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use criterion::Criterion;
use std::sync::Arc;
use std::time::Duration;
use wascap::{Actor, Claims, KeyRole};
use weft_host::engine::{EngineConfig, WasmEngine};
use weft_host::instance::WapcInstance;
use weft_host::invoke::{HostCall, HostCalls, InvokeError};
use weft_host::limits::Limits;
use weft_host::{Host, HostConfig, UpdateOptions};

fn sign(code: &[u8], rev: i32, account: &wascap::KeyPair, module: &wascap::KeyPair) -> Vec<u8> {
    let claims = Claims::new(
        account.public_key(),
        module.public_key(),
        Actor {
            name: Some("echo".into()),
            rev: Some(rev),
            ..Actor::default()
        },
    );
    wascap::embed_claims(code, &claims, account).unwrap()
}

/// Rounds and calls per round of (a)'s paired measurement.
const PAIRED_ROUNDS: usize = 40;
const PAIRED_CALLS: usize = 5_000;

struct NoHostCalls;

#[weft_provider_sdk::async_trait]
impl HostCalls for NoHostCalls {
    async fn host_call(&self, _: HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        Err(InvokeError::BadRequest(
            "no host calls in this benchmark".into(),
        ))
    }
    fn console_log(&self, _: &str, _: &str) {}
}

fn main() {
    let echo = weft_bench::unsigned_actor("echo").unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let (account, module_key) = (
        KeyRole::Account.generate().unwrap(),
        KeyRole::Module.generate().unwrap(),
    );
    let signed = sign(&echo, 1, &account, &module_key);
    let output = weft_bench::target_dir().join("criterion");
    let mut c = Criterion::default()
        .output_directory(&output)
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // (a) invoke vs raw WapcHost::call
    let payload = vec![7u8; 100];
    let raw_engine = wasmtime_provider::WasmtimeEngineProviderBuilder::new()
        .module_bytes(&signed)
        .build()
        .unwrap();
    let raw = wapc::WapcHost::new(Box::new(raw_engine), None).unwrap();
    assert_eq!(raw.call("echo", &payload).unwrap(), payload);
    let host = runtime
        .block_on(async { Host::new(HostConfig::default()) })
        .unwrap();
    let actor = runtime.block_on(host.start_actor(&signed)).unwrap().id;
    assert_eq!(
        runtime
            .block_on(host.invoke(&actor, "echo", &payload))
            .unwrap(),
        payload
    );
    {
        let mut group = c.benchmark_group("invoke_echo_100B");
        group.bench_function("raw_wapc_call", |b| {
            b.iter(|| raw.call("echo", &payload).unwrap())
        });
        group.bench_function("weft_invoke", |b| {
            b.to_async(&runtime)
                .iter(|| async { host.invoke(&actor, "echo", &payload).await.unwrap() })
        });
        // How providers call: from a task on a runtime worker.
        group.bench_function("weft_invoke_from_task", |b| {
            b.to_async(&runtime).iter_custom(|iters| {
                let (host, actor, payload) = (host.clone(), actor.clone(), payload.clone());
                async move {
                    tokio::spawn(async move {
                        let start = std::time::Instant::now();
                        for _ in 0..iters {
                            host.invoke(&actor, "echo", &payload).await.unwrap();
                        }
                        start.elapsed()
                    })
                    .await
                    .unwrap()
                }
            })
        });
        group.finish();
    }
    // (a) paired: rounds alternating the two, robust to the machine's drift.
    let paired = runtime.block_on(weft_bench::paired_ratio(
        PAIRED_ROUNDS,
        PAIRED_CALLS,
        || async {
            raw.call("echo", &payload).unwrap();
        },
        || async {
            host.invoke(&actor, "echo", &payload).await.unwrap();
        },
    ));

    // (b) instance start from a cached module vs bare InstancePre::instantiate
    let engine = WasmEngine::new(EngineConfig::default()).unwrap();
    let hash = wascap::module_hash(&signed).unwrap();
    let prepared = runtime
        .block_on(engine.prepare(&hash, &signed, Limits::default()))
        .unwrap();
    println!("echo's start-up: {:?}", prepared.start_up);
    let handler: Arc<dyn HostCalls> = Arc::new(NoHostCalls);
    let instance_of: Arc<str> = "echo".into();
    // The same wasmtime engine (pooling allocator, epochs), so the ratio is what Weft adds.
    let bare_engine = engine.wasmtime_engine().unwrap().clone();
    let bare_module = wasmtime::Module::new(&bare_engine, &signed).unwrap();
    let mut bare_linker = wasmtime::Linker::<()>::new(&bare_engine);
    bare_linker
        .define_unknown_imports_as_traps(&bare_module)
        .unwrap();
    let bare_pre = bare_linker.instantiate_pre(&bare_module).unwrap();
    {
        let mut group = c.benchmark_group("instance_start");
        group.bench_function("bare_wasmtime_instantiate", |b| {
            b.iter(|| {
                let mut store = wasmtime::Store::new(&bare_engine, ());
                store.set_epoch_deadline(1_000);
                bare_pre.instantiate(&mut store).unwrap();
            })
        });
        // Not a target, a diagnosis: the same bare instantiate plus the guest's own `wapc_init`,
        // which every waPC instance must run and which touches fresh memory.
        group.bench_function("bare_wasmtime_instantiate_and_wapc_init", |b| {
            b.iter(|| {
                let mut store = wasmtime::Store::new(&bare_engine, ());
                store.set_epoch_deadline(1_000);
                let instance = bare_pre.instantiate(&mut store).unwrap();
                let init = instance
                    .get_typed_func::<(), ()>(&mut store, "wapc_init")
                    .unwrap();
                init.call(&mut store, ()).unwrap();
            })
        });
        let log = weft_host::guest_log::LogBudget::new(64 << 10, 1 << 20);
        group.bench_function("weft_instance_new", |b| {
            b.to_async(&runtime).iter(|| async {
                WapcInstance::new(
                    prepared.pre(),
                    Limits::default(),
                    instance_of.clone(),
                    handler.clone(),
                    log.clone(),
                    prepared.start_up,
                )
                .await
                .unwrap()
            })
        });
        group.finish();
    }

    // (i) actor to actor: a relay (no capabilities) calling echo by its module key.
    let relay = sign_relay(Some(&actor), &account);
    let relay = runtime.block_on(host.start_actor(&relay)).unwrap().id;
    let mirror = sign_relay(None, &account);
    let mirror = runtime.block_on(host.start_actor(&mirror)).unwrap().id;
    assert_eq!(
        runtime
            .block_on(host.invoke(&relay, "relay", &payload))
            .unwrap(),
        payload
    );
    {
        let mut group = c.benchmark_group("actor_to_actor_100B");
        group.bench_function("direct_invoke_echo", |b| {
            b.to_async(&runtime)
                .iter(|| async { host.invoke(&actor, "echo", &payload).await.unwrap() })
        });
        group.bench_function("relay_calling_echo", |b| {
            b.to_async(&runtime)
                .iter(|| async { host.invoke(&relay, "relay", &payload).await.unwrap() })
        });
        group.bench_function("relay_answering_itself", |b| {
            b.to_async(&runtime)
                .iter(|| async { host.invoke(&mirror, "relay", &payload).await.unwrap() })
        });
        group.finish();
    }

    // (j) older generations: the same hello in each generation's SDK, called as the HTTP
    // server provider calls it.
    let request = weft_contracts::encode(&weft_contracts::httpserver::HttpRequest {
        method: "GET".into(),
        path: "/".into(),
        query_string: String::new(),
        header: [("host".to_string(), vec!["localhost".to_string()])].into(),
        body: Vec::new(),
    })
    .unwrap();
    let hellos: Vec<(&str, String)> = ["hello-owned", "wasmcloud-hello", "wascc-hello", "hello"]
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(weft_bench::target_dir().join("actors").join(format!("{name}.wasm")))
                .unwrap_or_else(|e| {
                    eprintln!("{name}: {e}; build the actors first (scripts/test.sh, or weft build --workspace actors/legacy)");
                    std::process::exit(2)
                });
            let id = runtime.block_on(host.start_actor(&bytes)).unwrap().id;
            let answer = runtime
                .block_on(host.invoke(&id, weft_contracts::httpserver::HANDLE_REQUEST, &request))
                .unwrap();
            let answer: weft_contracts::httpserver::HttpResponse =
                weft_contracts::decode(&answer).unwrap();
            assert_eq!((answer.status_code, answer.body.as_slice()), (200, &b"Hello, world!\n"[..]), "{name}");
            (name, id)
        })
        .collect();
    // `hellos` in the order above: the owned hello is every comparison's baseline.
    let (owned_id, borrowed_id) = (&hellos[0].1, &hellos[3].1);
    let borrowed = runtime.block_on(weft_bench::paired_ratio(
        PAIRED_ROUNDS / 2,
        PAIRED_CALLS / 2,
        || handle_request(&host, owned_id, &request),
        || handle_request(&host, borrowed_id, &request),
    ));
    let older: Vec<_> = hellos[1..3]
        .iter()
        .map(|(name, older)| {
            let paired = runtime.block_on(weft_bench::paired_ratio(
                PAIRED_ROUNDS / 2,
                PAIRED_CALLS / 2,
                || handle_request(&host, owned_id, &request),
                || handle_request(&host, older, &request),
            ));
            // The same actor called in its own terms, as if the provider spoke its generation:
            // what the translation itself costs.
            let own = weft_contracts::encode(&serde_json::json!({
                "method": "GET", "path": "/", "queryString": "",
                "header": {"host": "localhost"}, "body": [],
            }))
            .unwrap();
            let untranslated = runtime.block_on(weft_bench::paired_ratio(
                PAIRED_ROUNDS / 2,
                PAIRED_CALLS / 2,
                || async {
                    host.invoke(older, "HandleRequest", &own).await.unwrap();
                },
                || async {
                    host.invoke(older, weft_contracts::httpserver::HANDLE_REQUEST, &request)
                        .await
                        .unwrap();
                },
            ));
            (*name, paired, untranslated)
        })
        .collect();

    // (c) swap latency, compile excluded: the same code re-signed, revision not lower.
    let next = sign(&echo, 2, &account, &module_key);
    {
        let mut group = c.benchmark_group("swap");
        group.bench_function("weft_update_actor_cached_code", |b| {
            b.to_async(&runtime).iter(|| async {
                host.update_actor(&actor, &next, UpdateOptions::default())
                    .await
                    .unwrap()
            })
        });
        group.finish();
    }
    c.final_summary();

    let mean = |group: &str, bench: &str| weft_bench::mean_ns(&output, group, bench);
    println!("\n== Weft benchmark ratios (same run) ==");
    if let (Some(weft), Some(raw)) = (
        mean("invoke_echo_100B", "weft_invoke"),
        mean("invoke_echo_100B", "raw_wapc_call"),
    ) {
        println!(
            "(a) invoke echo 100 B: weft {:.2} µs, raw WapcHost::call {:.2} µs, ratio {:.2}× (target ≤ 1.0×)",
            weft / 1e3,
            raw / 1e3,
            weft / raw
        );
    }
    println!(
        "    paired, {PAIRED_ROUNDS} rounds of {PAIRED_CALLS} calls each way: median weft {:.2} µs, raw {:.2} µs, median ratio {:.2}× (rounds' ratios {:.2}–{:.2}×)",
        paired.weft_us, paired.raw_us, paired.ratio, paired.lowest, paired.highest
    );
    if let (Some(task), Some(raw)) = (
        mean("invoke_echo_100B", "weft_invoke_from_task"),
        mean("invoke_echo_100B", "raw_wapc_call"),
    ) {
        println!(
            "    from a task on a runtime worker: weft {:.2} µs, ratio {:.2}×",
            task / 1e3,
            task / raw
        );
    }
    if let (Some(weft), Some(bare)) = (
        mean("instance_start", "weft_instance_new"),
        mean("instance_start", "bare_wasmtime_instantiate"),
    ) {
        println!(
            "(b) instance start: weft {:.1} µs, bare InstancePre::instantiate {:.1} µs, ratio {:.2}× (target ≤ 1.5×)",
            weft / 1e3,
            bare / 1e3,
            weft / bare
        );
    }
    if let Some(init) = mean("instance_start", "bare_wasmtime_instantiate_and_wapc_init") {
        println!(
            "    bare instantiate + the guest's wapc_init: {:.1} µs",
            init / 1e3
        );
    }
    if let Some(swap) = mean("swap", "weft_update_actor_cached_code") {
        println!(
            "(c) swap latency, compile excluded: {:.3} ms (target ≤ 1 ms)",
            swap / 1e6
        );
    }
    if let (Some(relayed), Some(alone), Some(direct)) = (
        mean("actor_to_actor_100B", "relay_calling_echo"),
        mean("actor_to_actor_100B", "relay_answering_itself"),
        mean("actor_to_actor_100B", "direct_invoke_echo"),
    ) {
        println!(
            "(i) actor-to-actor call, 100 B: invoking the relay that calls echo {:.2} µs, the relay answering itself {:.2} µs, so the call adds {:.2} µs; echo invoked directly {:.2} µs: ratio {:.2}× (target ≤ 2×; the whole relayed invoke is {:.2}×)",
            relayed / 1e3,
            alone / 1e3,
            (relayed - alone) / 1e3,
            direct / 1e3,
            (relayed - alone) / direct,
            relayed / direct
        );
    }
    println!(
        "(j′) hello on the SDK's borrowed request (http::serve_borrowed) vs on the owned contract types (http::serve), paired ({} rounds of {} calls): {:.2} µs vs {:.2} µs, median ratio {:.2}× (rounds {:.2}–{:.2}×)",
        PAIRED_ROUNDS / 2,
        PAIRED_CALLS / 2,
        borrowed.weft_us,
        borrowed.raw_us,
        borrowed.ratio,
        borrowed.lowest,
        borrowed.highest
    );
    for (name, paired, untranslated) in &older {
        println!(
            "(j) {name} vs the same hello as a wasmbus actor, HttpServer.HandleRequest, paired ({} rounds of {} calls): {:.2} µs vs {:.2} µs, median ratio {:.2}× (rounds {:.2}–{:.2}×; target ≤ 1.1×)",
            PAIRED_ROUNDS / 2,
            PAIRED_CALLS / 2,
            paired.weft_us,
            paired.raw_us,
            paired.ratio,
            paired.lowest,
            paired.highest
        );
        println!(
            "    of which the host's translation: {name} called in its own terms {:.2} µs, through the translation {:.2} µs, ratio {:.2}×",
            untranslated.raw_us, untranslated.weft_us, untranslated.ratio
        );
    }
}

/// `HttpServer.HandleRequest` on `actor`, which must answer.
async fn handle_request(host: &Host, actor: &str, request: &[u8]) {
    host.invoke(actor, weft_contracts::httpserver::HANDLE_REQUEST, request)
        .await
        .unwrap();
}

/// A relay actor, signed with no capabilities by `account`: every call it gets, it makes to
/// actor `target` (operation `echo`, by module key) and answers with what that said; with no
/// target, it answers with the request itself (the same module, less the call).
fn sign_relay(target: Option<&str>, account: &wascap::KeyPair) -> Vec<u8> {
    let code = weft_bench::relay_module(target.map(|target| (target, "echo")));
    let claims = Claims::new(
        account.public_key(),
        KeyRole::Module.generate().unwrap().public_key(),
        Actor {
            name: Some("relay".into()),
            ..Actor::default()
        },
    );
    wascap::embed_claims(&code, &claims, account).unwrap()
}
