//! Metrics (#18 item 1): per actor version, calls, failures by kind, durations and instance
//! starts; per provider, calls; nothing kept, and nothing to scrape, without them. Read with a
//! Prometheus text-format parser.

use std::sync::Arc;
use weft_host::metrics::Metrics;
use weft_host::{Host, HostConfig};
use weft_provider_sdk::LinkDefinition;

fn scrape(host: &Host) -> Vec<prometheus_parse::Sample> {
    let text = String::from_utf8(host.metrics_text().unwrap()).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap()
        .samples
}

fn value(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    match found[0].value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_failures_by_kind_and_instance_starts_are_counted() {
    let host = Host::new(HostConfig {
        policy: weft_host::LoadPolicy {
            limits: weft_host::Limits {
                call_deadline_ms: 300,
                ..weft_host::Limits::default()
            },
            ..weft_host::LoadPolicy::default()
        },
        metrics: Some(Arc::new(Metrics::new().unwrap())),
        ..HostConfig::default()
    })
    .unwrap();
    host.add_provider("kv", Arc::new(weft_keyvalue_memory::MemoryKeyValue::new()))
        .await
        .unwrap();
    let guest = host
        .start_actor(&crate::guest(&["wasmcloud:keyvalue"]))
        .await
        .unwrap()
        .id;
    host.put_link(LinkDefinition {
        actor_id: guest.clone(),
        contract_id: "wasmcloud:keyvalue".into(),
        link_name: "default".into(),
        provider_id: "kv".into(),
        values: Default::default(),
    })
    .await
    .unwrap();

    for _ in 0..3 {
        host.invoke(&guest, "echo", &crate::cmd(b'e', 0))
            .await
            .unwrap();
    }
    // Its key-value call carries bytes the store cannot read: the provider refuses it, and
    // the guest reports the error as its own.
    assert!(
        host.invoke(&guest, "kv", &crate::cmd(b'h', 8))
            .await
            .is_err()
    );
    assert!(
        host.invoke(&guest, "trap", &crate::cmd(b'r', 0))
            .await
            .is_err()
    );
    assert!(
        host.invoke(&guest, "loop", &crate::cmd(b'l', 0))
            .await
            .is_err()
    );
    host.invoke(&guest, "echo", &crate::cmd(b'e', 0))
        .await
        .unwrap();

    let samples = scrape(&host);
    let of_guest = [
        ("actor", guest.as_str()),
        ("name", "guest"),
        ("revision", "none"),
    ];
    assert_eq!(
        value(&samples, "weft_actor_invocations_total", &of_guest),
        7.0
    );
    let failed = |kind| {
        let mut labels = of_guest.to_vec();
        labels.push(("kind", kind));
        value(&samples, "weft_actor_errors_total", &labels)
    };
    assert_eq!(failed("trapped"), 1.0);
    assert_eq!(failed("actor_failed"), 1.0);
    assert_eq!(failed("deadline"), 1.0);
    // The first instance, then one after each instance lost (the trap, the deadline).
    assert_eq!(
        value(&samples, "weft_actor_instance_starts_total", &of_guest),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            "weft_provider_calls_total",
            &[("provider", "kv"), ("contract", "wasmcloud:keyvalue")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "weft_provider_errors_total",
            &[("provider", "kv"), ("kind", "provider_failed")]
        ),
        1.0
    );
    let mut idle = of_guest.to_vec();
    idle.push(("state", "idle"));
    assert_eq!(value(&samples, "weft_actor_instances", &idle), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_without_metrics_keeps_none() {
    let host = Host::new(HostConfig::default()).unwrap();
    let guest = host.start_actor(&crate::guest(&[])).await.unwrap().id;
    host.invoke(&guest, "echo", &crate::cmd(b'e', 0))
        .await
        .unwrap();
    assert!(host.metrics_text().is_none());
    assert!(host.metrics().is_none());
}
