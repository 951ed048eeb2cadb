//! Prometheus metrics, served as text on the `--metrics-listen` address.
//!
//! Labels hold only method names, status codes and versions: no request
//! data, so no patient data. A method path is a label only when cptd serves
//! it, so that a client inventing paths cannot grow the series without bound.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The methods cptd serves, the only paths used as labels.
const SERVED_METHODS: &[&str] = &[
    "/cpt.v1.CodeLookup/GetCode",
    "/cpt.v1.CodeLookup/BatchGetCodes",
    "/cpt.v1.CodeLookup/ValidateCodes",
    "/cpt.v1.CodeLookup/SearchCodes",
    "/cpt.v1.CodeLookup/ListCodes",
    "/cpt.v1.QualityMeasures/ListMeasures",
    "/cpt.v1.QualityMeasures/GetMeasure",
    "/cpt.v1.QualityMeasures/RecordEncounter",
    "/cpt.v1.QualityMeasures/ImportEncounters",
    "/cpt.v1.QualityMeasures/GetPerformance",
    "/cpt.v1.QualityMeasures/VoidEncounter",
    "/cpt.v1.QualityMeasures/GetEncounter",
    "/cpt.v1.QualityMeasures/ListCareGaps",
    "/cpt.v1.QualityMeasures/ExportMeasurementSet",
    "/cpt.v1.ClaimCheck/CheckClaim",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Latency buckets, in seconds: look-ups take tens of microseconds, imports
/// many seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    latency: HistogramVec,
    shed: IntCounter,
    imports_running: IntGauge,
    encounters_stored: IntCounter,
    commit_latency: Histogram,
    versions: IntGaugeVec,
    versions_in_force: Mutex<HashMap<&'static str, String>>,
    certificate_expiry: IntGauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let calls = IntCounterVec::new(
        Opts::new(
            "cptd_calls_total",
            "Calls finished, by method and status code.",
        ),
        &["method", "code"],
    )
    .expect("a valid metric");
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "cptd_call_duration_seconds",
            "Time from a call's headers to its status, by method.",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        &["method"],
    )
    .expect("a valid metric");
    let shed = IntCounter::new(
        "cptd_calls_shed_total",
        "Calls refused with RESOURCE_EXHAUSTED at the limit of concurrent calls.",
    )
    .expect("a valid metric");
    let imports_running = IntGauge::new(
        "cptd_imports_running",
        "ImportEncounters streams running now.",
    )
    .expect("a valid metric");
    let encounters_stored = IntCounter::new(
        "cptd_encounters_stored_total",
        "Encounters newly stored or replaced by this process (resends not counted).",
    )
    .expect("a valid metric");
    let commit_latency = Histogram::with_opts(
        HistogramOpts::new(
            "cptd_store_commit_seconds",
            "Time of each commit of the encounter store's writer, sync included.",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
    )
    .expect("a valid metric");
    let versions = IntGaugeVec::new(
        Opts::new(
            "cptd_data_version_info",
            "1 for the version of each data set in force (code registry, measure set).",
        ),
        &["data", "version"],
    )
    .expect("a valid metric");
    let certificate_expiry = IntGauge::new(
        "cptd_tls_certificate_expiry_timestamp_seconds",
        "When the server's TLS certificate expires, in Unix seconds.",
    )
    .expect("a valid metric");
    for collector in [
        Box::new(calls.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(latency.clone()),
        Box::new(shed.clone()),
        Box::new(imports_running.clone()),
        Box::new(encounters_stored.clone()),
        Box::new(commit_latency.clone()),
        Box::new(versions.clone()),
        Box::new(certificate_expiry.clone()),
    ] {
        registry.register(collector).expect("names are unique");
    }
    Metrics {
        registry,
        calls,
        latency,
        shed,
        imports_running,
        encounters_stored,
        commit_latency,
        versions,
        versions_in_force: Mutex::new(HashMap::new()),
        certificate_expiry,
    }
});

/// A finished call: its method path, status code name and duration.
pub fn call_finished(path: &str, code: &str, elapsed: Duration) {
    let method = SERVED_METHODS
        .iter()
        .find(|served| **served == path)
        .copied()
        .unwrap_or("other");
    METRICS.calls.with_label_values(&[method, code]).inc();
    METRICS
        .latency
        .with_label_values(&[method])
        .observe(elapsed.as_secs_f64());
}

/// A call shed at the limit of concurrent calls.
pub fn call_shed() {
    METRICS.shed.inc();
}

/// An import started; the gauge falls again when the guard drops.
pub fn import_running() -> ImportRunning {
    METRICS.imports_running.inc();
    ImportRunning(())
}

/// Held while an import runs.
pub struct ImportRunning(());

impl Drop for ImportRunning {
    fn drop(&mut self) {
        METRICS.imports_running.dec();
    }
}

/// `count` encounters newly stored or replaced.
pub fn encounters_stored(count: u64) {
    METRICS.encounters_stored.inc_by(count);
}

/// One commit of the store's writer took `elapsed`.
pub fn store_committed(elapsed: Duration) {
    METRICS.commit_latency.observe(elapsed.as_secs_f64());
}

/// The version of a data set now in force (`data`: `codes` or `measures`);
/// the previous version's series is removed.
pub fn data_version(data: &'static str, version: &str) {
    let mut in_force = METRICS
        .versions_in_force
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(old) = in_force.insert(data, version.to_string()) {
        let _ = METRICS.versions.remove_label_values(&[data, &old]);
    }
    METRICS.versions.with_label_values(&[data, version]).set(1);
}

/// When the TLS certificate in force expires (Unix seconds).
pub fn certificate_expires(unix_seconds: i64) {
    METRICS.certificate_expiry.set(unix_seconds);
}

/// Every metric in the Prometheus text format.
pub fn render() -> String {
    let mut text = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&METRICS.registry.gather(), &mut text) {
        tracing::error!(%error, "metrics could not be encoded");
    }
    String::from_utf8(text).unwrap_or_default()
}

/// Serves [`render`] at `/metrics` on `address` over plain HTTP/1.1 until the
/// process ends. Logs the address it listens on.
pub async fn serve(address: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                render(),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics listener failed");
        }
    });
    Ok(())
}
