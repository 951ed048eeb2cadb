//! The encounter store on a PostgreSQL server that several cptd replicas
//! share.
//!
//! Each replica commits in groups as the embedded store does: one task takes
//! every job queued since its last commit and writes them in one
//! transaction of multi-row statements. Replicas take turns through one
//! transaction-level advisory lock, so the idempotency check, the units a
//! claim moves, the totals and the audit chain are decided by one writer at
//! a time against what the others committed; a report on any replica reads
//! the totals committed a moment before on another.
//!
//! A watcher pings the server every [`PING_EVERY`]; while it is unreachable
//! the store answers at once with [`StoreError::Unavailable`], and the server
//! reports itself `NOT_SERVING`.

mod reads;
mod recount;
mod schema;
mod writer;

use std::{path::PathBuf, sync::Arc, time::Duration};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{CareGapsPage, StoreError, StoredEncounter, patient_key::PatientHasher, writer::Job};
use crate::measures::{Measure, MeasureSet, PerformanceReport, Period, ProviderFilter};

/// How often the watcher checks that the database answers.
pub const PING_EVERY: Duration = Duration::from_secs(1);

/// How long opening a connection may take before the database counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the shared database is and how to reach it.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string, e.g. `postgres://cptd@db/cptd`.
    pub url: String,
    /// Most connections this replica opens, its writer's and its
    /// watcher's included.
    pub pool_size: usize,
    /// Longest a statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// CA certificates (PEM) the server's certificate must chain to; when
    /// given, the connection is TLS or nothing.
    pub ca_file: Option<PathBuf>,
}

/// The parts of an open shared store.
pub struct Shared {
    pool: Pool,
    reachable: watch::Receiver<bool>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    watcher: JoinHandle<()>,
}

/// Converts a driver error: a lost or refused connection, or a server
/// shutting down, is the database being unreachable, which a retry may
/// outlast; anything else is a failure of the statement.
impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        let unreachable = match error.code() {
            None => true,
            Some(code) => {
                let code = code.code();
                // 08: connection exceptions; 57: a statement cancelled (by
                // the statement timeout, say) or the server shutting down or
                // starting; 53300: too many connections; 55000: connections
                // to the database not allowed.
                code.starts_with("08")
                    || code.starts_with("57")
                    || code == "53300"
                    || code == "55000"
            }
        };
        if unreachable {
            StoreError::Unavailable(with_causes(&error))
        } else {
            StoreError::Postgres(error)
        }
    }
}

/// `error` and each error under it, so that a refused certificate or a
/// refused password is named, not only "error connecting".
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> StoreError {
        match error {
            deadpool_postgres::PoolError::Backend(error) => StoreError::from(error),
            other => StoreError::Unavailable(with_causes(&other)),
        }
    }
}

impl Shared {
    /// Connects, migrates the schema, checks the key and counts again the
    /// measures whose definitions changed, all under one session lock so
    /// replicas starting together do it once; then starts the writer and
    /// the watcher.
    pub async fn open(
        options: &PostgresOptions,
        hasher: &PatientHasher,
        measures: Arc<MeasureSet>,
        jobs: mpsc::Receiver<Job>,
    ) -> Result<Shared, StoreError> {
        // Off the runtime: making the pool reads the CA file.
        let for_pool = options.clone();
        let pool = tokio::task::spawn_blocking(move || pool(&for_pool))
            .await
            .map_err(|error| StoreError::Config(format!("the database pool: {error}")))??;
        let mut client = pool.get().await?;
        schema::migrate(&mut client).await?;
        let setup = async {
            schema::check_key(&client, hasher).await?;
            recount::changed_measures(&mut client, &measures).await
        }
        .await;
        schema::unlock(&client).await?;
        let recounted = setup?;
        let head = reads::audit_head(&client).await?;
        tracing::info!(
            audit_records = head.records,
            audit_head = %head.hash,
            "audit trail head"
        );
        tracing::info!(recounted, "encounter store opened on PostgreSQL");
        let (report, reachable) = watch::channel(true);
        let watcher = tokio::spawn(watch_database(pool.clone(), Some(client), report));
        let writer = tokio::spawn(writer::run(
            pool.clone(),
            jobs,
            measures.clone(),
            super::measure_set_version(&measures),
            reachable.clone(),
        ));
        Ok(Shared {
            pool,
            reachable,
            writer: std::sync::Mutex::new(Some(writer)),
            watcher,
        })
    }

    /// Whether the database answers, as the watcher last saw; changes as it
    /// goes away and comes back.
    pub fn reachable(&self) -> watch::Receiver<bool> {
        self.reachable.clone()
    }

    /// A connection for a read, or at once [`StoreError::Unavailable`] while
    /// the database is unreachable.
    async fn connection(&self) -> Result<Object, StoreError> {
        if !*self.reachable.borrow() {
            return Err(StoreError::Unavailable(
                "the watcher cannot reach it".into(),
            ));
        }
        Ok(self.pool.get().await?)
    }

    pub async fn report(
        &self,
        measure: Arc<Measure>,
        providers: ProviderFilter,
        period: Period,
    ) -> Result<PerformanceReport, StoreError> {
        reads::report(&self.connection().await?, measure, providers, period).await
    }

    pub async fn care_gaps(
        &self,
        measure: &Measure,
        providers: &ProviderFilter,
        period: Period,
        offset: usize,
        limit: usize,
    ) -> Result<CareGapsPage, StoreError> {
        let client = self.connection().await?;
        reads::care_gaps(&client, measure, providers, period, offset, limit).await
    }

    pub async fn encounter(
        &self,
        measures: &MeasureSet,
        encounter_id: &str,
    ) -> Result<Option<StoredEncounter>, StoreError> {
        reads::encounter(&self.connection().await?, measures, encounter_id).await
    }

    /// Waits for the writer, which ends once it has answered the jobs
    /// queued before the store's request to stop; then stops the watcher and
    /// closes the connections.
    pub async fn close(&self) {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        self.watcher.abort();
        self.pool.close();
    }
}

/// The audit trail of the database `options` name, checked from its first
/// record, with the records written at or after `since`. Reads only.
pub async fn audit_trail(
    options: &PostgresOptions,
    since: &str,
) -> Result<Result<Vec<super::AuditRecord>, super::BrokenChain>, StoreError> {
    let pool = pool(options)?;
    let client = pool.get().await?;
    reads::audit_trail(&client, since).await
}

/// The pool of connections `options` describe.
fn pool(options: &PostgresOptions) -> Result<Pool, StoreError> {
    let mut config: tokio_postgres::Config = options
        .url
        .parse()
        .map_err(|error| StoreError::Config(format!("--database-url is refused: {error}")))?;
    config
        .application_name("cptd")
        .connect_timeout(CONNECT_TIMEOUT)
        .options(format!(
            "-c statement_timeout={}",
            options.statement_timeout.as_millis()
        ));
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match &options.ca_file {
        None => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        Some(ca_file) => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(ca_file)?);
            Manager::from_config(config, tls, manager_config)
        }
    };
    Pool::builder(manager)
        .max_size(options.pool_size.max(3))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|error| StoreError::Config(format!("the database pool: {error}")))
}

/// A TLS client that trusts the CA certificates in `ca_file` only.
fn tls_config(ca_file: &std::path::Path) -> Result<tokio_rustls::rustls::ClientConfig, StoreError> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    use tokio_rustls::rustls;
    let refused = |why: String| {
        StoreError::Config(format!(
            "--database-ca {} is refused: {why}",
            ca_file.display()
        ))
    };
    let pem = crate::source_files::read_regular_file(ca_file, crate::tls::MAX_TLS_FILE_BYTES)
        .map_err(refused)?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let certificate = certificate.map_err(|error| refused(error.to_string()))?;
        roots
            .add(certificate)
            .map_err(|error| refused(error.to_string()))?;
    }
    if roots.is_empty() {
        return Err(refused("it holds no certificate".into()));
    }
    let provider = Arc::new(crate::tls::ring_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| refused(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Pings the database on a connection of its own every [`PING_EVERY`] and
/// reports whether it answered, logging each change.
async fn watch_database(pool: Pool, mut held: Option<Object>, report: watch::Sender<bool>) {
    let mut ticks = tokio::time::interval(PING_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if held.is_none() {
            held = pool.get().await.ok();
        }
        let answered = match &held {
            Some(client) => tokio::time::timeout(CONNECT_TIMEOUT, client.simple_query("SELECT 1"))
                .await
                .is_ok_and(|answer| answer.is_ok()),
            None => false,
        };
        if !answered {
            // A connection that failed once is not trusted again.
            held.take().map(Object::take);
        }
        let was = *report.borrow();
        if was != answered {
            if answered {
                tracing::info!("the database answers again");
            } else {
                tracing::error!(
                    "the database cannot be reached; calls that need it fail until it returns"
                );
            }
            report.send_replace(answered);
        }
    }
}
