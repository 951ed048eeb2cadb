//! The writer thread: the only code that writes the database.
//!
//! It takes every job queued since its last commit (up to
//! [`MAX_ROWS_PER_COMMIT`] rows), applies them in one transaction, decides
//! again the units of every group they touched, updates the totals, and
//! commits once, so concurrent callers share one disk sync (group commit).
//! Only then does it answer each caller: an answer always follows the commit
//! that made it durable, and a report asked for after an answer includes it.
//! Being alone, the writer also settles every idempotency race: of two
//! identical sends, whichever it takes second finds the first already there.

use rusqlite::{Connection, ErrorCode, Transaction, ffi, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    PreparedRow, Recorded, StoreError, Voided,
    audit::{self, AuditEntry},
    checkpointer::Checkpointer,
    counting::{
        GroupKey, Mark, TotalsChanges, Touched, apply, group_id, insert_mark, redecide,
        remove_marks,
    },
    database_lock::DatabaseLock,
};
use crate::measures::MeasureSet;

/// Most rows one transaction takes; a longer queue waits for the next commit,
/// so no single commit holds its callers for long.
const MAX_ROWS_PER_COMMIT: usize = 4096;

/// What the writer is asked to do.
pub enum Job {
    /// Write these rows and answer with one result each, in order.
    Write {
        rows: Vec<PreparedRow>,
        reply: oneshot::Sender<Result<Vec<Recorded>, StoreError>>,
    },
    /// Void a stored encounter.
    Void {
        encounter_id: String,
        reply: oneshot::Sender<Result<Voided, StoreError>>,
    },
    /// Append these records to the audit trail.
    Audit {
        entries: Vec<AuditEntry>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Finish what is queued, checkpoint the log and stop.
    Stop { done: oneshot::Sender<()> },
}

pub struct Writer {
    pub connection: Connection,
    pub jobs: mpsc::Receiver<Job>,
    /// The measures units are decided under.
    pub measures: std::sync::Arc<MeasureSet>,
    /// The checkpointing thread of a database on disk.
    pub checkpointer: Option<Checkpointer>,
    /// The database's lock, released only once its connections are closed
    /// (the store holds it too, for its reading connections).
    pub database_lock: Option<std::sync::Arc<DatabaseLock>>,
}

/// What one job of a commit did, to be answered once the commit is durable.
pub(super) enum Done {
    Written(Vec<Recorded>),
    Voided(Voided),
    Audited,
}

impl Writer {
    pub fn run(mut self) {
        let mut stopping = None;
        while let Some(first) = self.jobs.blocking_recv() {
            let batch = gather(&mut self.jobs, first, &mut stopping);
            if !batch.is_empty() {
                self.commit(batch);
            }
        }
        self.finish(stopping);
    }

    fn commit(&mut self, batch: Vec<Job>) {
        let started = std::time::Instant::now();
        let written = write(&mut self.connection, &batch, &self.measures);
        crate::metrics::store_committed(started.elapsed());
        let written = match written {
            Ok(done) => Ok(done),
            Err(error) => {
                // SAFETY: the handle is only read, on the thread that owns the
                // connection, before anything else uses it.
                let system_error = unsafe { ffi::sqlite3_system_errno(self.connection.handle()) };
                let no_room = for_want_of_room(&error, system_error);
                tracing::error!(%error, jobs = batch.len(), no_room, "store commit failed; the batch was rolled back");
                Err(no_room)
            }
        };
        answer(batch, written, |no_room| {
            if no_room {
                StoreError::NoRoom
            } else {
                StoreError::CommitFailed
            }
        });
    }

    /// Stops the checkpointing thread, folds the log into the database file
    /// so the next start reads less, closes the database, then the lock.
    fn finish(mut self, stopping: Option<oneshot::Sender<()>>) {
        // Unhooking drops the hook's signal, which lets the thread end.
        let _ = self.connection.wal_hook(None::<fn(&mut _, _) -> _>);
        drop(self.checkpointer.take());
        if let Err(error) = self
            .connection
            .pragma_update(None, "wal_checkpoint", "TRUNCATE")
        {
            tracing::warn!(%error, "store checkpoint at shutdown failed");
        }
        let Writer {
            connection,
            database_lock,
            ..
        } = self;
        drop(connection);
        drop(database_lock);
        if let Some(done) = stopping {
            let _ = done.send(());
        }
    }
}

/// One commit's jobs: `first`, then whatever is queued, up to the bound.
/// A request to stop closes the queue, so that what was queued before it
/// is still committed and nothing after it is.
pub(super) fn gather(
    jobs: &mut mpsc::Receiver<Job>,
    first: Job,
    stopping: &mut Option<oneshot::Sender<()>>,
) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut rows = 0;
    let mut next = Some(first);
    while let Some(job) = next {
        match job {
            Job::Stop { done } => {
                stopping.get_or_insert(done);
                jobs.close();
            }
            Job::Write {
                rows: ref written, ..
            } => {
                rows += written.len();
                batch.push(job);
            }
            Job::Void { .. } => {
                rows += 1;
                batch.push(job);
            }
            Job::Audit { ref entries, .. } => {
                rows += entries.len();
                batch.push(job);
            }
        }
        next = if rows < MAX_ROWS_PER_COMMIT {
            jobs.try_recv().ok()
        } else {
            None
        };
    }
    batch
}

/// Answers each job of `batch` with what the commit did for it, or, when it
/// failed, with the error `failure` makes of `why`.
pub(super) fn answer<Why: Copy>(
    batch: Vec<Job>,
    done: Result<Vec<Done>, Why>,
    failure: impl Fn(Why) -> StoreError,
) {
    match done {
        Ok(done) => {
            let stored = done
                .iter()
                .flat_map(|done| match done {
                    Done::Written(results) => results.as_slice(),
                    _ => &[],
                })
                .filter(|result| matches!(result, Recorded::Stored | Recorded::Replaced))
                .count();
            crate::metrics::encounters_stored(stored as u64);
            for (job, done) in batch.into_iter().zip(done) {
                match (job, done) {
                    (Job::Write { reply, .. }, Done::Written(results)) => {
                        let _ = reply.send(Ok(results));
                    }
                    (Job::Void { reply, .. }, Done::Voided(voided)) => {
                        let _ = reply.send(Ok(voided));
                    }
                    (Job::Audit { reply, .. }, Done::Audited) => {
                        let _ = reply.send(Ok(()));
                    }
                    _ => unreachable!("each job is answered in kind, in order"),
                }
            }
        }
        Err(why) => {
            for job in batch {
                match job {
                    Job::Write { reply, .. } => {
                        let _ = reply.send(Err(failure(why)));
                    }
                    Job::Void { reply, .. } => {
                        let _ = reply.send(Err(failure(why)));
                    }
                    Job::Audit { reply, .. } => {
                        let _ = reply.send(Err(failure(why)));
                    }
                    Job::Stop { .. } => {}
                }
            }
        }
    }
}

/// What recording a row does, given what is stored under its id before it
/// (its content the same or not, voided or not), and whether the caller
/// asked to replace. `Stored` and `Replaced` write the row.
pub(super) fn recording(stored: Option<(bool, bool)>, replace: bool) -> Recorded {
    match (stored, replace) {
        (None, _) => Recorded::Stored,
        (Some((_, true)), false) => Recorded::Voided,
        (Some((true, false)), _) => Recorded::Duplicate,
        (Some((false, false)), false) => Recorded::Conflict,
        (Some(_), true) => Recorded::Replaced,
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

/// Applies a batch in one transaction, decides again every group it touched,
/// and commits: what each job did, in order.
fn write(
    connection: &mut Connection,
    batch: &[Job],
    measures: &MeasureSet,
) -> Result<Vec<Done>, StoreError> {
    let transaction = connection.transaction()?;
    let mut touched = Touched::new();
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Write { rows, .. } => {
                let results = rows
                    .iter()
                    .map(|row| write_row(&transaction, row, &mut touched))
                    .collect::<Result<_, _>>()?;
                done.push(Done::Written(results));
            }
            Job::Void { encounter_id, .. } => {
                done.push(Done::Voided(void(
                    &transaction,
                    encounter_id,
                    &mut touched,
                )?));
            }
            Job::Audit { entries, .. } => {
                audit::append(&transaction, entries)?;
                done.push(Done::Audited);
            }
            Job::Stop { .. } => {}
        }
    }
    let mut changes = TotalsChanges::new();
    for &group in &touched {
        redecide(&transaction, group, measures, &mut changes)?;
    }
    apply(&transaction, changes)?;
    transaction.commit()?;
    Ok(done)
}

/// Writes one row: stored anew, a resend, a replacement, or a conflict.
fn write_row(
    transaction: &Transaction<'_>,
    row: &PreparedRow,
    touched: &mut Touched,
) -> Result<Recorded, StoreError> {
    let columns = params![
        row.encounter_id,
        &row.patient_hash[..],
        row.npi,
        row.tin,
        row.service_date_text,
        row.claim_json,
    ];
    let inserted = transaction
        .prepare_cached(
            "INSERT INTO encounters
               (encounter_id, patient_hash, provider_id, tin, service_date, claim, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
             ON CONFLICT (encounter_id) DO NOTHING",
        )?
        .execute(columns)?;
    if inserted == 1 {
        add_marks(transaction, row, touched)?;
        return Ok(Recorded::Stored);
    }
    let (patient_hash, npi, tin, service_date, claim, voided) = transaction
        .prepare_cached(
            "SELECT patient_hash, provider_id, tin, service_date, claim, voided
             FROM encounters WHERE encounter_id = ?1",
        )?
        .query_row([&row.encounter_id], |stored| {
            Ok((
                stored.get::<_, Vec<u8>>(0)?,
                stored.get::<_, String>(1)?,
                stored.get::<_, String>(2)?,
                stored.get::<_, String>(3)?,
                stored.get::<_, String>(4)?,
                stored.get::<_, bool>(5)?,
            ))
        })?;
    let same = patient_hash == row.patient_hash
        && npi == row.npi
        && tin == row.tin
        && service_date == row.service_date_text
        && claim == row.claim_json;
    let recorded = recording(Some((same, voided)), row.replace);
    if recorded != Recorded::Replaced {
        return Ok(recorded);
    }
    remove_marks(transaction, &row.encounter_id, touched)?;
    transaction
        .prepare_cached(
            "UPDATE encounters
             SET patient_hash = ?2, provider_id = ?3, tin = ?4, service_date = ?5, claim = ?6,
                 voided = 0, revision = revision + 1
             WHERE encounter_id = ?1",
        )?
        .execute(columns)?;
    add_marks(transaction, row, touched)?;
    Ok(Recorded::Replaced)
}

/// Puts `row`'s marks into their groups.
fn add_marks(
    transaction: &Transaction<'_>,
    row: &PreparedRow,
    touched: &mut Touched,
) -> Result<(), StoreError> {
    for mark in &row.marks {
        let group = GroupKey {
            measure_id: mark.measure_id.to_string(),
            stratum: mark.stratum,
            tin: row.tin.clone(),
            npi: row.npi.clone(),
            patient_hash: row.patient_hash.to_vec(),
            bucket: mark.bucket.clone(),
        };
        let group = group_id(transaction, &group)?;
        insert_mark(
            transaction,
            group,
            &Mark {
                encounter_id: &row.encounter_id,
                service_date: &row.service_date_text,
                marker: mark.marker,
                weight: mark.weight,
                diagnoses: &mark.diagnoses,
            },
        )?;
        touched.insert(group);
    }
    Ok(())
}

/// Voids `encounter_id`: it stays stored, its id taken, and stops counting.
fn void(
    transaction: &Transaction<'_>,
    encounter_id: &str,
    touched: &mut Touched,
) -> Result<Voided, StoreError> {
    let voided: Option<bool> = rusqlite::OptionalExtension::optional(
        transaction
            .prepare_cached("SELECT voided FROM encounters WHERE encounter_id = ?1")?
            .query_row([encounter_id], |row| row.get(0)),
    )?;
    match voided {
        None => Ok(Voided::NotFound),
        Some(true) => Ok(Voided::AlreadyVoided),
        Some(false) => {
            remove_marks(transaction, encounter_id, touched)?;
            transaction
                .prepare_cached(
                    "UPDATE encounters SET voided = 1, revision = revision + 1
                     WHERE encounter_id = ?1",
                )?
                .execute([encounter_id])?;
            Ok(Voided::Voided)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_failure(code: std::ffi::c_int) -> StoreError {
        StoreError::Database(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }

    #[test]
    fn a_full_disk_or_a_file_at_its_size_limit_is_want_of_room_and_nothing_else_is() {
        const NO_SPACE: i32 = 28; // ENOSPC
        const FILE_TOO_LARGE: i32 = 27; // EFBIG
        const IO: i32 = 5; // EIO
        let write_failure = || sqlite_failure(ffi::SQLITE_IOERR_WRITE);
        assert!(for_want_of_room(&sqlite_failure(ffi::SQLITE_FULL), 0));
        assert!(for_want_of_room(&write_failure(), NO_SPACE));
        assert!(for_want_of_room(&write_failure(), FILE_TOO_LARGE));
        assert!(!for_want_of_room(&write_failure(), IO));
        assert!(!for_want_of_room(
            &sqlite_failure(ffi::SQLITE_CORRUPT),
            NO_SPACE
        ));
        assert!(!for_want_of_room(&StoreError::Closed, NO_SPACE));
    }
}
