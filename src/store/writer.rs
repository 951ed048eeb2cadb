//! The writer thread: the only code that writes the database.
//!
//! It takes every write queued since its last commit (up to a bound), applies them
//! in one transaction, commits once, and hands the durable commit to the
//! counting thread, which adds the new outcomes to the running totals and only
//! then answers each caller. Concurrent callers thus share one disk sync (group
//! commit), and an answer always follows the commit that made it durable. Being
//! alone, the writer also decides every idempotency race: of two identical
//! sends, whichever it takes second finds the first already there.
//!
//! Writes come in two lanes. Interactive writes (one caller's encounter,
//! waiting on its answer) all join the next commit. Bulk writes (imports' chunks)
//! fill the rest of it, at most [`MAX_BULK_ROWS_PER_COMMIT`] rows, and fewer
//! while interactive writes arrive or beside them. An import can queue
//! thousands of rows ahead; a single record arriving behind them waits for the
//! commit in progress, a few milliseconds, not for the whole backlog. Each lane
//! keeps its own order.

use std::{
    sync::mpsc as std_mpsc,
    time::{Duration, Instant},
};

use rusqlite::{Connection, ErrorCode, ffi, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    Recorded, StoreError,
    checkpointer::Checkpointer,
    counter::{Commit, TotalsChange},
    directory_lock::DirectoryLock,
    pending::{PendingRow, PendingRows},
    row::read_claim,
};
use crate::scheduling::CooperativeYield;

/// Most rows one transaction takes; a longer queue waits for the next commit,
/// so no single commit holds callers for long.
const MAX_ROWS_PER_COMMIT: usize = 4096;

/// Most rows of bulk writes one transaction takes while no interactive write
/// has come for a second. Every commit waits for a disk sync,
/// and the writer's connection can do nothing else meanwhile, so the fewer
/// rows a commit, the more of the writer's time goes to syncs: with at most
/// 512 bulk rows a commit the store wrote prepared rows at about 0.7 of a raw
/// insert's rate (which commits 4,096 at a time), with 2,048 at about 0.9
/// (BENCHMARKS.md). Imports hand over chunks of a few hundred rows; this
/// bounds the commits that drain a backlog of them.
pub const MAX_BULK_ROWS_PER_COMMIT: usize = 2048;

/// Most rows of bulk writes one transaction takes while interactive writes
/// arrive: under 2 ms of inserting, so a record that comes meanwhile waits no
/// longer than that and a sync, rather than the 7 ms or so of a commit at
/// [`MAX_BULK_ROWS_PER_COMMIT`].
const MAX_BULK_ROWS_WHILE_INTERACTIVE: usize = 512;

/// Most rows of bulk writes a transaction takes beside interactive writes:
/// those callers then wait for little more than their own sync, and an import
/// still moves while records arrive without pause.
const MAX_BULK_ROWS_BESIDE_INTERACTIVE: usize = 256;

/// How long after an interactive write bulk commits stay at
/// [`MAX_BULK_ROWS_WHILE_INTERACTIVE`]. Callers recording one encounter at a
/// time send again within moments, so only the first record after a quiet
/// second can meet a large bulk commit in progress.
const INTERACTIVE_QUIET: Duration = Duration::from_secs(1);

/// Where the writer sends one job's results.
pub type Reply = oneshot::Sender<Result<Vec<Recorded>, StoreError>>;

/// What the writer is asked to do.
pub enum Job {
    /// Write these rows and answer with one result each, in order.
    Write { rows: PendingRows, reply: Reply },
    /// Finish the queue, checkpoint the log and stop.
    Stop { done: oneshot::Sender<()> },
}

pub struct Writer {
    pub connection: Connection,
    /// Interactive writes, and the request to stop.
    pub jobs: mpsc::Receiver<Job>,
    /// Bulk writes.
    pub bulk: mpsc::Receiver<Job>,
    /// Durable commits, to be counted and answered.
    pub committed: std_mpsc::SyncSender<Commit>,
    /// The counting thread, joined at stop so every answer is sent first.
    pub counter: std::thread::JoinHandle<()>,
    /// The checkpointing thread of a database on disk. Declared after the
    /// connection, whose commits signal it, so that it is stopped after it.
    pub checkpointer: Option<Checkpointer>,
    /// When the last commit with an interactive write was gathered.
    pub last_interactive: Option<Instant>,
    /// Whether the last commit stored every row it was given as new. Only
    /// then is the next tried as new rows only ([`insert_all_new`]): a resent
    /// import would otherwise make every commit try and fall back.
    pub expect_new_ids: bool,
    /// The data directory's lock, released only once the database is closed.
    /// Declared last, so it is dropped last.
    pub directory_lock: Option<DirectoryLock>,
}

/// Which lane a job came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    Interactive,
    Bulk,
}

impl Writer {
    pub fn run(mut self) {
        // Waiting on two channels at once takes an executor; a bare one on this
        // thread does, with no I/O or timers of its own.
        let waiting = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(waiting) => waiting,
            Err(error) => {
                tracing::error!(%error, "the store's writer cannot start; nothing can be recorded");
                return;
            }
        };
        let mut stop = None;
        loop {
            let first = if stop.is_some() {
                // Stopping: only what is already queued, without waiting.
                None
            } else {
                match waiting.block_on(self.next_job()) {
                    Some(job) => Some(job),
                    // Every sender is gone: the store was dropped unclosed.
                    None => return,
                }
            };
            let batch = self.gather(first, &mut stop);
            if !batch.is_empty() {
                self.commit(batch);
            } else if let Some(done) = stop {
                self.stop(done);
                return;
            }
        }
    }

    /// The next job of either lane, interactive first, once there is one.
    async fn next_job(&mut self) -> Option<(Lane, Job)> {
        tokio::select! {
            biased;
            Some(job) = self.jobs.recv() => Some((Lane::Interactive, job)),
            Some(job) = self.bulk.recv() => Some((Lane::Bulk, job)),
            else => None,
        }
    }

    /// One commit's writes: `first`, every queued interactive write, then bulk
    /// writes up to their bound: lower while interactive writes arrive, and
    /// lower still beside them. A request to stop closes both lanes, so that
    /// what was queued before it is still committed and nothing after it is.
    fn gather(
        &mut self,
        first: Option<(Lane, Job)>,
        stop: &mut Option<oneshot::Sender<()>>,
    ) -> Vec<(PendingRows, Reply)> {
        let now = Instant::now();
        let interactive_lately = self
            .last_interactive
            .is_some_and(|last| now.saturating_duration_since(last) < INTERACTIVE_QUIET);
        let bulk_bound = if interactive_lately {
            MAX_BULK_ROWS_WHILE_INTERACTIVE
        } else {
            MAX_BULK_ROWS_PER_COMMIT
        };
        let mut batch = Vec::new();
        let (mut rows, mut bulk_rows) = (0, 0);
        let mut next = first.or_else(|| self.queued_job(true));
        while let Some((lane, job)) = next.take() {
            match job {
                Job::Write {
                    rows: written,
                    reply,
                } => {
                    rows += written.len();
                    if lane == Lane::Bulk {
                        bulk_rows += written.len();
                    }
                    batch.push((written, reply));
                }
                Job::Stop { done } => {
                    stop.get_or_insert(done);
                    self.jobs.close();
                    self.bulk.close();
                }
            }
            if rows >= MAX_ROWS_PER_COMMIT {
                break;
            }
            let bulk_limit = if rows > bulk_rows {
                MAX_BULK_ROWS_BESIDE_INTERACTIVE
            } else {
                bulk_bound
            };
            next = self.queued_job(bulk_rows < bulk_limit);
        }
        if rows > bulk_rows {
            self.last_interactive = Some(now);
        }
        batch
    }

    /// A job already queued, interactive first; bulk only while `bulk_room`.
    fn queued_job(&mut self, bulk_room: bool) -> Option<(Lane, Job)> {
        if let Ok(job) = self.jobs.try_recv() {
            return Some((Lane::Interactive, job));
        }
        if !bulk_room {
            return None;
        }
        self.bulk.try_recv().ok().map(|job| (Lane::Bulk, job))
    }

    fn stop(self, done: oneshot::Sender<()>) {
        let Writer {
            connection,
            committed,
            counter,
            checkpointer,
            directory_lock,
            ..
        } = self;
        // The counter finishes what it holds once the writer hangs up.
        drop(committed);
        if counter.join().is_err() {
            tracing::error!("the store's counting thread panicked");
        }
        // Nothing is committed any more; the last checkpoint is the writer's.
        drop(checkpointer);
        // Folds the log into the main file so the next start reads less.
        if let Err(error) = connection.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
            tracing::warn!(%error, "store checkpoint at shutdown failed");
        }
        drop(connection);
        drop(directory_lock);
        let _ = done.send(());
    }

    fn commit(&mut self, batch: Vec<(PendingRows, Reply)>) {
        let rows: usize = batch.iter().map(|(rows, _)| rows.len()).sum();
        let written = if self.expect_new_ids {
            write_all(&mut self.connection, &batch)
        } else {
            write_row_by_row(&mut self.connection, &batch)
        };
        self.expect_new_ids = matches!(&written, Ok((results, _))
            if results.iter().all(|result| *result == Recorded::Stored));
        match written {
            Ok((results, changes)) => {
                tracing::trace!(rows, jobs = batch.len(), "store commit");
                let commit = Commit {
                    batch,
                    results,
                    changes,
                };
                if let Err(std_mpsc::SendError(commit)) = self.committed.send(commit) {
                    // Only a panicked counter hangs up early; the rows are
                    // durable, but nobody can count them now.
                    tracing::error!(rows, "the store's counting thread is gone");
                    for (_, reply) in commit.batch {
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                }
            }
            Err(error) => {
                // SAFETY: the handle is only read from, on the thread that owns
                // the connection, before anything else uses it.
                let system_error = unsafe { ffi::sqlite3_system_errno(self.connection.handle()) };
                let no_room = for_want_of_room(&error, system_error);
                tracing::error!(%error, rows, no_room, "store commit failed; the batch was rolled back");
                let failure = || {
                    if no_room {
                        StoreError::NoRoom
                    } else {
                        StoreError::CommitFailed
                    }
                };
                for (_, reply) in batch {
                    let _ = reply.send(Err(failure()));
                }
            }
        }
    }
}

/// Whether a failed write failed for want of room: SQLite's own "full" code
/// (the disk is out of space), or an I/O error whose operating-system error
/// (`system_error`, SQLite's `sqlite3_system_errno`) says the disk or the
/// user's quota is full or a file reached the process's size limit, which
/// SQLite reports as a plain I/O error.
fn for_want_of_room(error: &StoreError, system_error: i32) -> bool {
    let StoreError::Database(rusqlite::Error::SqliteFailure(failure, _)) = error else {
        return false;
    };
    match failure.code {
        ErrorCode::DiskFull => true,
        ErrorCode::SystemIoFailure => matches!(
            std::io::Error::from_raw_os_error(system_error).kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge
        ),
        _ => false,
    }
}

type Written = (Vec<Recorded>, Vec<TotalsChange>);

/// Rows one statement inserts when a commit writes only new encounters. A
/// statement's fixed cost (binding, stepping, resetting, the conflict check
/// it starts) is then shared by sixteen rows; more would add parameters to
/// bind without saving more.
const ROWS_PER_INSERT: usize = 16;

/// Columns a statement binds for each row it inserts.
const PARAMETERS_PER_ROW: usize = 5;

/// Inserts [`ROWS_PER_INSERT`] new rows, leaving any whose id is stored.
static INSERT_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let values = vec!["(?, ?, ?, ?, ?, 1)"; ROWS_PER_INSERT].join(", ");
    format!(
        "INSERT INTO encounters
           (encounter_id, patient_hash, provider_id, service_date, claim, revision)
         VALUES {values}
         ON CONFLICT (encounter_id) DO NOTHING"
    )
});

/// Inserts one new row, leaving it if its id is stored.
const INSERT_ONE: &str = "INSERT INTO encounters
       (encounter_id, patient_hash, provider_id, service_date, claim, revision)
     VALUES (?1, ?2, ?3, ?4, ?5, 1)
     ON CONFLICT (encounter_id) DO NOTHING";

/// Writes a batch in one transaction and commits it. Most commits hold only
/// encounters never stored before (an import's rows), so each is first tried
/// as that: rows inserted sixteen to a statement. If any id turns out to be
/// stored already, that attempt is rolled back and the batch written again
/// row by row, where each stored id is told apart as a resend, a replacement
/// or a conflict. [`Writer::expect_new_ids`] skips the attempt after a
/// commit that met a stored id.
fn write_all(
    connection: &mut Connection,
    batch: &[(PendingRows, Reply)],
) -> Result<Written, StoreError> {
    match insert_all_new(connection, batch)? {
        Some(written) => Ok(written),
        None => write_row_by_row(connection, batch),
    }
}

/// Commits the batch if every row's id is new, and answers what that wrote;
/// answers `None`, with nothing written, if any id is already stored.
fn insert_all_new(
    connection: &mut Connection,
    batch: &[(PendingRows, Reply)],
) -> Result<Option<Written>, StoreError> {
    let transaction = connection.transaction()?;
    let mut rows_written = 0;
    {
        let mut insert_many = transaction.prepare_cached(&INSERT_MANY)?;
        let mut insert_one = transaction.prepare_cached(INSERT_ONE)?;
        let mut rows = batch.iter().flat_map(|(rows, _)| rows.iter());
        let mut group = Vec::with_capacity(ROWS_PER_INSERT);
        let mut turns = CooperativeYield::new();
        loop {
            turns.between_items();
            group.clear();
            group.extend(rows.by_ref().take(ROWS_PER_INSERT));
            if group.len() == ROWS_PER_INSERT {
                for (position, row) in group.iter().enumerate() {
                    bind_row(&mut insert_many, position * PARAMETERS_PER_ROW, row)?;
                }
                if insert_many.raw_execute()? < ROWS_PER_INSERT {
                    return Ok(None);
                }
            } else {
                for row in &group {
                    bind_row(&mut insert_one, 0, row)?;
                    if insert_one.raw_execute()? < 1 {
                        return Ok(None);
                    }
                }
                rows_written += group.len();
                break;
            }
            rows_written += ROWS_PER_INSERT;
        }
    }
    transaction.commit()?;
    Ok(Some((
        vec![Recorded::Stored; rows_written],
        (0..rows_written).map(TotalsChange::Add).collect(),
    )))
}

/// Binds a row's five values to the statement's parameters after `first`
/// (SQLite numbers parameters from 1).
fn bind_row(
    statement: &mut rusqlite::CachedStatement<'_>,
    first: usize,
    row: &PendingRow<'_>,
) -> Result<(), StoreError> {
    statement.raw_bind_parameter(first + 1, row.encounter_id)?;
    statement.raw_bind_parameter(first + 2, &row.patient_hash[..])?;
    statement.raw_bind_parameter(first + 3, row.provider_id)?;
    statement.raw_bind_parameter(first + 4, row.service_date_text)?;
    statement.raw_bind_parameter(first + 5, row.claim_json)?;
    Ok(())
}

/// Writes the batch a row at a time, telling each stored id apart.
fn write_row_by_row(
    connection: &mut Connection,
    batch: &[(PendingRows, Reply)],
) -> Result<Written, StoreError> {
    let transaction = connection.transaction()?;
    let mut results = Vec::new();
    let mut changes = Vec::new();
    {
        let mut find = transaction.prepare_cached(
            "SELECT patient_hash, provider_id, service_date, claim, revision
             FROM encounters WHERE encounter_id = ?1",
        )?;
        // Even here most ids are new: inserting first costs them nothing more.
        // Only an id already stored costs the look-up that tells a resend from
        // a conflict or a replacement.
        let mut insert = transaction.prepare_cached(INSERT_ONE)?;
        let mut update = transaction.prepare_cached(
            "UPDATE encounters SET patient_hash = ?2, provider_id = ?3,
               service_date = ?4, claim = ?5, revision = ?6
             WHERE encounter_id = ?1",
        )?;
        let rows = batch.iter().flat_map(|(rows, _)| rows.iter());
        let mut turns = CooperativeYield::new();
        for (index, row) in rows.enumerate() {
            turns.between_items();
            bind_row(&mut insert, 0, &row)?;
            if insert.raw_execute()? == 1 {
                changes.push(TotalsChange::Add(index));
                results.push(Recorded::Stored);
                continue;
            }
            let (patient_hash, provider, stored_date, claim, revision) =
                find.query_row(params![row.encounter_id], |found| {
                    Ok((
                        found.get::<_, Vec<u8>>(0)?,
                        found.get::<_, String>(1)?,
                        found.get::<_, String>(2)?,
                        found.get::<_, String>(3)?,
                        found.get::<_, i64>(4)?,
                    ))
                })?;
            // A resend: every column the caller's values make is the same.
            let same = patient_hash == row.patient_hash
                && provider == row.provider_id
                && stored_date == row.service_date_text
                && claim == row.claim_json;
            let result = if same {
                Recorded::Duplicate
            } else if row.replace {
                let previous = read_claim(provider, &stored_date, &claim)?;
                update.execute(params![
                    row.encounter_id,
                    &row.patient_hash[..],
                    row.provider_id,
                    row.service_date_text,
                    row.claim_json,
                    revision + 1,
                ])?;
                changes.push(TotalsChange::Replace { index, previous });
                Recorded::Replaced
            } else {
                Recorded::Conflict
            };
            results.push(result);
        }
    }
    transaction.commit()?;
    Ok((results, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer over an empty in-memory database, and the senders of its two
    /// lanes; it commits nothing unless asked to.
    fn idle_writer() -> (Writer, mpsc::Sender<Job>, mpsc::Sender<Job>) {
        let (interactive, jobs) = mpsc::channel(64);
        let (bulk_sender, bulk) = mpsc::channel(64);
        let (committed, _) = std_mpsc::sync_channel(1);
        let writer = Writer {
            connection: Connection::open_in_memory().unwrap(),
            jobs,
            bulk,
            committed,
            counter: std::thread::spawn(|| {}),
            checkpointer: None,
            last_interactive: None,
            expect_new_ids: true,
            directory_lock: None,
        };
        (writer, interactive, bulk_sender)
    }

    /// A write of `rows` rows; what they hold does not matter to gathering.
    fn write_of(rows: usize) -> Job {
        let mut written = PendingRows::with_capacity(rows);
        for index in 0..rows {
            written.push(PendingRow {
                encounter_id: &format!("e{index}"),
                patient_hash: [0; 32],
                provider_id: "npi-1",
                service_date: jiff::civil::date(2025, 3, 4),
                service_date_text: "2025-03-04",
                claim_json: "{}",
                replace: false,
                outcomes: &[],
            });
        }
        Job::Write {
            rows: written,
            reply: oneshot::channel().0,
        }
    }

    /// The sizes of the writes one commit gathers, in commit order.
    fn gathered(writer: &mut Writer) -> Vec<usize> {
        let batch = writer.gather(None, &mut None);
        batch.iter().map(|(rows, _)| rows.len()).collect()
    }

    #[test]
    fn a_commit_takes_fewer_bulk_rows_while_interactive_writes_arrive_and_fewer_beside_them() {
        const CHUNK: usize = 128;
        const BACKLOG: usize = 48;
        let (mut writer, interactive, bulk) = idle_writer();
        for _ in 0..BACKLOG {
            bulk.try_send(write_of(CHUNK)).unwrap();
        }
        let quiet = MAX_BULK_ROWS_PER_COMMIT / CHUNK;
        assert_eq!(gathered(&mut writer), vec![CHUNK; quiet]);

        // A record queued behind the backlog goes first, with fewer bulk rows.
        interactive.try_send(write_of(1)).unwrap();
        let beside = MAX_BULK_ROWS_BESIDE_INTERACTIVE / CHUNK;
        let mut expected = vec![1];
        expected.extend(vec![CHUNK; beside]);
        assert_eq!(gathered(&mut writer), expected);

        // Right after it, more records may follow: bulk commits stay small.
        let lately = MAX_BULK_ROWS_WHILE_INTERACTIVE / CHUNK;
        assert!(beside < lately && lately < quiet);
        assert_eq!(gathered(&mut writer), vec![CHUNK; lately]);
        assert_eq!(gathered(&mut writer), vec![CHUNK; lately]);

        // Once records have been quiet a while, bulk commits grow again.
        writer.last_interactive = Instant::now().checked_sub(INTERACTIVE_QUIET);
        let left = BACKLOG - quiet - beside - 2 * lately;
        assert!(left >= quiet, "the backlog outlasts one large commit");
        assert_eq!(gathered(&mut writer), vec![CHUNK; quiet]);
    }

    /// Rows of ids `e{index}` for `indexes`, of a claim told apart by `version`.
    fn rows_of(indexes: impl IntoIterator<Item = usize>, version: u8) -> PendingRows {
        let mut rows = PendingRows::with_capacity(64);
        for index in indexes {
            rows.push(PendingRow {
                encounter_id: &format!("e{index}"),
                patient_hash: [index as u8; 32],
                provider_id: &format!("npi-{index}"),
                service_date: jiff::civil::date(2025, 3, 4),
                service_date_text: "2025-03-04",
                claim_json: &format!("{{\"row\":{index},\"version\":{version}}}"),
                replace: false,
                outcomes: &[],
            });
        }
        rows
    }

    fn stored_rows(connection: &Connection) -> i64 {
        connection
            .query_row("SELECT count(*) FROM encounters", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn new_rows_are_inserted_many_a_statement_and_a_stored_id_among_them_is_told_apart() {
        let mut connection = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut connection).unwrap();
        // Two statements of sixteen rows, then eight one at a time.
        let first = [(rows_of(0..40, 1), oneshot::channel().0)];
        let (results, changes) = insert_all_new(&mut connection, &first)
            .unwrap()
            .expect("new ids only");
        assert_eq!(results, vec![Recorded::Stored; 40]);
        assert_eq!(changes.len(), 40);
        assert!(
            changes.iter().enumerate().all(
                |(index, change)| matches!(change, TotalsChange::Add(added) if *added == index)
            )
        );
        // Each row's values went to its own columns, in and after the
        // statements of many rows.
        for index in [0, 17, 31, 32, 39] {
            let (hash, provider, claim): (Vec<u8>, String, String) = connection
                .query_row(
                    "SELECT patient_hash, provider_id, claim FROM encounters WHERE encounter_id = ?1",
                    [format!("e{index}")],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .unwrap();
            assert_eq!(hash, [index as u8; 32]);
            assert_eq!(provider, format!("npi-{index}"));
            assert_eq!(claim, format!("{{\"row\":{index},\"version\":1}}"));
        }

        // A stored id inside a statement of many rows, and one after them,
        // split over two callers' writes: the attempt leaves nothing behind,
        // and row by row each row gets its own answer.
        let mut ids: Vec<usize> = (100..140).collect();
        ids[20] = 5;
        ids[35] = 6;
        let second = [
            (rows_of(ids[..30].iter().copied(), 1), oneshot::channel().0),
            (rows_of(ids[30..].iter().copied(), 2), oneshot::channel().0),
        ];
        assert!(insert_all_new(&mut connection, &second).unwrap().is_none());
        assert_eq!(stored_rows(&connection), 40);
        let (results, changes) = write_all(&mut connection, &second).unwrap();
        let mut expected = vec![Recorded::Stored; 40];
        expected[20] = Recorded::Duplicate;
        expected[35] = Recorded::Conflict;
        assert_eq!(results, expected);
        assert_eq!(changes.len(), 38);
        assert_eq!(stored_rows(&connection), 78);

        // The same new id twice in one statement: the second is a resend.
        let mut ids: Vec<usize> = (200..216).collect();
        ids[9] = 203;
        let third = [(rows_of(ids, 1), oneshot::channel().0)];
        let (results, _) = write_all(&mut connection, &third).unwrap();
        let mut expected = vec![Recorded::Stored; 16];
        expected[9] = Recorded::Duplicate;
        assert_eq!(results, expected);
        assert_eq!(stored_rows(&connection), 93);
    }

    #[test]
    fn only_a_commit_of_new_rows_lets_the_next_be_tried_as_new_rows_only() {
        let (mut writer, _interactive, _bulk) = idle_writer();
        super::super::schema::migrate(&mut writer.connection).unwrap();
        let mut commit = |rows| {
            writer.commit(vec![(rows, oneshot::channel().0)]);
            writer.expect_new_ids
        };
        assert!(commit(rows_of(0..20, 1)));
        // A resend of two rows, then a commit of new ones.
        assert!(!commit(rows_of(18..40, 1)));
        assert!(commit(rows_of(40..60, 1)));
        assert_eq!(stored_rows(&writer.connection), 60);
    }

    #[test]
    fn after_a_resend_the_next_commit_goes_row_by_row_at_once() {
        let (mut writer, _interactive, _bulk) = idle_writer();
        super::super::schema::migrate(&mut writer.connection).unwrap();
        writer.commit(vec![(rows_of(0..20, 1), oneshot::channel().0)]);
        writer.commit(vec![(rows_of(18..40, 1), oneshot::channel().0)]);
        // Another resend of two rows. Tried as new rows first, some of its
        // new ones would be inserted and rolled back before the row-by-row
        // write inserted them again, and SQLite would count them twice.
        let changes_before = writer.connection.total_changes();
        writer.commit(vec![(rows_of(38..58, 1), oneshot::channel().0)]);
        assert_eq!(writer.connection.total_changes() - changes_before, 18);
        assert_eq!(stored_rows(&writer.connection), 58);
    }

    fn sqlite_failure(code: std::ffi::c_int) -> StoreError {
        StoreError::Database(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }

    #[test]
    fn a_full_disk_or_a_file_at_its_size_limit_is_want_of_room_and_nothing_else_is() {
        const NO_SPACE: i32 = 28; // ENOSPC
        const FILE_TOO_LARGE: i32 = 27; // EFBIG
        const IO: i32 = 5; // EIO
        assert!(for_want_of_room(&sqlite_failure(ffi::SQLITE_FULL), 0));
        assert!(for_want_of_room(
            &sqlite_failure(ffi::SQLITE_IOERR_WRITE),
            NO_SPACE
        ));
        assert!(for_want_of_room(
            &sqlite_failure(ffi::SQLITE_IOERR_WRITE),
            FILE_TOO_LARGE
        ));
        assert!(!for_want_of_room(
            &sqlite_failure(ffi::SQLITE_IOERR_WRITE),
            IO
        ));
        assert!(!for_want_of_room(
            &sqlite_failure(ffi::SQLITE_CORRUPT),
            NO_SPACE
        ));
        assert!(!for_want_of_room(&StoreError::Closed, NO_SPACE));
    }
}
