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
mod counter;
mod directory_lock;
mod patient_key;
mod pending;
mod row;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Instant,
};

use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

pub use directory_lock::LOCK_FILE;
pub use patient_key::{KEY_BYTES, KEY_FILE, PatientHasher, PatientIdKey};
pub use schema::SCHEMA_VERSION;
pub use writer::MAX_BULK_ROWS_PER_COMMIT;

use crate::{
    calendar,
    measures::{Encounter, Measure, MeasureSet, Outcome, PerformanceReport, PerformanceTotals},
};
use checkpointer::Checkpointer;
use counter::Counter;
use directory_lock::DirectoryLock;
use pending::{PendingRow, PendingRows};
use writer::{Job, Writer};

/// The database file in the data directory.
pub const DATABASE_FILE: &str = "encounters.sqlite3";

/// Most interactive write jobs waiting for the writer; callers beyond it wait
/// their turn.
const QUEUED_JOBS: usize = 1024;

/// Most bulk write jobs (imports' chunks) waiting for the writer: what two
/// imports keep awaiting their commits (16 chunks each), four of the writer's
/// largest commits. More would only hold more prepared rows in memory, as the
/// writer cannot commit them any sooner; an import finding the queue full
/// waits to hand over more, which holds back its reading.
const QUEUED_BULK_JOBS: usize = 32;

/// What the meta table keeps to recognise the patient-id key.
const KEY_CHECK_NAME: &str = "patient_id_key_check";
const KEY_CHECK_INPUT: &[u8] = b"cptd patient-id key check";

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

/// One encounter to record. The store judges it under its own measures to
/// count it, so what it counts never depends on what a caller judged.
#[derive(Debug)]
pub struct Submission {
    /// The encounter.
    pub encounter: Encounter,
    /// Replace a stored encounter with the same id and different content.
    pub replace: bool,
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

/// Makes encounters into rows ready for the writer: judged under the store's
/// measures, patient ids hashed, claims serialised.
/// CPU work only, a few microseconds an encounter; a bulk caller runs it off
/// the async runtime, so that the writer thread does nothing but SQLite.
///
/// One encounter at a time, so that a caller parsing many can drop each as
/// soon as it is pushed: its strings' room then serves the next one at once,
/// instead of a whole chunk's being held and freed together.
#[derive(Debug)]
pub struct RowPreparer<'a> {
    store: &'a EncounterStore,
    rows: PendingRows,
    // Each row's text and outcomes are made in these and copied into the
    // rows' shared buffers, so preparing allocates nothing a row.
    service_date_text: String,
    claim_json: String,
    outcomes: Vec<Outcome>,
}

impl RowPreparer<'_> {
    /// Adds `encounter` as the next row; `replace` as [`Submission::replace`].
    pub fn push(&mut self, encounter: &Encounter, replace: bool) {
        let claim = &encounter.claim;
        self.outcomes.clear();
        self.store.measures.outcomes_into(claim, &mut self.outcomes);
        self.service_date_text.clear();
        calendar::push_date(&mut self.service_date_text, claim.service_date);
        self.claim_json.clear();
        row::write_claim_json(&mut self.claim_json, claim);
        let patient_hash = self.store.hasher.hash(&encounter.patient_id);
        self.rows.push(PendingRow {
            encounter_id: &encounter.encounter_id,
            patient_hash,
            provider_id: &claim.provider_id,
            service_date: claim.service_date,
            service_date_text: &self.service_date_text,
            claim_json: &self.claim_json,
            replace,
            outcomes: &self.outcomes,
        });
    }

    /// The rows pushed, in order.
    pub fn finish(self) -> PreparedRows {
        PreparedRows(self.rows)
    }
}

/// Encounters made ready for the writer by [`EncounterStore::prepare`] or a
/// [`RowPreparer`], in the order given.
#[derive(Debug)]
pub struct PreparedRows(PendingRows);

impl PreparedRows {
    /// How many encounters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A write the writer has queued; [`PendingWrite::finish`] waits for its commit.
#[derive(Debug)]
pub struct PendingWrite(oneshot::Receiver<Result<Vec<Recorded>, StoreError>>);

impl PendingWrite {
    /// One result per submission, in order, once the commit is durable.
    pub async fn finish(self) -> Result<Vec<Recorded>, StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

/// The durable store of encounters and the running totals built from it.
pub struct EncounterStore {
    /// Interactive writes and the request to stop; see [`writer`] for the lanes.
    jobs: mpsc::Sender<Job>,
    /// Bulk writes.
    bulk_jobs: mpsc::Sender<Job>,
    totals: Arc<RwLock<PerformanceTotals>>,
    /// The measures the totals count under.
    measures: Arc<MeasureSet>,
    hasher: PatientHasher,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Checkpoints the checkpointing thread has run.
    checkpoints: Arc<AtomicU64>,
}

impl std::fmt::Debug for EncounterStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("EncounterStore")
    }
}

/// An open database, the key for its patient ids, and, on disk, the lock that
/// keeps its directory to this store.
type Opened = (Connection, PatientIdKey, Option<DirectoryLock>);

fn open_connection(options: &StoreOptions) -> Result<Opened, StoreError> {
    match &options.location {
        Location::InMemory => {
            let key = match &options.key {
                Some(key) => key.clone(),
                None => PatientIdKey::random()?,
            };
            Ok((Connection::open_in_memory()?, key, None))
        }
        Location::Directory(directory) => {
            let io_error = |error| StoreError::Io {
                path: directory.clone(),
                error,
            };
            // A directory cptd creates is its owner's alone; one that exists
            // keeps the permissions its operator gave it.
            if !directory.exists() {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    builder.mode(0o700);
                }
                builder.create(directory).map_err(io_error)?;
            }
            let lock = DirectoryLock::acquire(directory)?;
            let key = match &options.key {
                Some(key) => key.clone(),
                None => PatientIdKey::in_directory(directory)?,
            };
            let connection = open_database_file(directory, options.durability)?;
            Ok((connection, key, Some(lock)))
        }
    }
}

/// A connection to the database in `directory`, in WAL mode, syncing as
/// `durability` says.
fn open_database_file(
    directory: &std::path::Path,
    durability: Durability,
) -> Result<Connection, StoreError> {
    let connection = Connection::open(directory.join(DATABASE_FILE))?;
    // Another process (an operator's sqlite3, a backup tool) may hold a lock
    // for a moment; wait rather than fail at once.
    connection.busy_timeout(BUSY_TIMEOUT)?;
    use_write_ahead_log(&connection)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    Ok(connection)
}

/// How long a connection waits for a lock another process holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Puts the database in WAL mode. Switching needs the database to itself, and
/// SQLite answers "busy" at once instead of waiting as it does for other locks,
/// so opening a new database while another process is writing to it would
/// fail; the switch is retried for as long as any other lock is waited for.
fn use_write_ahead_log(connection: &Connection) -> Result<(), StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match connection.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            switched => return Ok(switched?),
        }
    }
}

fn check_key(connection: &Connection, hasher: &PatientHasher) -> Result<(), StoreError> {
    let check = hasher.hash_bytes(KEY_CHECK_INPUT);
    // The first opening records its key's check value; OR IGNORE keeps the first
    // when two servers start at once, and the comparison below then refuses the
    // second if its key differs.
    connection.execute(
        "INSERT OR IGNORE INTO meta (name, value) VALUES (?1, ?2)",
        rusqlite::params![KEY_CHECK_NAME, &check[..]],
    )?;
    let stored: Option<Vec<u8>> = connection
        .query_row(
            "SELECT value FROM meta WHERE name = ?1",
            [KEY_CHECK_NAME],
            |row| row.get(0),
        )
        .optional()?;
    match stored {
        Some(stored) if stored == check => Ok(()),
        _ => Err(StoreError::KeyMismatch),
    }
}

/// Stored rows (provider, date, claim JSON) handed to a rebuild worker at once.
const REBUILD_BATCH: usize = 4096;

type RawRow = (String, String, String);

/// Re-judges every stored claim under the measures in force and sums the totals.
/// One thread reads the database; the others parse and judge, each into totals
/// of its own, merged at the end.
fn rebuild_totals(
    connection: &Connection,
    measures: &MeasureSet,
) -> Result<(PerformanceTotals, u64), StoreError> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<RawRow>>(workers * 2);
    let receiver = Mutex::new(receiver);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<PerformanceTotals, StoreError> {
                    let mut totals = PerformanceTotals::default();
                    let mut outcomes = Vec::new();
                    // After a bad row the worker keeps draining, so the reader
                    // never waits on a full channel nobody empties.
                    let mut failed = None;
                    loop {
                        let batch = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(batch) = batch else {
                            return failed.map_or(Ok(totals), Err);
                        };
                        if failed.is_some() {
                            continue;
                        }
                        for (provider, date, json) in batch {
                            match row::read_claim(provider, &date, &json) {
                                Ok(claim) => {
                                    outcomes.clear();
                                    measures.outcomes_into(&claim, &mut outcomes);
                                    totals.apply(
                                        &claim.provider_id,
                                        claim.service_date,
                                        &outcomes,
                                        1,
                                    );
                                }
                                Err(error) => {
                                    failed = Some(error);
                                    break;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let read = (|| -> Result<u64, StoreError> {
            let mut statement =
                connection.prepare("SELECT provider_id, service_date, claim FROM encounters")?;
            let mut rows = statement.query([])?;
            let mut count = 0u64;
            let mut batch = Vec::with_capacity(REBUILD_BATCH);
            while let Some(row) = rows.next()? {
                batch.push((row.get(0)?, row.get(1)?, row.get(2)?));
                count += 1;
                if batch.len() == REBUILD_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(REBUILD_BATCH));
                    if sender.send(full).is_err() {
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = sender.send(batch);
            }
            Ok(count)
        })();
        drop(sender);
        let mut totals = PerformanceTotals::default();
        for handle in handles {
            let worker = handle
                .join()
                .map_err(|_| StoreError::Corrupt("a rebuild worker panicked".into()))??;
            totals.merge(worker);
        }
        Ok((totals, read?))
    })
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
        let (mut connection, key, directory_lock) = open_connection(&options)?;
        schema::migrate(&mut connection)?;
        let hasher = key.hasher();
        check_key(&connection, &hasher)?;
        let (totals, encounters) = rebuild_totals(&connection, &measures)?;
        tracing::info!(
            encounters,
            in_memory = options.location == Location::InMemory,
            durability = ?options.durability,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "encounter store opened and totals rebuilt"
        );
        let totals = Arc::new(RwLock::new(totals));
        let thread_error = |error| StoreError::Io {
            path: PathBuf::from("<store thread>"),
            error,
        };
        let (committed, commits) = std::sync::mpsc::sync_channel(counter::QUEUED_COMMITS);
        let counter = Counter {
            commits,
            totals: totals.clone(),
            measures: measures.clone(),
        };
        let counter = std::thread::Builder::new()
            .name("cptd-store-count".into())
            .spawn(move || counter.run())
            .map_err(thread_error)?;
        // A log of a database on disk is checkpointed on a thread of its own.
        let checkpoints = Arc::new(AtomicU64::new(0));
        let checkpointer = match &options.location {
            Location::InMemory => None,
            Location::Directory(directory) => {
                let own = open_database_file(directory, options.durability)?;
                let checkpointer =
                    Checkpointer::start(own, checkpoints.clone()).map_err(thread_error)?;
                checkpointer.watch(&mut connection)?;
                Some(checkpointer)
            }
        };
        let (sender, receiver) = mpsc::channel(QUEUED_JOBS);
        let (bulk_sender, bulk_receiver) = mpsc::channel(QUEUED_BULK_JOBS);
        let writer = Writer {
            connection,
            jobs: receiver,
            bulk: bulk_receiver,
            committed,
            counter,
            checkpointer,
            last_interactive: None,
            expect_new_ids: true,
            directory_lock,
        };
        let handle = std::thread::Builder::new()
            .name("cptd-store-writer".into())
            .spawn(move || writer.run())
            .map_err(thread_error)?;
        Ok(EncounterStore {
            jobs: sender,
            bulk_jobs: bulk_sender,
            totals,
            measures,
            hasher,
            writer: Mutex::new(Some(handle)),
            checkpoints,
        })
    }

    /// Records `submissions`, in order, and answers once they are durable (or
    /// known duplicates or conflicts). All are committed together or, on a
    /// database failure, none. An interactive write: it joins the next commit,
    /// ahead of any bulk backlog.
    pub async fn record(&self, submissions: Vec<Submission>) -> Result<Vec<Recorded>, StoreError> {
        let rows = self.prepare(&submissions);
        Self::queue(&self.jobs, rows).await?.finish().await
    }

    /// Turns `submissions` into rows ready for the writer; see
    /// [`RowPreparer`].
    pub fn prepare(&self, submissions: &[Submission]) -> PreparedRows {
        let mut rows = self.preparer(submissions.len());
        for Submission { encounter, replace } in submissions {
            rows.push(encounter, *replace);
        }
        rows.finish()
    }

    /// Makes rows ready for the writer one encounter at a time, room made for
    /// `encounters` of them; see [`RowPreparer`].
    pub fn preparer(&self, encounters: usize) -> RowPreparer<'_> {
        RowPreparer {
            store: self,
            rows: PendingRows::with_capacity(encounters),
            service_date_text: String::new(),
            claim_json: String::new(),
            outcomes: Vec::new(),
        }
    }

    /// Queues `rows` as a bulk write and returns at once. Bulk writes are
    /// applied in the order submitted, after the interactive writes queued
    /// with them. Waits only while the bulk queue is full.
    pub async fn submit_bulk(&self, rows: PreparedRows) -> Result<PendingWrite, StoreError> {
        Self::queue(&self.bulk_jobs, rows).await
    }

    async fn queue(
        lane: &mpsc::Sender<Job>,
        rows: PreparedRows,
    ) -> Result<PendingWrite, StoreError> {
        let (reply, answer) = oneshot::channel();
        lane.send(Job::Write {
            rows: rows.0,
            reply,
        })
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
        let totals = self
            .totals
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let first_group = self.measures.first_group(measure);
        totals.report(measure, first_group, provider_id, start, end)
    }

    /// Checkpoints that copied the log into the database file on the
    /// checkpointing thread since the store opened; none in memory.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Relaxed)
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
