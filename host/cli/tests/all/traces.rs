//! Traces across the lattice (#18 item 2): one HTTP request carrying a W3C `traceparent`
//! enters an edge `weft host` (HTTP only), is served by kvcounter on a core `weft host`, whose
//! key-value call goes to a Redis provider process; each of the three processes exports its
//! spans over OTLP/HTTP (`--otlp`) to a real OTLP receiver this test runs (decoding the
//! protocol's own protobuf messages), and the spans form one trace, each the child of the
//! one before it, across the three processes.

use crate::lattice::ProviderProcess;
use crate::up::Up;
use crate::{Weft, signed_actor};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weft_testing::{NatsServer, RedisServer};

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Seen {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    service: String,
    pid: i64,
}

/// An OTLP/HTTP receiver on a loopback port: takes `POST /v1/traces` (protobuf), keeps every
/// span, answers as a collector does.
struct Receiver {
    address: String,
    spans: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let spans: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let kept = spans.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let kept = kept.clone();
                            async move {
                                let path = request.uri().path().to_string();
                                let body = request.into_body().collect().await?.to_bytes();
                                let status = if path == "/v1/traces" {
                                    match ExportTraceServiceRequest::decode(body) {
                                        Ok(export) => {
                                            kept.lock().unwrap().extend(spans_of(export));
                                            200
                                        }
                                        Err(_) => 400,
                                    }
                                } else {
                                    404
                                };
                                let mut response = hyper::Response::new(Full::new(Bytes::from(
                                    ExportTraceServiceResponse::default().encode_to_vec(),
                                )));
                                *response.status_mut() =
                                    hyper::StatusCode::from_u16(status).unwrap();
                                response.headers_mut().insert(
                                    "content-type",
                                    hyper::header::HeaderValue::from_static(
                                        "application/x-protobuf",
                                    ),
                                );
                                Ok::<_, hyper::Error>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            address,
            spans,
            _runtime: runtime,
        }
    }

    fn of_trace(&self, trace_id: &str) -> Vec<Seen> {
        let spans = self.spans.lock().unwrap();
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn spans_of(export: ExportTraceServiceRequest) -> Vec<Seen> {
    let mut seen = Vec::new();
    for resource_spans in export.resource_spans {
        let attributes = resource_spans
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let attribute = |key: &str| {
            attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
        };
        let service = match attribute("service.name") {
            Some(Value::StringValue(name)) => name,
            _ => String::new(),
        };
        let pid = match attribute("process.pid") {
            Some(Value::IntValue(pid)) => pid,
            _ => 0,
        };
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                seen.push(Seen {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name,
                    service: service.clone(),
                    pid,
                });
            }
        }
    }
    seen
}

/// `GET path` with a `traceparent` header; (status, body).
fn traced_get(address: &str, path: &str, traceparent: &str) -> (u16, String) {
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\ntraceparent: {traceparent}\r\nConnection: close\r\n\r\n"
    );
    crate::up::exchange(address, head.as_bytes())
}

#[test]
fn one_request_is_one_trace_across_two_hosts_and_a_provider_process() {
    let receiver = Receiver::start();
    let otlp = format!("http://{}", receiver.address);
    let weft = Weft::new();
    let nats = NatsServer::start().unwrap();
    let redis = RedisServer::start().unwrap();
    let url = nats.url();
    let _provider =
        ProviderProcess::start_at(&weft, "keyvalue-redis", "redis", &url, &["--otlp", &otlp]);
    let kvcounter = signed_actor("kvcounter");
    let token = wascap::extract_token(&std::fs::read(&kvcounter).unwrap())
        .unwrap()
        .unwrap();
    let key = wascap::jwt::decode::<wascap::Actor>(&token)
        .unwrap()
        .claims
        .subject;

    // The core host runs kvcounter, its key-value through the Redis provider process.
    let core = weft.path("core.toml");
    std::fs::write(
        &core,
        format!(
            "[[actors]]\npath = {path:?}\n[[links]]\nactor = \"kvcounter\"\n\
             contract = \"wasmcloud:keyvalue\"\nprovider = \"redis\"\nvalues = {{ url = \"{redis}\" }}\n",
            path = kvcounter.to_str().unwrap(),
            redis = redis.url()
        ),
    )
    .unwrap();
    // The edge host runs no actor: its HTTP server serves kvcounter, by module key.
    let edge = weft.path("edge.toml");
    std::fs::write(
        &edge,
        format!(
            "[[providers]]\nid = \"http\"\nkind = \"http-server\"\n[[links]]\nactor = \"{key}\"\n\
             contract = \"wasmcloud:httpserver\"\nprovider = \"http\"\n\
             values = {{ address = \"127.0.0.1:0\" }}\n"
        ),
    )
    .unwrap();
    let args = [
        "--lattice",
        "it",
        "--nats",
        &url,
        "--trust-any-issuer",
        "--otlp",
        &otlp,
    ];
    let core_host = Up::start_command(&weft, "host", &core, &args, &[]);
    let edge_host = Up::start_command(&weft, "host", &edge, &args, &[]);
    assert!(core_host.startup.iter().all(|l| !l.starts_with("serving")));
    let address = edge_host.serving.clone();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let (status, body) = traced_get(
        &address,
        "/counter/traced",
        &format!("00-{trace_id}-{caller}-01"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"counter":"traced","count":1}"#);

    // Every process sends what it recorded within a second; wait for the last hop's span.
    let started = Instant::now();
    let spans = loop {
        let spans = receiver.of_trace(trace_id);
        if spans.iter().any(|s| s.name == "provider.serve") && spans.len() >= 6 {
            break spans;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the trace did not arrive whole: {spans:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let named = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
            .clone()
    };
    let http = named("http.request");
    let serve_actor = named("lattice.serve_actor");
    let invoke = named("actor.invoke");
    let host_call = named("actor.host_call");
    let provider_call = named("provider.call");
    let provider_serve = named("provider.serve");
    // One chain, each span the child of the one before, from the caller's own span.
    assert_eq!(http.parent, caller);
    for (child, parent) in [
        (&serve_actor, &http),
        (&invoke, &serve_actor),
        (&host_call, &invoke),
        (&provider_call, &host_call),
        (&provider_serve, &provider_call),
    ] {
        assert_eq!(
            child.parent, parent.span_id,
            "{} under {}: {spans:#?}",
            child.name, parent.name
        );
    }
    // Across three processes: the edge host, the core host, the provider process.
    assert_eq!(http.service, "weft host");
    assert_eq!(serve_actor.pid, invoke.pid);
    assert_eq!(invoke.pid, provider_call.pid);
    assert_ne!(http.pid, invoke.pid);
    assert_eq!(provider_serve.service, "weft provider");
    assert!(provider_serve.pid != invoke.pid && provider_serve.pid != http.pid);
    println!(
        "one trace, {} spans: http.request (edge host {}) → lattice.serve_actor → actor.invoke → \
         actor.host_call → provider.call (core host {}) → provider.serve (provider process {})",
        spans.len(),
        http.pid,
        invoke.pid,
        provider_serve.pid
    );

    // A request with no traceparent starts a trace of its own; garbage is not taken up.
    let (status, _) = traced_get(&address, "/counter/traced", "garbage");
    assert_eq!(status, 200);
}
