//! Traces over OTLP (`--otlp ENDPOINT`): the spans Weft's crates make (`http.request`,
//! `actor.invoke`, `provider.call`, `lattice.serve_actor`, `provider.serve`, all at trace
//! level, so they cost nothing unless recorded) are exported in batches over OTLP/HTTP with
//! protobuf bodies to `ENDPOINT/v1/traces`, as any OpenTelemetry collector takes them. Their
//! context travels with each call across the lattice (`weft_lattice::trace`), so one request
//! is one trace across hosts and provider processes. Off without the flag: no span is made.

use anyhow::{Context, Result};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use std::time::Duration;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// How long finished spans wait to be sent: soon enough to follow a request live.
const SEND_EVERY: Duration = Duration::from_millis(500);

/// The exporting side; dropped, it sends what it still holds.
pub struct Traces(SdkTracerProvider);

impl Drop for Traces {
    fn drop(&mut self) {
        if let Err(error) = self.0.shutdown() {
            tracing::warn!(%error, "traces not all sent at exit");
        }
    }
}

/// The OTLP endpoint's traces URL: `ENDPOINT/v1/traces` unless it names that path already.
fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// A layer recording Weft's spans and exporting them to `endpoint` as `service` (`weft
/// host`, `weft provider`, …), with the process id; and what flushes them at exit. Made
/// before any async runtime starts (the HTTP client it uses has a runtime of its own).
pub fn layer<S>(endpoint: &str, service: &str) -> Result<(impl Layer<S> + use<S>, Traces)>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let url = traces_url(endpoint);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .build()
        .with_context(|| format!("cannot export traces to {url}; give --otlp http://HOST:PORT"))?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(SEND_EVERY)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .with_attribute(KeyValue::new("process.pid", i64::from(std::process::id())))
                .build(),
        )
        .build();
    let tracer = provider.tracer("weft");
    // Only Weft's own spans: its crates' targets all start with `weft`.
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("weft")
        }));
    Ok((layer, Traces(provider)))
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
