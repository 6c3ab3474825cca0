//! Instances on demand (#19 item 1): an actor holds no instance until called; idle instances
//! are a cache the engine's slots are shared by, reclaimed (longest idle first) when a call
//! needs a slot and reaped after an idle time; only calls busy on every slot are refused, as
//! busy, naming the limit and the flag that raises it.

use std::time::Duration;
use weft_host::engine::EngineConfig;
use weft_host::{Host, HostConfig};

fn host_with_slots(slots: u32, deadline_ms: u64) -> Host {
    Host::new(HostConfig {
        engine: EngineConfig {
            instance_slots: slots,
            ..EngineConfig::default()
        },
        policy: weft_host::LoadPolicy {
            limits: weft_host::Limits {
                call_deadline_ms: deadline_ms,
                max_instances: slots as usize,
                ..weft_host::Limits::default()
            },
            ..weft_host::LoadPolicy::default()
        },
        ..HostConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_actors_than_slots_start_and_serve_sharing_the_slots() {
    let host = host_with_slots(4, 2000);
    let mut actors = Vec::new();
    for _ in 0..20 {
        // Each signed anew: twenty distinct actors of the same code.
        actors.push(host.start_actor(&crate::guest(&[])).await.unwrap().id);
    }
    for actor in &actors {
        assert_eq!(
            host.actor_pool(actor).unwrap().idle_instances(),
            0,
            "idle actors hold no instance"
        );
    }
    for round in 0..2 {
        for actor in &actors {
            assert_eq!(
                host.invoke(actor, "echo", &crate::cmd(b'e', round))
                    .await
                    .unwrap(),
                crate::cmd(b'e', round)
            );
        }
    }
    let idle: usize = actors
        .iter()
        .map(|a| host.actor_pool(a).unwrap().idle_instances())
        .sum();
    assert!((1..=4).contains(&idle), "{idle} idle instances in 4 slots");

    // Reaped once idle for longer than asked.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(host.reap_idle_instances(Duration::from_millis(10)), idle);
    let left: usize = actors
        .iter()
        .map(|a| host.actor_pool(a).unwrap().idle_instances())
        .sum();
    assert_eq!(left, 0);
    // And started again on the next call.
    assert!(
        host.invoke(&actors[0], "echo", &crate::cmd(b'e', 9))
            .await
            .is_ok()
    );
}

/// On a host of `slots` slots, as many calls spinning to their deadline take every one; a
/// call of another actor meanwhile is shed as busy, naming the host's slots and the flag
/// once; each spinner ran (it had an instance) until its deadline; then the host serves on.
async fn every_slot_taken_sheds_the_next_call(slots: usize) {
    let host = host_with_slots(slots as u32, 600);
    let spinner = host.start_actor(&crate::guest(&[])).await.unwrap().id;
    let other = host.start_actor(&crate::guest(&[])).await.unwrap().id;
    let spinning: Vec<_> = (0..slots)
        .map(|_| {
            let (host, spinner) = (host.clone(), spinner.clone());
            tokio::spawn(async move { host.invoke(&spinner, "loop", &crate::cmd(b'l', 0)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let refused = host
        .invoke(&other, "echo", &crate::cmd(b'e', 1))
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        weft_provider_sdk::FailureKind::Busy,
        "{refused}"
    );
    let text = refused.to_string();
    assert!(
        text.contains(&format!(
            "all {slots} instance slots of this host are taken, each by another call"
        )) && text.contains("--instance-slots"),
        "{text}"
    );
    assert_eq!(
        text.matches("instance slots of this host").count(),
        1,
        "said once: {text}"
    );
    for spin in spinning {
        let ended = spin.await.unwrap().unwrap_err();
        assert_eq!(
            ended.kind(),
            weft_provider_sdk::FailureKind::Deadline,
            "each spinner had an instance and ran to its deadline: {ended}"
        );
    }
    // The slots are free again: the host serves on.
    assert!(
        host.invoke(&other, "echo", &crate::cmd(b'e', 2))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_finding_every_slot_busy_is_shed_as_busy_naming_the_flag() {
    every_slot_taken_sheds_the_next_call(2).await;
}

/// The host's slots are one budget though each core has an engine copy of its own with a
/// share of them: calls from one thread (so all on one core's copy) run on as many
/// instances at once as the host has slots, and only the call past them is shed.
#[tokio::test(flavor = "current_thread")]
async fn calls_from_one_core_use_every_slot_of_the_host() {
    every_slot_taken_sheds_the_next_call(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_cannot_start_is_refused_every_time_it_is_loaded() {
    let host = host_with_slots(4, 1000);
    // Start-up traps: `wapc_init` reaches `unreachable`.
    let wat = r#"(module
  (memory (export "memory") 1) (func (export "__wasmbus_rpc_version") (result i32) i32.const 1)
  (func (export "wapc_init") unreachable)
  (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))"#;
    let module = wat::parse_str(wat).unwrap();
    for _ in 0..2 {
        let refused = host
            .start_actor(&crate::sign(&module, &[]))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("unreachable") || refused.contains("trap"),
            "{refused}"
        );
    }
    assert!(host.actors().is_empty());
}
