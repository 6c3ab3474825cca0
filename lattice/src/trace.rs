//! Traces across the lattice: a call that leaves a process carries the W3C `traceparent` of
//! the span it was sent in, inside its sealed body (so no one on the way can graft it onto
//! another trace), and the process serving it takes that up as the parent of its own span.
//! Spans are `tracing`'s; this reads and sets their OpenTelemetry context, which exists only
//! where a process installed an OpenTelemetry layer (`weft --otlp`). Elsewhere there is no
//! context to carry: [`traceparent`] says `None` and [`follow`] does nothing.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header a W3C trace context travels in over HTTP, and its key in lattice bodies.
pub const TRACEPARENT: &str = "traceparent";
/// The longest `traceparent` taken (version 00 is 55 characters; later versions may add
/// fields): anything longer is dropped unread.
pub const MAX_TRACEPARENT_BYTES: usize = 256;

/// The `traceparent` of the current span, when it belongs to a trace being recorded.
pub fn traceparent() -> Option<String> {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let mut carrier: HashMap<String, String> = HashMap::new();
    if !context.span().span_context().is_valid() {
        return None;
    }
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the span `traceparent` names, when one is given, well formed and
/// not over [`MAX_TRACEPARENT_BYTES`]; otherwise `span` starts (or continues) its own trace.
pub fn follow(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent.filter(|t| t.len() <= MAX_TRACEPARENT_BYTES) else {
        return;
    };
    if span.is_disabled() {
        return;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.to_string())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        // Fails only when the span has already started a trace of its own: it then keeps it.
        let _ = span.set_parent(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_recording_layer_there_is_nothing_to_carry() {
        assert_eq!(traceparent(), None);
        let span = tracing::info_span!("serve");
        follow(
            &span,
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        );
        follow(&span, Some("garbage"));
        follow(&span, Some(&"0".repeat(10_000)));
        assert_eq!(span.in_scope(traceparent), None);
    }
}
