//! Assembling and running the gRPC server.

use std::{
    collections::HashMap,
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tower::{BoxError, filter::FilterLayer, util::MapResultLayer};

use crate::{
    access::{AccessCheck, Policy, PolicyError, Refused},
    api::{
        AdmissionLayer, ClaimCheckService, CodeLookupService, ImportLimits, QualityMeasuresService,
        RequestLogLayer, TraceContextLayer,
    },
    claims::{ClaimEdits, ClaimEditsError, EditFiles, EditProblem},
    codes::{CodeRegistry, CodeSetError, CodeValue},
    config::{Config, SyncMode},
    connections::{self, ConnectionLimits},
    measures::{MeasureSet, MeasureSetError},
    pb::{
        self, claim_check_server::ClaimCheckServer, code_lookup_server::CodeLookupServer,
        quality_measures_server::QualityMeasuresServer,
    },
    store::{
        Durability, EncounterStore, Location, PatientIdKey, PostgresOptions, StoreError,
        StoreOptions,
    },
    tls::{ServerTls, TlsError, TlsFiles},
};

/// Which measures use each quality code, laid into every registry snapshot.
type MeasureIdsByCode = Arc<HashMap<CodeValue, Vec<String>>>;

/// Largest request message accepted, in bytes; tonic refuses a larger one with
/// `OUT_OF_RANGE` before decoding it.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The code set was refused.
    #[error(transparent)]
    CodeSet(#[from] CodeSetError),
    /// The measure files were refused.
    #[error(transparent)]
    Measures(#[from] MeasureSetError),
    /// The claim edit files were refused.
    #[error(transparent)]
    ClaimEdits(#[from] ClaimEditsError),
    /// The encounter store could not be opened.
    #[error("cannot open the encounter store: {0}")]
    Store(#[from] StoreError),
    /// Reflection could not be built from the descriptor sets.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("the server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The threads imports are prepared on could not be started.
    #[error("cannot start the import threads: {0}")]
    ImportThreads(rayon::ThreadPoolBuildError),
    /// The TLS certificate, key or client CA was refused.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The auth policy was refused.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The listener's address could not be read.
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
    /// The metrics listener could not be bound.
    #[error("cannot listen for metrics (--metrics-listen): {0}")]
    Metrics(std::io::Error),
    /// The listener would expose encounter data without protection.
    #[error("{0}")]
    Exposed(String),
}

/// Refuses to serve beyond loopback without TLS or without a policy, unless
/// the operator says so (`--allow-insecure`); says at start what is off.
fn check_exposure(config: &Config, address: std::net::SocketAddr) -> Result<(), ServerError> {
    let loopback = address.ip().is_loopback();
    let missing: Vec<&str> = [
        (config.tls_cert.is_none(), "TLS (--tls-cert, --tls-key)"),
        (
            config.auth_policy.is_none(),
            "an auth policy (--auth-policy)",
        ),
    ]
    .into_iter()
    .filter_map(|(missing, what)| missing.then_some(what))
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let missing = missing.join(" and ");
    if loopback {
        tracing::info!(%address, "serving on loopback without {missing}");
    } else if config.allow_insecure {
        tracing::warn!(%address, "serving beyond loopback without {missing} (--allow-insecure)");
    } else {
        return Err(ServerError::Exposed(format!(
            "listening on {address}, beyond loopback, without {missing}: anyone who reaches \
             the port could read or write encounters; give them, or --allow-insecure if a proxy \
             in front does their job"
        )));
    }
    Ok(())
}

/// Re-reads the TLS files and the auth policy on each SIGHUP, off the
/// runtime's workers; a refused file leaves the running one in force and
/// logs why.
#[cfg(unix)]
async fn reload_security_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    tls: Option<ServerTls>,
    policy: Option<(PathBuf, Arc<ArcSwap<Policy>>)>,
) {
    while hangups.recv().await.is_some() {
        let (tls, policy) = (tls.clone(), policy.clone());
        let reload = move || reload_security(tls.as_ref(), policy.as_ref());
        if let Err(error) = tokio::task::spawn_blocking(reload).await {
            tracing::error!(%error, "TLS and policy reload failed");
        }
    }
}

#[cfg(unix)]
fn reload_security(tls: Option<&ServerTls>, policy: Option<&(PathBuf, Arc<ArcSwap<Policy>>)>) {
    if let Some(tls) = tls {
        match tls.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(error) => {
                tracing::error!(%error, "TLS reload refused; still serving the previous certificate")
            }
        }
    }
    if let Some((path, policy)) = policy {
        match Policy::load(path) {
            Ok(reloaded) => {
                policy.store(Arc::new(reloaded));
                tracing::info!("auth policy reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "auth policy reload refused; the previous one stays")
            }
        }
    }
}

/// Re-reads the code-set files on each SIGHUP and swaps the new registry in whole.
/// Calls in flight keep the snapshot they started with; a refused reload keeps the
/// running registry and logs every problem.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    registry: Arc<ArcSwap<CodeRegistry>>,
    files: Vec<PathBuf>,
    max_file_bytes: u64,
    measure_ids: MeasureIdsByCode,
) {
    while hangups.recv().await.is_some() {
        let files = files.clone();
        let measure_ids = measure_ids.clone();
        let started = Instant::now();
        let load = move || {
            CodeRegistry::load(&files, max_file_bytes)
                .map(|loaded| loaded.with_measure_ids(&measure_ids))
        };
        match tokio::task::spawn_blocking(load).await {
            Ok(Ok(reloaded)) => {
                tracing::info!(
                    codes = reloaded.len(),
                    registry_version = %reloaded.version(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "code set reloaded"
                );
                crate::metrics::data_version("codes", reloaded.version().as_ref());
                retire(registry.swap(Arc::new(reloaded)));
            }
            Ok(Err(refused)) => {
                for problem in &refused.problems {
                    tracing::error!(%problem, "code-set problem");
                }
                tracing::error!(
                    problems = refused.problems.len(),
                    "code set reload refused; still serving the previous code set"
                );
            }
            Err(error) => tracing::error!(%error, "code set reload failed"),
        }
    }
}

/// Loads the claim edit files off the async runtime: a quarter's PTP files
/// are millions of rows and take seconds.
async fn load_claim_edits(
    files: EditFiles,
    max_file_bytes: u64,
) -> Result<ClaimEdits, ClaimEditsError> {
    tokio::task::spawn_blocking(move || ClaimEdits::load(&files, max_file_bytes))
        .await
        .unwrap_or_else(|failed| {
            Err(ClaimEditsError {
                problems: vec![EditProblem {
                    file: "claim edits".into(),
                    line: 0,
                    message: format!("the load stopped unexpectedly: {failed}"),
                }],
                total: 1,
            })
        })
}

/// Re-reads the claim edit files on each SIGHUP and swaps the new set in
/// whole; a refused reload keeps the running set and logs every problem.
#[cfg(unix)]
async fn reload_edits_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    edits: Arc<ArcSwap<ClaimEdits>>,
    files: EditFiles,
    max_file_bytes: u64,
) {
    while hangups.recv().await.is_some() {
        let started = Instant::now();
        match load_claim_edits(files.clone(), max_file_bytes).await {
            Ok(reloaded) => {
                tracing::info!(
                    ptp_pairs = reloaded.ptp.len(),
                    claim_edits_version = %reloaded.version(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "claim edits reloaded"
                );
                retire(edits.swap(Arc::new(reloaded)));
            }
            Err(refused) => {
                for problem in &refused.problems {
                    tracing::error!(%problem, "claim edit problem");
                }
                tracing::error!(
                    problems = refused.total,
                    "claim edit reload refused; still serving the previous edits"
                );
            }
        }
    }
}

/// How often a retired registry checks whether its last calls have ended.
const RETIRED_REGISTRY_CHECK: Duration = Duration::from_millis(20);

/// Drops a replaced registry on a blocking thread once the calls still reading
/// it have ended. Its teardown frees every code, text and index of the old set
/// (hundreds of milliseconds for a licensed set); left to the last call holding
/// it, that would stall a tokio worker and every call queued behind it.
fn retire<T: Send + Sync + 'static>(previous: Arc<T>) {
    tokio::task::spawn_blocking(move || {
        while Arc::strong_count(&previous) > 1 {
            std::thread::sleep(RETIRED_REGISTRY_CHECK);
        }
        drop(previous);
    });
}

/// Reflection that describes every service served, both reflection versions
/// included, whichever version a client asks through.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// The flow-control window of each call: how much of a request the client may
/// send ahead of what the call has read.
///
/// `h2` guards a connection against floods of small DATA frames: each frame
/// under 256 bytes that has arrived but not been read costs 256 bytes less its
/// size from a budget of half the connection window, and a connection that
/// spends it all is closed (`GOAWAY ENHANCE_YOUR_CALM`). Go's gRPC clients and
/// grpcurl send every message of a stream in a DATA frame of its own, and an
/// encounter is 40 to 200 bytes; an import stops reading while its earlier
/// chunks commit, so its window fills with such frames. With hyper's default
/// windows (1 MiB each) one paused import of 140-byte encounters overspends
/// the budget and the client's connection is dropped mid-import; with these,
/// every import the server admits at once can pause on one connection.
const STREAM_WINDOW: u32 = 128 * 1024;

/// The flow-control window of each connection, shared by its calls; half of
/// it is the small-frame budget (see [`STREAM_WINDOW`]).
const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// Serves every cptd service on `listener` until `shutdown` completes, then stops
/// accepting, lets calls in flight finish for up to `config.shutdown_grace`, and
/// returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    run_until(listener, config, shutdown, std::future::pending()).await
}

/// [`run`], with a drain that also ends, before its grace runs out, once
/// `cut_drain_short` completes (the operator's second signal).
pub async fn run_until(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    cut_drain_short: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let address = listener.local_addr().map_err(ServerError::Listener)?;
    check_exposure(&config, address)?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(certificate), Some(key)) => Some(ServerTls::load(TlsFiles {
            certificate: certificate.clone(),
            key: key.clone(),
            client_ca: config.tls_client_ca.clone(),
        })?),
        _ => None,
    };
    let policy = match &config.auth_policy {
        Some(path) => Some((
            path.clone(),
            Arc::new(ArcSwap::from_pointee(Policy::load(path)?)),
        )),
        None => None,
    };
    if let Some(address) = config.metrics_listen {
        crate::metrics::serve(address)
            .await
            .map_err(ServerError::Metrics)?;
    }
    let access = match &policy {
        Some((_, policy)) => AccessCheck::with_policy(policy.clone(), !config.auth_probes),
        None => AccessCheck::open(),
    };
    #[cfg(unix)]
    if tls.is_some() || policy.is_some() {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangups) => {
                tokio::spawn(reload_security_on_hangup(hangups, tls.clone(), policy));
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP; TLS and policy reload are off")
            }
        }
    }

    let started = Instant::now();
    let measures = Arc::new(MeasureSet::load(
        &config.measure_files,
        config.max_data_file_size,
    )?);
    tracing::info!(
        measures = measures.measures().len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "measures loaded"
    );
    let measure_ids: MeasureIdsByCode = Arc::new(measures.measure_ids_by_code());

    let started = Instant::now();
    let registry = CodeRegistry::load(&config.code_files, config.max_data_file_size)?
        .with_measure_ids(&measure_ids);
    tracing::info!(
        codes = registry.len(),
        registry_version = %registry.version(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "code registry built"
    );
    crate::metrics::data_version("codes", registry.version().as_ref());
    crate::metrics::data_version("measures", &crate::store::measure_set_version(&measures));
    let registry = Arc::new(ArcSwap::from_pointee(registry));

    let started = Instant::now();
    let edit_files = config.edit_files.to_edit_files();
    let edits = load_claim_edits(edit_files.clone(), config.max_data_file_size).await?;
    tracing::info!(
        ptp_pairs = edits.ptp.len(),
        claim_edits_version = %edits.version(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "claim edits loaded"
    );
    let edits = Arc::new(ArcSwap::from_pointee(edits));
    // Installed before serving: SIGHUP's default action ends the process, so the
    // handler must exist before anyone can be told the server is up.
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => {
            tokio::spawn(reload_on_hangup(
                hangups,
                registry.clone(),
                config.code_files.clone(),
                config.max_data_file_size,
                measure_ids,
            ));
        }
        Err(error) => tracing::error!(%error, "cannot listen for SIGHUP; code-set reload is off"),
    }
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => {
            tokio::spawn(reload_edits_on_hangup(
                hangups,
                edits.clone(),
                edit_files,
                config.max_data_file_size,
            ));
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGHUP; claim edit reload is off")
        }
    }
    let store = Arc::new(open_store(&config, measures.clone()).await?);

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let claim_check = ClaimCheckServer::new(ClaimCheckService::new(
        registry.clone(),
        edits,
        measures.clone(),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let quality_measures = QualityMeasuresService::new(
        registry.clone(),
        measures,
        store.clone(),
        ImportLimits {
            max_concurrent: config.max_concurrent_imports as usize,
            message_timeout: config.message_timeout,
        },
        config.strict_codes,
    )
    .map_err(ServerError::ImportThreads)?;
    let quality_measures =
        QualityMeasuresServer::new(quality_measures).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let code_lookup = CodeLookupServer::new(CodeLookupService::new(registry))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    set_serving(&health_reporter, true).await;
    let health_follower = store
        .reachable()
        .map(|reachable| tokio::spawn(follow_database(health_reporter.clone(), reachable)));

    let incoming = connections::accept(
        listener,
        ConnectionLimits {
            max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
            idle_timeout: config.connection_idle_timeout,
        },
    );
    let (stopping_sender, mut stopping) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        // Balancers and probes stop sending new calls here, while the calls
        // in flight drain.
        if let Some(follower) = health_follower {
            follower.abort();
        }
        set_serving(&health_reporter, false).await;
        let _ = stopping_sender.send(true);
    };
    let max_concurrent_calls = usize::try_from(config.max_concurrent_calls).unwrap_or(usize::MAX);
    let serve = Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(config.max_streams_per_connection)
        // A client that stops answering pings is gone: its connection and
        // the calls on it end, rather than wait on a dead peer.
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .timeout(config.request_timeout)
        .layer(tower::util::option_layer(
            config.otlp_endpoint.is_some().then_some(TraceContextLayer),
        ))
        .layer(RequestLogLayer)
        .layer(MapResultLayer::new(refusal_as_answer as fn(_) -> _))
        // Callers are checked on the headers, before a call slot is taken.
        .layer(FilterLayer::new(access))
        // At most this many calls run at once across all connections, each
        // counted from its first message; one more is refused at once rather
        // than queued, so overload never grows an unbounded backlog.
        .layer(AdmissionLayer::new(
            max_concurrent_calls,
            config.message_timeout,
            MAX_MESSAGE_BYTES,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(code_lookup)
        .add_service(quality_measures)
        .add_service(claim_check);
    let serve = async move {
        match tls {
            Some(tls) => {
                serve
                    .serve_with_incoming_shutdown(tls.accept(incoming), signal)
                    .await
            }
            None => serve.serve_with_incoming_shutdown(incoming, signal).await,
        }
    };
    tracing::info!(%address, "serving");

    let grace = config.shutdown_grace;
    let drain_ended = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
        tokio::select! {
            () = tokio::time::sleep(grace) => tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "calls still running when the shutdown grace ran out; stopping anyway"
            ),
            () = cut_drain_short => tracing::warn!("drain cut short; stopping with calls still running"),
        }
    };
    tokio::select! {
        result = serve => result?,
        () = drain_ended => {}
    }
    // Every answered write is already durable; closing lets queued ones finish
    // and checkpoints the log.
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Tells health checkers whether every cptd service is serving: the whole
/// server (the empty service name) and each service by name.
async fn set_serving(health: &HealthReporter, serving: bool) {
    let status = if serving {
        tonic_health::ServingStatus::Serving
    } else {
        tonic_health::ServingStatus::NotServing
    };
    for service in [
        "",
        <CodeLookupServer<CodeLookupService> as tonic::server::NamedService>::NAME,
        <QualityMeasuresServer<QualityMeasuresService> as tonic::server::NamedService>::NAME,
        <ClaimCheckServer<ClaimCheckService> as tonic::server::NamedService>::NAME,
    ] {
        health.set_service_status(service, status).await;
    }
}

/// Reports the server, and the service that needs the store, `NOT_SERVING`
/// while its database is unreachable and serving again when it answers, so
/// balancers send calls elsewhere meanwhile. Code look-ups and claim checks
/// need no database, and say so by name.
async fn follow_database(
    health: HealthReporter,
    mut reachable: tokio::sync::watch::Receiver<bool>,
) {
    while reachable.changed().await.is_ok() {
        let status = if *reachable.borrow_and_update() {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        for service in [
            "",
            <QualityMeasuresServer<QualityMeasuresService> as tonic::server::NamedService>::NAME,
        ] {
            health.set_service_status(service, status).await;
        }
    }
}

/// The answer to a call refused by the access check, as an answer rather
/// than an error, so the request log records it as it is. Other results pass
/// unchanged.
fn refusal_as_answer(
    result: Result<http::Response<Body>, BoxError>,
) -> Result<http::Response<Body>, BoxError> {
    match result {
        Err(error) => match error.downcast::<Refused>() {
            Ok(refused) => Ok(refused.0.into_http()),
            Err(error) => Err(error),
        },
        other => other,
    }
}

/// Opens the encounter store off the async runtime: opening migrates the
/// schema and counts again the measures whose definitions changed, which may
/// read the whole database.
async fn open_store(
    config: &Config,
    measures: Arc<MeasureSet>,
) -> Result<EncounterStore, ServerError> {
    let key = match (&config.patient_id_key, &config.patient_id_key_file) {
        (Some(secret), _) => Some(PatientIdKey::from_hex(&secret.0).map_err(|rule| {
            StoreError::Key(format!(
                "CPTD_PATIENT_ID_KEY (--patient-id-key) is refused: {rule}"
            ))
        })?),
        (None, Some(path)) => {
            let path = path.clone();
            Some(
                tokio::task::spawn_blocking(move || PatientIdKey::from_file(&path))
                    .await
                    .map_err(|error| StoreError::Key(error.to_string()))??,
            )
        }
        (None, None) => None,
    };
    let max_concurrent_reads = usize::try_from(config.max_concurrent_reads).unwrap_or(usize::MAX);
    if let Some(url) = &config.database_url {
        let key = key.ok_or_else(|| {
            StoreError::Key(
                "a shared database needs the patient-id key from CPTD_PATIENT_ID_KEY or \
                 --patient-id-key-file, the same on every replica"
                    .into(),
            )
        })?;
        let options = PostgresOptions {
            url: url.0.clone(),
            pool_size: config.database_pool_size as usize,
            statement_timeout: config.database_statement_timeout,
            ca_file: config.database_ca.clone(),
        };
        return Ok(EncounterStore::connect(options, key, max_concurrent_reads, measures).await?);
    }
    let options = StoreOptions {
        location: if config.in_memory {
            Location::InMemory
        } else {
            Location::Directory(config.data_dir.clone())
        },
        durability: match config.sync {
            SyncMode::Full => Durability::Full,
            SyncMode::Normal => Durability::Normal,
        },
        key,
        max_concurrent_reads,
    };
    tokio::task::spawn_blocking(move || EncounterStore::open(options, measures))
        .await
        .map_err(|error| StoreError::Io {
            path: config.data_dir.clone(),
            error: std::io::Error::other(error),
        })?
        .map_err(ServerError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{sync::Mutex, thread::ThreadId};

    /// Records the thread it was dropped on.
    struct Teardown(Arc<Mutex<Option<ThreadId>>>);

    impl Drop for Teardown {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(std::thread::current().id());
        }
    }

    #[tokio::test]
    async fn a_retired_registry_outlives_its_last_reader_then_drops_off_the_runtime() {
        let dropped_on = Arc::new(Mutex::new(None));
        let previous = Arc::new(Teardown(dropped_on.clone()));
        let reader = Arc::clone(&previous);

        retire(previous);
        tokio::time::sleep(RETIRED_REGISTRY_CHECK * 3).await;
        assert_eq!(*dropped_on.lock().unwrap(), None, "a call still reads it");
        drop(reader);
        // Liveness, not speed: wait as long as a loaded machine may need.
        for _ in 0..1000 {
            if dropped_on.lock().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(RETIRED_REGISTRY_CHECK).await;
        }

        let dropped_on = dropped_on.lock().unwrap().expect("dropped once unread");
        assert_ne!(
            dropped_on,
            std::thread::current().id(),
            "not on the runtime's thread"
        );
    }
}
