//! (o) Outbound HTTP through the httpclient provider (`wasmcloud:httpclient`, called as a
//! host calls it) to a native hyper hello world on loopback, one request at a time:
//! - against hyper-util's pooling client straight to the server (the baseline, measured in
//!   the same run, rounds alternating);
//! - with the link listing the host (connections kept) and with `allowed_hosts = "*"` (none
//!   kept: a new TCP connection a request), to show what keeping them saves.
//!
//! `WEFT_OUTBOUND_REQUESTS` the requests of each round (default 20,000), `WEFT_OUTBOUND_ROUNDS`
//! the rounds (default 5); the figures are medians of the rounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};
use weft_bench::env_or;
use weft_contracts::httpclient::{CONTRACT_ID, HttpRequest, REQUEST};
use weft_httpclient::HttpClient;
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall};

fn link(allowed: &str) -> Arc<LinkDefinition> {
    Arc::new(LinkDefinition {
        actor_id: "Mbench".into(),
        contract_id: CONTRACT_ID.into(),
        link_name: "default".into(),
        provider_id: "http".into(),
        values: [("allowed_hosts".to_string(), allowed.to_string())].into(),
    })
}

/// µs a request through the provider under `link`.
async fn through_provider(
    client: &HttpClient,
    link: &Arc<LinkDefinition>,
    url: &str,
    n: usize,
) -> f64 {
    let payload = weft_contracts::encode(&HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers: Default::default(),
        body: Vec::new(),
    })
    .unwrap();
    let started = Instant::now();
    for _ in 0..n {
        let call = ProviderCall {
            actor_id: link.actor_id.clone(),
            link: link.clone(),
            operation: REQUEST.into(),
            payload: payload.clone(),
            time_left: Duration::from_secs(10),
        };
        let answer = client.handle_call(call).await.unwrap();
        assert!(!answer.is_empty());
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// µs a request through hyper-util's pooling client, the body read whole.
async fn baseline(url: &str, n: usize) -> f64 {
    use http_body_util::BodyExt;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let uri: hyper::Uri = url.parse().unwrap();
    let started = Instant::now();
    for _ in 0..n {
        let response = client.get(uri.clone()).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(!body.is_empty());
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n: usize = env_or("WEFT_OUTBOUND_REQUESTS", 20_000);
    let rounds: usize = env_or("WEFT_OUTBOUND_ROUNDS", 5);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let at = weft_bench::native_hello().await;
        let url = format!("http://{at}/");
        let provider = HttpClient::new();
        let listed = link(&at.to_string());
        let any = link("*");
        // Warm-up: the connection, the code.
        through_provider(&provider, &listed, &url, 200).await;
        baseline(&url, 200).await;
        let (mut raw, mut kept, mut fresh) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            raw.push(baseline(&url, n).await);
            kept.push(through_provider(&provider, &listed, &url, n).await);
            fresh.push(through_provider(&provider, &any, &url, n / 5).await);
        }
        let (raw, kept, fresh) = (
            weft_bench::median(&mut raw),
            weft_bench::median(&mut kept),
            weft_bench::median(&mut fresh),
        );
        println!(
            "\n== (o) outbound HTTP, one request at a time to a hyper hello on loopback, {rounds} alternating rounds (same run) =="
        );
        println!(
            "(o) hyper-util pooling client {raw:.1} µs a request; httpclient provider, host listed (connection kept) {kept:.1} µs: ratio {:.2}× the client's rate; under * (a new connection each) {fresh:.1} µs: keeping saves {:.1} µs ({:.2}×)",
            raw / kept,
            fresh - kept,
            fresh / kept
        );
    });
}
