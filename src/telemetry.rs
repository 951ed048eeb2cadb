//! Log setup: structured `tracing` events written as text or JSON lines, and
//! with `--otlp-endpoint` the spans of calls exported over OTLP.
//!
//! Verbosity follows `RUST_LOG` (default `info`). Nothing logged anywhere in cptd
//! carries patient data; request lines name the method, status and latency only.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    runtime::Tokio,
    trace::{SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogFormat;

/// The span exporter in force; shut it down before exiting so the last spans
/// are sent.
pub struct TraceExport(SdkTracerProvider);

impl TraceExport {
    /// Sends what is buffered and stops.
    pub fn shutdown(self) {
        if let Err(error) = self.0.shutdown() {
            tracing::warn!(%error, "the trace exporter did not shut down cleanly");
        }
    }
}

/// Installs the global subscriber, exporting spans to `otlp_endpoint` (an
/// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`) when given. Call once,
/// from inside the async runtime: the exporter's connection lives on it.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Option<TraceExport>, String> {
    let provider = match otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|error| format!("--otlp-endpoint {endpoint}: {error}"))?;
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            // The batch processor of the async runtime: the tonic exporter
            // needs the runtime its connection lives on.
            let batches = BatchSpanProcessor::builder(exporter, Tokio).build();
            Some(
                SdkTracerProvider::builder()
                    .with_span_processor(batches)
                    .with_resource(Resource::builder().with_service_name("cptd").build())
                    .build(),
            )
        }
    };
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("cptd")));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter).with(traces);
    match format {
        // Colour codes only for a person at a terminal: in a file or a log
        // collector they are noise.
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    Ok(provider.map(TraceExport))
}
