//! Assembling and running the gRPC server.

use std::{
    collections::HashMap,
    future::Future,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::Server;

use crate::{
    api::{
        AdmissionLayer, CodeLookupService, InteractiveCallsLayer, QualityMeasuresService,
        RequestLogLayer, code_lookup_routes, quality_measures_routes,
    },
    background::BackgroundPool,
    codes::{CodeRegistry, CodeSetError, CodeValue},
    config::{CallScheduling, Config, SyncMode},
    measures::{MeasureSet, MeasureSetError},
    pb::{
        self, code_lookup_server::CodeLookupServer, quality_measures_server::QualityMeasuresServer,
    },
    scheduling,
    store::{Durability, EncounterStore, Location, PatientIdKey, StoreError, StoreOptions},
    transport,
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
    /// The encounter store could not be opened.
    #[error("cannot open the encounter store: {0}")]
    Store(#[from] StoreError),
    /// Reflection could not be built from the descriptor sets.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("the server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The threads imports run on could not be started.
    #[error("cannot start the import threads: {0}")]
    ImportThreads(std::io::Error),
}

/// Re-reads the code-set files on each SIGHUP and swaps the new registry in whole.
/// Calls in flight keep the snapshot they started with; a refused reload keeps the
/// running registry and logs every problem.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    registry: Arc<ArcSwap<CodeRegistry>>,
    files: Vec<PathBuf>,
    measure_ids: MeasureIdsByCode,
) {
    while hangups.recv().await.is_some() {
        let files = files.clone();
        let measure_ids = measure_ids.clone();
        let started = Instant::now();
        let load =
            move || CodeRegistry::load(&files).map(|loaded| loaded.with_measure_ids(&measure_ids));
        match tokio::task::spawn_blocking(load).await {
            Ok(Ok(reloaded)) => {
                tracing::info!(
                    codes = reloaded.len(),
                    registry_version = %reloaded.version(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "code set reloaded"
                );
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

/// The runtime to [`run`] the server on: tokio's multi-threaded runtime, one
/// worker a core, whose threads (workers and the blocking pool, which serves
/// large searches) ask the kernel for short time slices, so that, where the
/// kernel preempts on wake-up, a call that wakes one of them is not kept
/// waiting behind bulk work ([`crate::scheduling`]; bulk loops also yield for
/// kernels that do not). Under [`CallScheduling::Realtime`] the workers also
/// run in real time while look-ups arrive during bulk work, which works on
/// every kernel ([`scheduling::follow_interactive_calls`]), and bulk work
/// stops yielding, since calls take the core themselves; it fails here,
/// before any thread starts, when the process may not.
pub fn runtime(calls: CallScheduling) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        // Named, so that `top -H` and `perf` tell the server's calls apart
        // from the store's and the import's threads.
        .thread_name("cptd-runtime")
        .on_thread_start(scheduling::shorten_this_threads_slice);
    if calls == CallScheduling::Realtime {
        scheduling::realtime_is_permitted().map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!(
                    "--call-scheduling realtime needs CAP_SYS_NICE or a real-time priority \
                     limit of at least {} (ulimit -r; systemd: LimitRTPRIO): {error}",
                    scheduling::CALL_REALTIME_PRIORITY
                ),
            )
        })?;
        builder.on_thread_park(scheduling::follow_interactive_calls);
        scheduling::let_calls_preempt_bulk_work();
    }
    builder.build()
}

/// Serves every cptd service on `listener` until `shutdown` completes, then stops
/// accepting, lets calls in flight finish for up to `config.shutdown_grace`, and
/// returns.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let started = Instant::now();
    let measures = Arc::new(MeasureSet::load(&config.measure_files)?);
    tracing::info!(
        measures = measures.measures().len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "measures loaded"
    );
    let measure_ids: MeasureIdsByCode = Arc::new(measures.measure_ids_by_code());

    let started = Instant::now();
    let registry = CodeRegistry::load(&config.code_files)?.with_measure_ids(&measure_ids);
    tracing::info!(
        codes = registry.len(),
        registry_version = %registry.version(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "code registry built"
    );
    let registry = Arc::new(ArcSwap::from_pointee(registry));
    // Installed before serving: SIGHUP's default action ends the process, so the
    // handler must exist before anyone can be told the server is up.
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => {
            tokio::spawn(reload_on_hangup(
                hangups,
                registry.clone(),
                config.code_files.clone(),
                measure_ids,
            ));
        }
        Err(error) => tracing::error!(%error, "cannot listen for SIGHUP; code-set reload is off"),
    }
    let store = Arc::new(open_store(&config, measures.clone()).await?);

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CodeLookupServer<CodeLookupService>>()
        .await;
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    health_reporter
        .set_serving::<QualityMeasuresServer<QualityMeasuresService>>()
        .await;
    // One thread a core: an import prepares chunks on several at once, below
    // the look-ups' priority and yielding its core as it goes.
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let import_threads =
        Arc::new(BackgroundPool::new(cores, "cptd-import").map_err(ServerError::ImportThreads)?);
    let quality_measures = quality_measures_routes(
        QualityMeasuresService::new(
            registry.clone(),
            measures,
            store.clone(),
            import_threads,
            config.strict_codes,
        ),
        MAX_MESSAGE_BYTES,
    );
    let code_lookup = code_lookup_routes(CodeLookupService::new(registry), MAX_MESSAGE_BYTES);

    let address = listener.local_addr().ok();
    let incoming = transport::accept(listener);
    let (stopping_sender, mut stopping) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = stopping_sender.send(true);
    };
    let max_concurrent_calls = usize::try_from(config.max_concurrent_calls).unwrap_or(usize::MAX);
    let serve = Server::builder()
        .initial_stream_window_size(transport::STREAM_WINDOW)
        .initial_connection_window_size(transport::CONNECTION_WINDOW)
        .timeout(config.request_timeout)
        .layer(RequestLogLayer)
        .layer(InteractiveCallsLayer)
        .layer(AdmissionLayer::new(max_concurrent_calls))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(code_lookup)
        .add_service(quality_measures)
        .serve_with_incoming_shutdown(incoming, signal);
    if let Some(address) = address {
        tracing::info!(%address, "serving");
    }

    let grace = config.shutdown_grace;
    let grace_expired = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = serve => result?,
        () = grace_expired => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "calls still running when the shutdown grace ran out; stopping anyway");
        }
    }
    // Every answered write is already durable; closing lets queued ones finish
    // and checkpoints the log.
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the encounter store off the async runtime: opening rebuilds the totals
/// from every stored encounter, which reads the whole database.
async fn open_store(
    config: &Config,
    measures: Arc<MeasureSet>,
) -> Result<EncounterStore, ServerError> {
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
        key: config
            .patient_id_key
            .as_ref()
            .map(|secret| {
                PatientIdKey::from_hex(&secret.0).map_err(|rule| {
                    StoreError::Key(format!(
                        "CPTD_PATIENT_ID_KEY (--patient-id-key) is refused: {rule}"
                    ))
                })
            })
            .transpose()?,
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

    /// The policy of a worker that runs a task after the runtime has idled
    /// with a caller waiting, so that every worker has parked at least once
    /// since an interactive call (under real-time scheduling a worker moves
    /// when it parks). Tried until it is `wanted`, for workers whose threads
    /// start late; the last one seen.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    async fn idled_workers_policy(wanted: i32) -> i32 {
        let mut policy = -1;
        for _ in 0..1000 {
            scheduling::note_interactive_call();
            tokio::time::sleep(Duration::from_millis(5)).await;
            policy = tokio::spawn(async { scheduling::this_threads_policy() })
                .await
                .unwrap();
            if policy == wanted {
                break;
            }
        }
        policy
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn real_time_call_scheduling_moves_the_workers_and_nothing_else() {
        if scheduling::realtime_is_permitted().is_err() {
            let refused = runtime(CallScheduling::Realtime).expect_err("not permitted here");
            assert!(
                refused.to_string().contains("needs CAP_SYS_NICE"),
                "{refused}"
            );
            return;
        }
        let realtime = runtime(CallScheduling::Realtime).unwrap();
        assert!(
            !scheduling::bulk_work_yields(),
            "calls preempt bulk work, which need not yield"
        );
        let _import = scheduling::BulkWork::start();
        realtime.block_on(async {
            assert_eq!(
                idled_workers_policy(libc::SCHED_FIFO).await,
                libc::SCHED_FIFO
            );
            let blocking = tokio::task::spawn_blocking(scheduling::this_threads_policy);
            assert_eq!(
                blocking.await.unwrap(),
                libc::SCHED_OTHER,
                "large searches stay fair"
            );
        });
        let fair = runtime(CallScheduling::Fair).unwrap();
        fair.block_on(async {
            assert_eq!(
                idled_workers_policy(libc::SCHED_OTHER).await,
                libc::SCHED_OTHER
            )
        });
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
