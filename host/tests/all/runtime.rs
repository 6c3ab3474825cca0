//! The runtime: loading, invoking, and every limit obeyed and enforced, with the misbehaving
//! guest of `guest.wat` (STYLE.md §11, §12).

use crate::{GUEST, cmd, guest, sign, signed_actor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use wascap::{KeyRole, VerifyOptions, contracts};
use weft_host::GuestError;
use weft_host::actor::{ActorPool, LoadError, LoadPolicy};
use weft_host::engine::{EngineConfig, WasmEngine};
use weft_host::invoke::{HostCall, HostCalls, InvokeError};
use weft_host::limits::Limits;
use weft_provider_sdk::async_trait;

fn engine() -> &'static WasmEngine {
    static ENGINE: OnceLock<WasmEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        WasmEngine::new(EngineConfig {
            instance_slots: 200,
            ..EngineConfig::default()
        })
        .unwrap()
    })
}

/// What reached the dispatcher: actor, link name, contract, operation, payload length.
type Seen = (String, String, String, String, usize);

/// A dispatcher that records what reached it and answers with the payload's length.
#[derive(Default)]
struct Recorder {
    calls: AtomicUsize,
    last: Mutex<Option<Seen>>,
}

#[async_trait]
impl HostCalls for Recorder {
    async fn host_call(&self, call: HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.last.lock().unwrap() = Some((
            call.actor.to_string(),
            call.link_name.to_string(),
            call.contract.to_string(),
            call.operation.to_string(),
            call.payload.len(),
        ));
        Ok(format!("got {} bytes", call.payload.len()).into_bytes())
    }
}

async fn load(bytes: &[u8], limits: Limits) -> (ActorPool, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let policy = LoadPolicy {
        limits,
        ..LoadPolicy::default()
    };
    (
        ActorPool::load(engine(), bytes, &policy, recorder.clone())
            .await
            .unwrap(),
        recorder,
    )
}

async fn call(pool: &ActorPool, command: u8, arg: i32) -> Result<Vec<u8>, GuestError> {
    pool.invoke("run", &cmd(command, arg))
        .await
        .map_err(|e| e.guest_error().unwrap().clone())
}

async fn served_count(pool: &ActorPool) -> i32 {
    let bytes = call(pool, b'c', 0).await.unwrap();
    i32::from_le_bytes(bytes.try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_actor_built_by_the_test_command_answers() {
    let bytes = std::fs::read(signed_actor("echo")).unwrap();
    let (pool, _) = load(&bytes, Limits::default()).await;
    assert_eq!(pool.identity().name, "echo");
    assert!(pool.identity().id.starts_with('M'));
    let payload: Vec<u8> = (0..100u8).collect();
    assert_eq!(pool.invoke("echo", &payload).await.unwrap(), payload);
    assert_eq!(
        pool.invoke("echo", b"").await.unwrap(),
        b"",
        "empty payloads are legal"
    );
    let err = pool.invoke("nope", b"x").await.unwrap_err();
    assert!(
        matches!(err.guest_error(), Some(GuestError::Guest(_))),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmbus_namespace_guests_run_like_wapc_ones() {
    let wasmbus = GUEST.replace("(import \"wapc\"", "(import \"wasmbus\"");
    let (pool, _) = load(
        &sign(&wat::parse_str(&wasmbus).unwrap(), &[]),
        Limits::default(),
    )
    .await;
    assert_eq!(call(&pool, b'e', 7).await.unwrap(), cmd(b'e', 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_obeyed_and_enforced_while_others_keep_serving() {
    let limits = Limits {
        call_deadline_ms: 200,
        ..Limits::default()
    };
    let (looping, _) = load(&guest(&[]), limits).await;
    let (echo, _) = load(&guest(&[]), limits).await;
    assert_eq!(
        call(&looping, b'e', 1).await.unwrap(),
        cmd(b'e', 1),
        "a quick call is obeyed"
    );

    let started = Instant::now();
    let stuck = tokio::spawn(async move { (call(&looping, b'l', 0).await, started.elapsed()) });
    // While the loop runs, another actor answers.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..20 {
        assert_eq!(call(&echo, b'e', 2).await.unwrap(), cmd(b'e', 2));
    }
    let (result, elapsed) = stuck.await.unwrap();
    assert_eq!(
        result.unwrap_err(),
        GuestError::DeadlineExceeded { deadline_ms: 200 }
    );
    assert!(
        elapsed < Duration::from_millis(400),
        "loop ran {elapsed:?}, over 2× the deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_obeyed_and_enforced() {
    let limits = Limits {
        max_memory_bytes: 2 << 20,
        ..Limits::default()
    };
    let (pool, _) = load(&guest(&[]), limits).await;
    // 1 page + 16 pages = 1.06 MiB: inside the 2 MiB cap.
    assert!(call(&pool, b'a', 16).await.is_ok());
    let err = call(&pool, b'a', 64).await.unwrap_err();
    assert!(
        matches!(err, GuestError::MemoryLimit { limit: 2097152, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("over its limit of 2097152 bytes"),
        "{err}"
    );
    assert_eq!(
        served_count(&pool).await,
        1,
        "a fresh instance serves after the trap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_overflow_traps_the_guest_only() {
    let (pool, _) = load(&guest(&[]), Limits::default()).await;
    let err = call(&pool, b'r', 0).await.unwrap_err();
    assert!(matches!(err, GuestError::Trap(_)), "{err}");
    assert!(call(&pool, b'e', 3).await.is_ok());
}

/// wasmtime-provider 2.25 panics the host on exactly this call: `__guest_response(65500, 1000)`
/// with 64 KiB of memory slices past the end of guest memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_response_past_the_end_of_memory_traps_instead_of_panicking() {
    let (pool, _) = load(&guest(&[]), Limits::default()).await;
    let err = call(&pool, b'p', 0).await.unwrap_err();
    assert_eq!(
        err,
        GuestError::OutOfBounds {
            what: "response",
            ptr: 65500,
            len: 1000,
            memory: 65536
        }
    );
    assert!(call(&pool, b'e', 4).await.is_ok(), "the host serves on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pointers_to_every_kind_of_import_trap() {
    let (pool, _) = load(&guest(&[]), Limits::default()).await;
    let err = call(&pool, b'q', 0).await.unwrap_err();
    assert!(
        matches!(
            err,
            GuestError::OutOfBounds {
                what: "request buffer",
                ..
            }
        ),
        "{err}"
    );
    let err = call(&pool, b'L', 0).await.unwrap_err();
    assert!(
        matches!(
            err,
            GuestError::OutOfBounds {
                what: "log line",
                ..
            }
        ),
        "{err}"
    );
    let err = call(&pool, b'G', 0).await.unwrap_err();
    assert!(
        matches!(
            err,
            GuestError::OutOfBounds {
                what: "error message",
                ..
            }
        ),
        "{err}"
    );
    // A length of -1 is 4 GiB - 1 as an unsigned wasm32 length: refused before any copy.
    let err = call(&pool, b'n', 0).await.unwrap_err();
    assert!(
        matches!(
            err,
            GuestError::TooLarge {
                what: "response",
                len: 4294967295,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(served_count(&pool).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pointers_around_host_calls_trap_before_or_after_the_provider() {
    let (pool, recorder) = load(&guest(&[contracts::KEYVALUE]), Limits::default()).await;
    let err = call(&pool, b'B', 0).await.unwrap_err();
    assert!(
        matches!(
            err,
            GuestError::OutOfBounds {
                what: "host call binding",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        recorder.calls.load(Ordering::SeqCst),
        0,
        "a call with a bad binding reached dispatch"
    );
    let err = call(&pool, b'W', 4).await.unwrap_err();
    assert!(
        matches!(
            err,
            GuestError::OutOfBounds {
                what: "host response buffer",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        served_count(&pool).await,
        1,
        "the host serves on with a fresh instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_size_limit_obeyed_and_enforced() {
    let limits = Limits {
        max_response_bytes: 1024,
        ..Limits::default()
    };
    let (pool, _) = load(&guest(&[]), limits).await;
    assert_eq!(call(&pool, b'R', 1024).await.unwrap().len(), 1024);
    let err = call(&pool, b'R', 1025).await.unwrap_err();
    assert_eq!(
        err,
        GuestError::TooLarge {
            what: "response",
            len: 1025,
            limit: 1024
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_call_size_limit_obeyed_and_enforced() {
    let limits = Limits {
        max_host_call_bytes: 1024,
        ..Limits::default()
    };
    let (pool, recorder) = load(&guest(&[contracts::KEYVALUE]), limits).await;
    assert_eq!(call(&pool, b'h', 1024).await.unwrap(), b"got 1024 bytes");
    let err = call(&pool, b'h', 1025).await.unwrap_err();
    assert_eq!(
        err,
        GuestError::TooLarge {
            what: "host call payload",
            len: 1025,
            limit: 1024
        }
    );
    assert_eq!(
        recorder.calls.load(Ordering::SeqCst),
        1,
        "the oversized call reached no provider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_size_limit_obeyed_and_enforced() {
    let bytes = guest(&[]);
    let exact = Limits {
        max_module_bytes: bytes.len(),
        ..Limits::default()
    };
    load(&bytes, exact).await;
    let policy = LoadPolicy {
        limits: Limits {
            max_module_bytes: bytes.len() - 1,
            ..Limits::default()
        },
        ..LoadPolicy::default()
    };
    let err = ActorPool::load(engine(), &bytes, &policy, Arc::new(Recorder::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_call_without_the_capability_is_denied_before_dispatch() {
    let (pool, recorder) = load(&guest(&[contracts::HTTP_SERVER]), Limits::default()).await;
    let err = call(&pool, b'h', 3).await.unwrap_err();
    let GuestError::Guest(message) = &err else {
        panic!("expected the guest to relay the denial: {err}")
    };
    assert!(
        message.contains(&format!(
            "actor {} (guest) is not signed for capability wasmcloud:keyvalue; re-sign it with \
             `weft claims sign --cap wasmcloud:keyvalue`",
            pool.identity().id
        )),
        "{message}"
    );
    assert_eq!(
        recorder.calls.load(Ordering::SeqCst),
        0,
        "a provider saw a denied call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_call_with_the_capability_reaches_dispatch() {
    let (pool, recorder) = load(&guest(&[contracts::KEYVALUE]), Limits::default()).await;
    assert_eq!(call(&pool, b'h', 5).await.unwrap(), b"got 5 bytes");
    let last = recorder.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        last,
        (
            pool.identity().id.clone(),
            "default".to_string(),
            "wasmcloud:keyvalue".to_string(),
            "KeyValue.Get".to_string(),
            5
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trapped_instances_are_discarded_and_clean_ones_reused() {
    let limits = Limits {
        call_deadline_ms: 50,
        ..Limits::default()
    };
    let (pool, _) = load(&guest(&[contracts::KEYVALUE]), limits).await;
    assert_eq!(served_count(&pool).await, 1);
    assert_eq!(served_count(&pool).await, 2, "a clean instance is reused");
    assert_eq!(
        call(&pool, b'g', 0).await.unwrap_err(),
        GuestError::Guest("boom".into())
    );
    assert_eq!(
        served_count(&pool).await,
        4,
        "a guest-reported error keeps the instance"
    );
    // A long error message is cut to its first 4 KiB, saying how much was cut.
    let GuestError::Guest(long) = call(&pool, b'E', 60_000).await.unwrap_err() else {
        panic!("not a guest error")
    };
    assert!(
        long.len() < weft_host::limits::MAX_GUEST_ERROR_BYTES + 64
            && long.ends_with(&format!("({} more bytes cut)", 60_000 - 4096)),
        "{} bytes: {}",
        long.len(),
        &long[long.len().saturating_sub(80)..]
    );
    assert!(call(&pool, b'l', 0).await.is_err());
    assert_eq!(
        served_count(&pool).await,
        1,
        "an interrupted instance was reused"
    );
    assert!(
        call(&pool, b't', 1).await.is_err(),
        "trap after a host call"
    );
    assert_eq!(
        served_count(&pool).await,
        1,
        "a trapped instance was reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_use_at_most_max_instances() {
    let limits = Limits {
        max_instances: 2,
        ..Limits::default()
    };
    let (pool, _) = load(&guest(&[]), limits).await;
    let pool = Arc::new(pool);
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { call(&pool, b'e', i).await })
        })
        .collect();
    for (i, handle) in calls.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().unwrap(), cmd(b'e', i as i32));
    }
    assert!(
        pool.idle_instances() <= 2,
        "{} instances idle",
        pool.idle_instances()
    );
}

/// `#[tokio::test]` is a current-thread runtime: guests run as futures, so one thread is enough.
#[tokio::test]
async fn invoke_works_on_a_current_thread_runtime() {
    let (pool, _) = load(&guest(&[]), Limits::default()).await;
    assert_eq!(call(&pool, b'e', 9).await.unwrap(), cmd(b'e', 9));
}

// ---- loading: claims enforced before anything runs ----

async fn load_err(bytes: &[u8], policy: LoadPolicy) -> LoadError {
    ActorPool::load(engine(), bytes, &policy, Arc::new(Recorder::default()))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn unsigned_modules_are_refused_unless_the_dev_switch_is_on() {
    let plain = wat::parse_str(GUEST).unwrap();
    let err = load_err(&plain, LoadPolicy::default()).await;
    assert!(err.to_string().contains("module is not signed"), "{err}");

    let policy = LoadPolicy {
        allow_unsigned: true,
        ..LoadPolicy::default()
    };
    let pool = ActorPool::load(engine(), &plain, &policy, Arc::new(Recorder::default()))
        .await
        .unwrap();
    assert!(pool.identity().unsigned && pool.identity().id.starts_with("unsigned:"));
}

#[tokio::test]
async fn tampered_and_untrusted_modules_are_refused() {
    let mut bytes = guest(&[]);
    let at = bytes.windows(4).position(|w| w == b"boom").unwrap();
    bytes[at] = b'z';
    let err = load_err(
        &bytes,
        LoadPolicy {
            allow_unsigned: true,
            ..LoadPolicy::default()
        },
    )
    .await;
    assert!(err.to_string().contains("changed after signing"), "{err}");

    let trusted = KeyRole::Account.generate().unwrap().public_key();
    let policy = LoadPolicy {
        verify: VerifyOptions::new().allow_issuers([trusted]),
        ..LoadPolicy::default()
    };
    let err = load_err(&guest(&[]), policy).await;
    assert!(
        err.to_string()
            .contains("not on this host's list of allowed issuers"),
        "{err}"
    );
}

/// An actor of code the engine holds is checked against that code by comparing bytes
/// (`WasmEngine::known_code`): changed code under that code's hash is still refused, and the
/// cache can only hold code under its own hash.
#[tokio::test]
async fn changed_code_claiming_the_hash_of_code_held_is_refused() {
    let engine = WasmEngine::new(EngineConfig {
        instance_slots: 8,
        ..EngineConfig::default()
    })
    .unwrap();
    let calls = || Arc::new(Recorder::default());
    let policy = LoadPolicy::default();
    let first = guest(&[]);
    let running = ActorPool::load(&engine, &first, &policy, calls())
        .await
        .unwrap();
    let hash = running.identity().module_hash.clone();
    assert_eq!(hash, wascap::module_hash(&first).unwrap());
    assert!(engine.known_code()(&hash).is_some());

    // Its own claims, one byte of code changed after signing.
    let mut changed = first.clone();
    let at = changed.windows(4).position(|w| w == b"boom").unwrap();
    changed[at] = b'z';
    let err = ActorPool::load(&engine, &changed, &policy, calls())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("changed after signing"), "{err}");
    assert_eq!(engine.cached_modules(), 1);

    // Another signer's actor of the same code loads, with the code's hash.
    let second = ActorPool::load(&engine, &guest(&[]), &policy, calls())
        .await
        .unwrap();
    assert_eq!(second.identity().module_hash, hash);
    assert_ne!(second.identity().id, running.identity().id);

    // Nothing enters the cache under a hash that is not its code's.
    let other = "0".repeat(64);
    let err = engine
        .prepare(&other, &changed, Limits::default())
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("hashes to"), "{err}");
    assert!(engine.known_code()(&other).is_none());
}

#[tokio::test]
async fn modules_that_are_not_actors_or_cannot_start_are_refused() {
    let no_call = sign(
        &wat::parse_str("(module (memory (export \"memory\") 1) (func (export \"__wasmbus_rpc_version\") (result i32) i32.const 1))").unwrap(),
        &[],
    );
    let err = load_err(&no_call, LoadPolicy::default()).await;
    assert!(
        matches!(err, LoadError::Start(GuestError::NotAnActor(_))),
        "{err}"
    );

    let bad_init = GUEST.replace(
        "(func $arg",
        "(func (export \"wapc_init\") unreachable)\n  (func $arg",
    );
    let err = load_err(
        &sign(&wat::parse_str(&bad_init).unwrap(), &[]),
        LoadPolicy::default(),
    )
    .await;
    assert!(
        matches!(err, LoadError::Start(GuestError::Trap(_))),
        "{err}"
    );

    let foreign = sign(
        &wat::parse_str("(module (import \"env\" \"f\" (func)) (memory (export \"memory\") 1) (func (export \"__wasmbus_rpc_version\") (result i32) i32.const 1))")
            .unwrap(),
        &[],
    );
    let err = load_err(&foreign, LoadPolicy::default()).await;
    assert!(err.to_string().contains("cannot be linked"), "{err}");

    // A bare waPC guest that shows no sign of the ABI generation it was built for.
    let unmarked = sign(
        &wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))"#,
        )
        .unwrap(),
        &["wasmcloud:keyvalue"],
    );
    let err = load_err(&unmarked, LoadPolicy::default()).await;
    assert!(matches!(err, LoadError::Generation(_)), "{err}");
    assert!(
        err.to_string()
            .contains("cannot tell which ABI generation the actor was built for"),
        "{err}"
    );
}

#[tokio::test]
async fn same_code_is_compiled_once() {
    let plain = wat::parse_str("(module (memory (export \"memory\") 1) (func (export \"__wasmbus_rpc_version\") (result i32) i32.const 1) (func (export \"__guest_call\") (param i32 i32) (result i32) i32.const 1) (func (export \"unique_for_cache_test\")))").unwrap();
    // An engine of its own: other tests load modules into the shared one concurrently.
    let engine = WasmEngine::new(EngineConfig {
        instance_slots: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    for _ in 0..3 {
        let signed = sign(&plain, &[]);
        ActorPool::load(
            &engine,
            &signed,
            &LoadPolicy::default(),
            Arc::new(Recorder::default()),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        engine.cached_modules(),
        1,
        "re-signed identical code was recompiled"
    );
}
