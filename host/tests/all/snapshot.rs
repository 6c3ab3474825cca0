//! Start-up snapshots: an actor whose start-up touches nothing outside its instance starts
//! from a snapshot of what start-up left (memory, globals), and behaves exactly as if each
//! instance had run start-up itself; any other actor runs start-up in every instance.

use crate::{sign, signed_actor};
use std::sync::Arc;
use weft_host::actor::{ActorPool, LoadPolicy};
use weft_host::engine::{EngineConfig, WasmEngine};
use weft_host::instance::StartUp;
use weft_host::invoke::{HostCall, HostCalls, InvokeError};
use weft_host::limits::Limits;
use weft_provider_sdk::async_trait;

fn engine() -> WasmEngine {
    WasmEngine::new(EngineConfig {
        instance_slots: 16,
        ..EngineConfig::default()
    })
    .unwrap()
}

async fn start_up_of(engine: &WasmEngine, bytes: &[u8]) -> StartUp {
    let hash = wascap::module_hash(bytes).unwrap();
    engine
        .prepare(&hash, bytes, Limits::default())
        .await
        .unwrap()
        .start_up
}

/// Answers every host call with "ok".
struct Answering;

#[async_trait]
impl HostCalls for Answering {
    async fn host_call(&self, _: HostCall<'_>) -> Result<Vec<u8>, InvokeError> {
        Ok(b"ok".to_vec())
    }
}

/// A guest whose start-up (`$init`, run as `START`) counts itself in a global, writes 42 to
/// memory and grows memory by a page; each call answers (start-ups seen, the 42, pages).
fn counting_guest(start: &str, init_extra: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
          (import "wapc" "__guest_response" (func $respond (param i32 i32)))
          (import "wapc" "__console_log" (func $log (param i32 i32)))
          (import "wapc" "__host_call"
            (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1) (func (export "__wasmbus_rpc_version") (result i32) i32.const 1)
          (global $start_ups (mut i32) (i32.const 0))
          (global $answer_at i32 (i32.const 100))
          (data (i32.const 300) "wasmcloud:keyvalue")
          (func $init
            (global.set $start_ups (i32.add (global.get $start_ups) (i32.const 1)))
            (i32.store (global.get $answer_at) (i32.const 42))
            (drop (memory.grow (i32.const 1)))
            {init_extra})
          {start}
          (func (export "__guest_call") (param i32 i32) (result i32)
            (i32.store (i32.const 200) (global.get $start_ups))
            (i32.store (i32.const 204) (i32.load (global.get $answer_at)))
            (i32.store (i32.const 208) (memory.size))
            (call $respond (i32.const 200) (i32.const 12))
            (i32.const 1)))"#
    );
    sign(&wat::parse_str(wat).unwrap(), &["wasmcloud:keyvalue"])
}

fn answer(start_ups: i32, stored: i32, pages: i32) -> Vec<u8> {
    [start_ups, stored, pages]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

async fn pool(engine: &WasmEngine, bytes: &[u8]) -> ActorPool {
    ActorPool::load(engine, bytes, &LoadPolicy::default(), Arc::new(Answering))
        .await
        .unwrap()
}

/// Two pools (the second from the engine's cache) answering two calls each: every instance
/// must see start-up done exactly once.
async fn answers(engine: &WasmEngine, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut answers = Vec::new();
    for _ in 0..2 {
        let pool = pool(engine, bytes).await;
        for _ in 0..2 {
            answers.push(pool.invoke("any", b"").await.unwrap());
        }
    }
    answers
}

#[tokio::test]
async fn rust_actors_start_from_a_snapshot() {
    let engine = engine();
    for actor in ["echo", "kvcounter", "hello", "kvcounter-wasmbus"] {
        let bytes = std::fs::read(signed_actor(actor)).unwrap();
        assert_eq!(
            start_up_of(&engine, &bytes).await,
            StartUp::AlreadyDone,
            "{actor}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_holds_the_memory_globals_and_growth_of_one_start_up() {
    for start in [
        r#"(export "wapc_init" (func $init))"#,
        r#"(export "_start" (func $init))"#,
        "(start $init)",
    ] {
        let engine = engine();
        let bytes = counting_guest(start, "");
        assert_eq!(
            start_up_of(&engine, &bytes).await,
            StartUp::AlreadyDone,
            "{start}"
        );
        assert_eq!(
            answers(&engine, &bytes).await,
            vec![answer(1, 42, 2); 4],
            "{start}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_that_logs_or_calls_the_host_runs_in_every_instance() {
    let logs = "(call $log (i32.const 300) (i32.const 18))";
    let calls_host = "(drop (call $host_call (i32.const 0) (i32.const 0) (i32.const 300) \
                     (i32.const 18) (i32.const 300) (i32.const 3) (i32.const 0) (i32.const 0)))";
    for extra in [logs, calls_host] {
        let engine = engine();
        let bytes = counting_guest(r#"(export "wapc_init" (func $init))"#, extra);
        assert_eq!(start_up_of(&engine, &bytes).await, StartUp::Run, "{extra}");
        assert_eq!(
            answers(&engine, &bytes).await,
            vec![answer(1, 42, 2); 4],
            "{extra}"
        );
    }
}

#[tokio::test]
async fn start_up_that_traps_is_reported_when_the_actor_loads() {
    let engine = engine();
    let bytes = counting_guest(r#"(export "wapc_init" (func $init))"#, "unreachable");
    assert_eq!(start_up_of(&engine, &bytes).await, StartUp::Run);
    let err = ActorPool::load(&engine, &bytes, &LoadPolicy::default(), Arc::new(Answering))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("failed to start"), "{err}");
}
