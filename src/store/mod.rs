//! The encounter store: SQLite under the data directory (or in memory),
//! written by one thread that commits in groups, with the units and totals of
//! every measure kept in the same database, moved in the same transactions as
//! the claims that move them.
//!
//! # Durability
//!
//! The database runs in WAL mode. With [`Durability::Full`] (the default) every
//! commit is synced to disk before any caller it contains is answered, so an
//! answered encounter survives a process crash and a power cut. With
//! [`Durability::Normal`] the log is synced only at checkpoints: an answered
//! encounter still survives a crash or `kill -9` of the process (the operating
//! system has the data), but a power failure or kernel crash may lose the most
//! recent answered writes, never corrupting the database. Units and totals
//! commit with their claims, so after any crash they are exactly those of the
//! claims stored.
//!
//! # Patient data
//!
//! A patient id is stored only as its HMAC-SHA256 under the key of
//! [`PatientIdKey`]. The key's own check value is stored too, so opening a data
//! directory with a different key is refused instead of silently splitting each
//! patient in two.

mod audit;
mod checkpointer;
mod claim_json;
mod counting;
mod database;
mod database_lock;
mod file_modes;
mod patient_key;
mod postgres;
mod reads;
mod recount;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::Instant,
};

use tokio::sync::{mpsc, oneshot};

pub use audit::{AuditEntry, AuditRecord, BrokenChain, ChainHead};
pub use database_lock::PID_FILE;
pub use patient_key::{KEY_FILE, PatientIdKey};
pub use postgres::{PING_EVERY, PostgresOptions, audit_trail as shared_audit_trail};
pub use reads::{CareGap, CareGapsPage, EncounterUnit, StoredEncounter};
pub use recount::set_version as measure_set_version;

use crate::measures::{
    CalculationType, Claim, Encounter, Judged, Measure, MeasureSet, PerformanceKind,
    PerformanceReport, Period, ProviderFilter, Tin, measurement_set,
};
use checkpointer::Checkpointer;
use database::Readers;
use patient_key::PatientHasher;
use writer::{Job, Writer};

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "encounters.sqlite3";

/// Most jobs waiting for the writer; callers beyond it wait their turn to
/// queue, so a burst never grows an unbounded backlog.
const QUEUED_JOBS: usize = 256;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A file or directory could not be used.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The patient-id key could not be read or made.
    #[error("patient-id key: {0}")]
    Key(String),
    /// The data directory lets its group or others in, and cannot be narrowed.
    #[error(
        "{} has mode {mode:04o}: its group or others may read the encounters in it, and \
         cptd may not change that; run `chmod 700 {}` as its owner (or give cptd a directory \
         of its own) and start again",
        directory.display(),
        directory.display()
    )]
    OpenToOthers {
        /// The data directory.
        directory: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Another store, most likely another server, has the database open.
    #[error(
        "{} is in use by another running cptd{}; stop that server first, or give this one a \
         data directory of its own",
        directory.display(),
        holder.map(|pid| format!(" (process {pid})")).unwrap_or_default()
    )]
    InUse {
        /// The data directory.
        directory: PathBuf,
        /// The holder's process id, when it could be read.
        holder: Option<u32>,
    },
    /// The key given differs from the one the data directory was written with.
    #[error(
        "the patient-id key differs from the one this data directory was written with; \
         give the original key (CPTD_PATIENT_ID_KEY or the key file) or use a new data directory"
    )]
    KeyMismatch,
    /// The database was written by a newer cptd.
    #[error(
        "the database has schema version {found}, newer than {known} that this cptd knows; upgrade cptd"
    )]
    NewerSchema {
        /// The database's version.
        found: i64,
        /// This build's version.
        known: i64,
    },
    /// A stored row could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A commit failed; nothing of it was stored. The writer logged why.
    #[error("the write could not be committed")]
    CommitFailed,
    /// A commit failed for want of room: the disk is full, or a file reached
    /// the process's file-size limit. Nothing of it was stored; the same write
    /// succeeds once there is room.
    #[error("the write could not be committed: no room left on the disk")]
    NoRoom,
    /// The writer thread is gone (the server is stopping).
    #[error("the store is closed")]
    Closed,
    /// PostgreSQL refused a statement.
    #[error("database error: {0}")]
    Postgres(tokio_postgres::Error),
    /// The shared database cannot be reached, or cancelled a statement that ran
    /// too long; nothing of the call was written, and the same call may succeed later.
    /// was written, and the same call succeeds once it is back.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The shared database is counted under other measure definitions than
    /// this server's: another replica started with other measure files.
    #[error(
        "the shared database is counted under other measure definitions than this server's; \
         start every replica with the same --measures files"
    )]
    MeasuresDiffer,
    /// A setting of the store is refused.
    #[error("{0}")]
    Config(String),
    /// A read-only opening found measures counted otherwise than the ones
    /// given (other definitions, or measures not given).
    #[error(
        "measure(s) {} are not counted in this data directory as the measures given define \
         them; give the --measures files the server runs with",
        .0.join(", ")
    )]
    OtherMeasures(Vec<String>),
    /// A read-only opening found the database at another schema version.
    #[error(
        "the database has schema version {found}, this cptd writes {known}; start this cptd's \
         server on it once (it migrates at start), or use the cptd that wrote it"
    )]
    OtherSchema {
        /// The database's version.
        found: i64,
        /// This build's version.
        known: i64,
    },
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory, created if missing.
    Directory(PathBuf),
    /// Memory only: nothing reaches the disk, everything is lost at exit.
    InMemory,
}

/// How hard a commit tries to reach the disk; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Sync every commit (SQLite `synchronous=FULL`).
    #[default]
    Full,
    /// Sync at checkpoints only (`synchronous=NORMAL`).
    Normal,
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Where.
    pub location: Location,
    /// How durable each commit is.
    pub durability: Durability,
    /// The patient-id key; `None` reads or creates the data directory's key
    /// file (or, in memory, makes a throwaway key).
    pub key: Option<PatientIdKey>,
    /// Reads run at once, each on a connection of its own; more wait for a
    /// turn. Each reading connection holds its own page cache, so this bounds
    /// the store's memory however many calls read at once.
    pub max_concurrent_reads: usize,
}

/// One encounter to record, with its judgements under the store's measures
/// ([`MeasureSet::judge`] of the set the store was opened with): a caller
/// that answers with verdicts judges once, not once for itself and once for
/// the store.
#[derive(Debug)]
pub struct Submission {
    /// The encounter.
    pub encounter: Encounter,
    /// Replace a stored encounter with the same id and different content (or
    /// a voided one).
    pub replace: bool,
    /// Its judgements, one per measure stratum.
    pub judged: Vec<Judged>,
}

/// What recording one encounter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored for the first time.
    Stored,
    /// Stored in place of a different (or voided) version, which no longer
    /// counts.
    Replaced,
    /// Already stored with the same content; nothing changed.
    Duplicate,
    /// Stored with different content, and replacing was not asked for.
    Conflict,
    /// Stored and voided, and replacing was not asked for.
    Voided,
}

/// What voiding an encounter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voided {
    /// It stopped counting now.
    Voided,
    /// It was voided before; nothing changed.
    AlreadyVoided,
    /// No encounter has that id.
    NotFound,
}

/// A claim's mark in one measure stratum, made ready for the writer.
#[derive(Debug)]
struct PreparedMark {
    measure_id: Arc<str>,
    stratum: i64,
    /// The group's year, or its date for measures whose units live within one.
    bucket: String,
    marker: Option<PerformanceKind>,
    weight: u32,
    /// For episode measures, the claim's diagnoses the measure names.
    diagnoses: String,
}

impl PreparedMark {
    /// The mark of `claim` in stratum `stratum` of `measure`, where it is
    /// eligible with `marker` and `weight`.
    fn new(
        measure: &Measure,
        stratum: usize,
        marker: Option<PerformanceKind>,
        weight: u32,
        claim: &Claim,
    ) -> PreparedMark {
        let bucket = if measure.calculation.unit_is_one_date() {
            claim.service_date.to_string()
        } else {
            claim.service_date.year().to_string()
        };
        let diagnoses = if measure.calculation == CalculationType::IntersectingDiagnosis {
            let named: Vec<&str> = claim
                .diagnoses
                .iter()
                .filter(|diagnosis| measure.ties_episodes(stratum, diagnosis))
                .map(|diagnosis| diagnosis.compact())
                .collect();
            named.join(",")
        } else {
            String::new()
        };
        PreparedMark {
            measure_id: measure.id.clone(),
            stratum: stratum as i64,
            bucket,
            marker,
            weight,
            diagnoses,
        }
    }
}

/// An encounter made ready for the writer by [`EncounterStore::prepare`]: its
/// patient id hashed, its claim serialised, its marks made.
#[derive(Debug)]
pub struct PreparedRow {
    encounter_id: String,
    patient_hash: [u8; 32],
    npi: String,
    tin: String,
    service_date_text: String,
    claim_json: String,
    replace: bool,
    marks: Vec<PreparedMark>,
}

/// A write the writer has queued; [`PendingWrite::finish`] waits for its commit.
#[derive(Debug)]
pub struct PendingWrite(oneshot::Receiver<Result<Vec<Recorded>, StoreError>>);

impl PendingWrite {
    /// One result per row, in order, once the commit is durable.
    pub async fn finish(self) -> Result<Vec<Recorded>, StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

/// The durable store of encounters, their units and totals.
pub struct EncounterStore {
    /// The writer's queue: the embedded store's writer thread, or the shared
    /// store's writer task.
    jobs: mpsc::Sender<Job>,
    /// One permit a read running.
    reads: Arc<tokio::sync::Semaphore>,
    /// The measures the units are counted under.
    measures: Arc<MeasureSet>,
    hasher: PatientHasher,
    backend: Backend,
}

/// Where the encounters are kept.
enum Backend {
    /// SQLite under the data directory, or in memory.
    Embedded(Embedded),
    /// PostgreSQL, shared with other replicas.
    Shared(postgres::Shared),
}

/// The parts of an open embedded store.
struct Embedded {
    readers: Arc<Readers>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The hold on the database file, shared with the writer; released by
    /// [`EncounterStore::close`], or last when dropped, after the reading
    /// connections.
    database_lock: Mutex<Option<Arc<database_lock::DatabaseLock>>>,
}

impl std::fmt::Debug for EncounterStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EncounterStore")
    }
}

impl EncounterStore {
    /// Opens (or creates) the store, migrates its schema, checks the key,
    /// counts again the measures whose definitions changed since the last
    /// start, and starts the writer thread. Blocking: call it off the async
    /// runtime.
    pub fn open(
        options: StoreOptions,
        measures: Arc<MeasureSet>,
    ) -> Result<EncounterStore, StoreError> {
        let started = Instant::now();
        let (mut connection, key, database_lock, readers) = database::open(&options)?;
        let database_lock = database_lock.map(Arc::new);
        schema::migrate(&mut connection)?;
        let hasher = key.hasher();
        database::check_key(&connection, &hasher)?;
        let recounted = recount::changed_measures(&mut connection, &measures)?;
        // Logged so that a copy of the log kept elsewhere anchors the chain:
        // records cut off its end would otherwise go unnoticed.
        let audit_head = audit::head(&connection)?;
        tracing::info!(
            audit_records = audit_head.records,
            audit_head = %audit_head.hash,
            "audit trail head"
        );
        tracing::info!(
            recounted,
            in_memory = options.location == Location::InMemory,
            durability = ?options.durability,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "encounter store opened"
        );
        let thread_error = |error| StoreError::Io {
            path: PathBuf::from("<store thread>"),
            error,
        };
        let checkpointer = match &options.location {
            Location::InMemory => None,
            Location::Directory(directory) => {
                let own = database::open_file(directory, options.durability)?;
                Some(Checkpointer::start(own, &mut connection).map_err(thread_error)?)
            }
        };
        let (jobs, queued) = mpsc::channel(QUEUED_JOBS);
        let writer = Writer {
            connection,
            jobs: queued,
            measures: measures.clone(),
            checkpointer,
            database_lock: database_lock.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("cptd-store-writer".into())
            .spawn(move || {
                crate::bulk_priority::lower_this_thread("store writer");
                writer.run()
            })
            .map_err(thread_error)?;
        Ok(EncounterStore {
            jobs,
            reads: Arc::new(tokio::sync::Semaphore::new(
                options.max_concurrent_reads.max(1),
            )),
            measures,
            hasher,
            backend: Backend::Embedded(Embedded {
                readers: Arc::new(readers),
                writer: Mutex::new(Some(handle)),
                database_lock: Mutex::new(database_lock),
            }),
        })
    }

    /// Connects to the PostgreSQL database `options` name, shared with
    /// other replicas: migrates its schema, checks `key` against the one it
    /// was written with, counts again the measures whose definitions
    /// changed, and starts this replica's writer.
    pub async fn connect(
        options: PostgresOptions,
        key: PatientIdKey,
        max_concurrent_reads: usize,
        measures: Arc<MeasureSet>,
    ) -> Result<EncounterStore, StoreError> {
        let hasher = key.hasher();
        let (jobs, queued) = mpsc::channel(QUEUED_JOBS);
        // Reads never take the connections the writer and the watcher need.
        let reads = max_concurrent_reads
            .min(options.pool_size.saturating_sub(2))
            .max(1);
        let shared = postgres::Shared::open(&options, &hasher, measures.clone(), queued).await?;
        Ok(EncounterStore {
            jobs,
            reads: Arc::new(tokio::sync::Semaphore::new(reads)),
            measures,
            hasher,
            backend: Backend::Shared(shared),
        })
    }

    /// Whether the database answers, for a store whose database can go away
    /// while the server runs (a shared one); `None` for the embedded store.
    pub fn reachable(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        match &self.backend {
            Backend::Embedded(_) => None,
            Backend::Shared(shared) => Some(shared.reachable()),
        }
    }

    /// Opens the store of `directory` to read it alone, changing nothing in
    /// it: no migration and no counting again. Refused when its schema is not
    /// this build's, when another process has it open, or when a measure of
    /// `measures` is not counted there as it is defined, or it counts measures
    /// not in `measures` (pass the measure files the server runs with). Writes fail with [`StoreError::Closed`].
    /// Blocking.
    pub fn open_read_only(
        directory: &std::path::Path,
        key: Option<PatientIdKey>,
        measures: Arc<MeasureSet>,
    ) -> Result<EncounterStore, StoreError> {
        let io_error = |error| StoreError::Io {
            path: directory.join(DATABASE_FILE),
            error,
        };
        if !directory.join(DATABASE_FILE).is_file() {
            return Err(io_error(std::io::ErrorKind::NotFound.into()));
        }
        file_modes::prepare(directory)?;
        let lock = database_lock::DatabaseLock::acquire(directory)?;
        let key = match key {
            Some(key) => key,
            None => PatientIdKey::in_directory(directory)?,
        };
        let connection = database::open_file(directory, Durability::Full)?;
        schema::require_current(&connection)?;
        let hasher = key.hasher();
        database::check_key(&connection, &hasher)?;
        let differences = recount::differences(&connection, &measures)?;
        if !differences.is_empty() {
            return Err(StoreError::OtherMeasures(differences));
        }
        drop(connection);
        let (jobs, _) = mpsc::channel(1);
        Ok(EncounterStore {
            jobs,
            // One export reads at a time.
            reads: Arc::new(tokio::sync::Semaphore::new(1)),
            measures,
            hasher,
            backend: Backend::Embedded(Embedded {
                readers: Arc::new(Readers::for_directory(directory)),
                writer: Mutex::new(None),
                database_lock: Mutex::new(Some(Arc::new(lock))),
            }),
        })
    }

    /// Makes `submission` ready for the writer: hashes the patient id,
    /// serialises the claim and makes its marks. CPU work only, a few
    /// microseconds; an import prepares its rows off the async runtime.
    pub fn prepare(&self, submission: Submission) -> PreparedRow {
        let Submission {
            encounter,
            replace,
            judged,
        } = submission;
        let claim = encounter.claim;
        let marks = judged
            .iter()
            .filter(|judged| judged.judgement.is_eligible())
            .map(|judged| {
                PreparedMark::new(
                    &judged.measure,
                    judged.stratum,
                    judged.judgement.marker,
                    judged.judgement.weight,
                    &claim,
                )
            })
            .collect();
        PreparedRow {
            patient_hash: self.hasher.hash(&encounter.patient_id),
            encounter_id: encounter.encounter_id,
            service_date_text: claim.service_date.to_string(),
            claim_json: claim_json::to_json(&claim),
            npi: claim.provider_id,
            tin: claim
                .tin
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            replace,
            marks,
        }
    }

    /// Records `submissions`, in order, and answers once they are durable (or
    /// known duplicates or conflicts). All are committed together or, on a
    /// database failure, none.
    pub async fn record(&self, submissions: Vec<Submission>) -> Result<Vec<Recorded>, StoreError> {
        let rows = submissions
            .into_iter()
            .map(|submission| self.prepare(submission))
            .collect();
        self.submit(rows).await?.finish().await
    }

    /// Queues `rows` for the writer and returns once they are queued, so a
    /// caller with more to write can go on preparing it; writes are applied
    /// in the order queued. Waits only while the queue is full.
    pub async fn submit(&self, rows: Vec<PreparedRow>) -> Result<PendingWrite, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write { rows, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(PendingWrite(answer))
    }

    /// Voids `encounter_id` (a reversed claim): it stays stored, so its id
    /// stays taken, and stops counting; the units it belonged to are decided
    /// again. Answers once durable.
    pub async fn void(&self, encounter_id: &str) -> Result<Voided, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Void {
                encounter_id: encounter_id.to_string(),
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Appends `entries` to the audit trail and answers once they are
    /// durable, committed with whatever else the writer has queued.
    pub async fn audit(&self, entries: Vec<AuditEntry>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Audit { entries, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// The audit trail of the data directory `directory`, checked from its
    /// first record, with the records written at or after `since`. Opens the
    /// database read-only; a server may be running on it. Blocking.
    pub fn audit_trail(
        directory: &std::path::Path,
        since: &str,
    ) -> Result<Result<Vec<AuditRecord>, BrokenChain>, StoreError> {
        let path = directory.join(DATABASE_FILE);
        let connection = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        schema::require_current(&connection)?;
        audit::read_verified(&connection, since)
    }

    /// The performance of `measure` for `providers` over `period`.
    pub async fn report(
        &self,
        measure: Arc<Measure>,
        providers: ProviderFilter,
        period: Period,
    ) -> Result<PerformanceReport, StoreError> {
        let _turn = self.reads.acquire().await.map_err(|_| StoreError::Closed)?;
        match &self.backend {
            Backend::Embedded(embedded) => {
                embedded
                    .read(move |connection| reads::report(connection, measure, providers, period))
                    .await
            }
            Backend::Shared(shared) => shared.report(measure, providers, period).await,
        }
    }

    /// The QPP measurement set of the provider `tin` and `npi` for the
    /// performance year `year`: one measurement per measure that can be
    /// submitted and has eligible units.
    pub async fn measurement_set(
        &self,
        tin: &Tin,
        npi: &str,
        year: i16,
    ) -> Result<serde_json::Value, StoreError> {
        let providers = ProviderFilter {
            tin: Some(tin.to_string()),
            npi: Some(npi.to_string()),
        };
        let mut reports = Vec::new();
        for measure in self.measures.measures() {
            if measure.submittable {
                let report = self
                    .report(measure.clone(), providers.clone(), Period::year(year))
                    .await?;
                reports.push(report);
            }
        }
        Ok(measurement_set(tin, npi, year, &reports))
    }

    /// The units of `measure` for `providers` over `period` that are eligible
    /// but unreported or not met (met, for an inverse measure): `limit` of
    /// them from the `offset`-th, in a stable order.
    pub async fn care_gaps(
        &self,
        measure: Arc<Measure>,
        providers: ProviderFilter,
        period: Period,
        offset: usize,
        limit: usize,
    ) -> Result<CareGapsPage, StoreError> {
        let _turn = self.reads.acquire().await.map_err(|_| StoreError::Closed)?;
        match &self.backend {
            Backend::Embedded(embedded) => {
                embedded
                    .read(move |connection| {
                        reads::care_gaps(connection, &measure, &providers, period, offset, limit)
                    })
                    .await
            }
            Backend::Shared(shared) => {
                shared
                    .care_gaps(&measure, &providers, period, offset, limit)
                    .await
            }
        }
    }

    /// What is stored for `encounter_id`, never its patient id.
    pub async fn encounter(
        &self,
        encounter_id: &str,
    ) -> Result<Option<StoredEncounter>, StoreError> {
        let _turn = self.reads.acquire().await.map_err(|_| StoreError::Closed)?;
        match &self.backend {
            Backend::Embedded(embedded) => {
                let encounter_id = encounter_id.to_string();
                let measures = self.measures.clone();
                embedded
                    .read(move |connection| reads::encounter(connection, &measures, &encounter_id))
                    .await
            }
            Backend::Shared(shared) => shared.encounter(&self.measures, encounter_id).await,
        }
    }

    /// Lets the writer finish every queued job, checkpoints, stops it, and
    /// releases the database for another process. Writes sent afterwards
    /// fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.jobs.send(Job::Stop { done }).await.is_ok() {
            let _ = stopped.await;
        }
        match &self.backend {
            Backend::Embedded(embedded) => embedded.close().await,
            Backend::Shared(shared) => shared.close().await,
        }
    }
}

impl Embedded {
    /// Runs `read` on a reading connection off the async runtime.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(read))
            .await
            .map_err(|error| StoreError::Corrupt(format!("a read failed: {error}")))?
    }

    /// Waits for the writer thread to end, then releases the database for
    /// another process.
    async fn close(&self) {
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        // The database is another process's to open once this returns; its
        // lock goes after the kept reading connections (see `database_lock`).
        self.readers.close_idle();
        self.database_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}
