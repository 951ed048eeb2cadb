//! The encounter store: SQLite under the data directory (or in memory), written
//! by one thread that commits in groups, with the running performance totals
//! kept beside it.
//!
//! # Durability
//!
//! The database runs in WAL mode. With [`Durability::Full`] (the default) every
//! commit is synced to disk before any caller it contains is answered, so an
//! answered encounter survives a process crash and a power cut. With
//! [`Durability::Normal`] the log is synced only at checkpoints: an answered
//! encounter still survives a crash or `kill -9` of the process (the operating
//! system has the data), but a power failure or kernel crash may lose the most
//! recent answered writes, never corrupting the database.
//!
//! # Patient data
//!
//! A patient id is stored only as its HMAC-SHA256 under the key of
//! [`PatientIdKey`]. The key's own check value is stored too, so opening a data
//! directory with a different key is refused instead of silently splitting each
//! patient in two.

mod checkpointer;
mod claim_json;
mod database;
mod directory_lock;
mod patient_key;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
    thread::JoinHandle,
    time::Instant,
};

use jiff::civil::Date;
use tokio::sync::{mpsc, oneshot};

pub use directory_lock::LOCK_FILE;
pub use patient_key::{KEY_FILE, PatientIdKey};

use crate::measures::{
    Encounter, Measure, MeasureSet, Outcome, PerformanceReport, PerformanceTotals,
};
use checkpointer::Checkpointer;
use patient_key::PatientHasher;
use writer::{Job, Writer};

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "encounters.sqlite3";

/// Most writes waiting for the writer; callers beyond it wait their turn to
/// queue, so a burst never grows an unbounded backlog.
const QUEUED_WRITES: usize = 256;

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
    /// Another store, most likely another server, has the data directory open.
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
}

/// One encounter to record, with its outcomes under the store's measures
/// ([`MeasureSet::outcomes`] or [`MeasureSet::evaluate`] of the set the store
/// was opened with), which the totals count as given: a caller that answers
/// with verdicts judges once, not once for itself and once for the store.
#[derive(Debug)]
pub struct Submission {
    /// The encounter.
    pub encounter: Encounter,
    /// Replace a stored encounter with the same id and different content.
    pub replace: bool,
    /// One outcome per option group of the store's measures, in their order.
    pub outcomes: Vec<Outcome>,
}

/// What recording one encounter did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored for the first time.
    Stored,
    /// Stored in place of a different version, which no longer counts.
    Replaced,
    /// Already stored with the same content; nothing changed.
    Duplicate,
    /// Stored with different content, and replacing was not asked for.
    Conflict,
}

/// An encounter made ready for the writer by [`EncounterStore::prepare`]: its
/// patient id hashed, its claim serialised.
#[derive(Debug)]
pub struct PreparedRow {
    encounter_id: String,
    patient_hash: [u8; 32],
    provider_id: String,
    service_date: Date,
    service_date_text: String,
    claim_json: String,
    replace: bool,
    outcomes: Vec<Outcome>,
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

/// The durable store of encounters and the running totals built from it.
pub struct EncounterStore {
    jobs: mpsc::Sender<Job>,
    totals: Arc<RwLock<PerformanceTotals>>,
    /// The measures the totals count under.
    measures: Arc<MeasureSet>,
    hasher: PatientHasher,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for EncounterStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EncounterStore")
    }
}

impl EncounterStore {
    /// Opens (or creates) the store, migrates its schema, checks the key,
    /// rebuilds the totals from every stored encounter under `measures`, and
    /// starts the writer thread. Blocking: call it off the async runtime.
    pub fn open(
        options: StoreOptions,
        measures: Arc<MeasureSet>,
    ) -> Result<EncounterStore, StoreError> {
        let started = Instant::now();
        let (mut connection, key, directory_lock) = database::open(&options)?;
        schema::migrate(&mut connection)?;
        let hasher = key.hasher();
        database::check_key(&connection, &hasher)?;
        let (totals, encounters) = database::rebuild_totals(&connection, &measures)?;
        tracing::info!(
            encounters,
            in_memory = options.location == Location::InMemory,
            durability = ?options.durability,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "encounter store opened and totals rebuilt"
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
        let totals = Arc::new(RwLock::new(totals));
        let (jobs, queued) = mpsc::channel(QUEUED_WRITES);
        let writer = Writer {
            connection,
            jobs: queued,
            totals: totals.clone(),
            measures: measures.clone(),
            checkpointer,
            directory_lock,
        };
        let handle = std::thread::Builder::new()
            .name("cptd-store-writer".into())
            .spawn(move || writer.run())
            .map_err(thread_error)?;
        Ok(EncounterStore {
            jobs,
            totals,
            measures,
            hasher,
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Makes `submission` ready for the writer: hashes the patient id and
    /// serialises the claim. CPU work only, a few microseconds; an import
    /// prepares its rows off the async runtime.
    pub fn prepare(&self, submission: Submission) -> PreparedRow {
        let Submission {
            encounter,
            replace,
            outcomes,
        } = submission;
        let claim = encounter.claim;
        PreparedRow {
            patient_hash: self.hasher.hash(&encounter.patient_id),
            encounter_id: encounter.encounter_id,
            service_date_text: claim.service_date.to_string(),
            claim_json: claim_json::to_json(&claim),
            provider_id: claim.provider_id,
            service_date: claim.service_date,
            replace,
            outcomes,
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

    /// The performance of `measure` over `start..=end`, from the running totals.
    pub fn report(
        &self,
        measure: &Measure,
        provider_id: Option<&str>,
        start: Date,
        end: Date,
    ) -> PerformanceReport {
        let totals = self.totals.read().unwrap_or_else(|p| p.into_inner());
        let first_group = self.measures.first_group(measure);
        totals.report(measure, first_group, provider_id, start, end)
    }

    /// Lets the writer finish every queued write, checkpoints, and stops it.
    /// Writes sent afterwards fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.jobs.send(Job::Stop { done }).await.is_ok() {
            let _ = stopped.await;
        }
        let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}
