//! The writer thread: the only code that writes the database.
//!
//! It takes every write queued since its last commit (up to
//! [`MAX_ROWS_PER_COMMIT`] rows), applies them in one transaction and commits
//! once, so concurrent callers share one disk sync (group commit). Only then
//! does it add the new outcomes to the running totals and answer each caller:
//! an answer always follows the commit that made it durable, and a report asked
//! for after an answer includes the encounter. Being alone, the writer also
//! settles every idempotency race: of two identical sends, whichever it takes
//! second finds the first already there.

use std::sync::{Arc, RwLock};

use rusqlite::{Connection, ErrorCode, ffi, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    PreparedRow, Recorded, StoreError, checkpointer::Checkpointer, claim_json::read_claim,
    directory_lock::DirectoryLock,
};
use crate::measures::{Claim, MeasureSet, PerformanceTotals};

/// Most rows one transaction takes; a longer queue waits for the next commit,
/// so no single commit holds its callers for long.
const MAX_ROWS_PER_COMMIT: usize = 4096;

/// Where the writer sends one write's results.
pub type Reply = oneshot::Sender<Result<Vec<Recorded>, StoreError>>;

/// What the writer is asked to do.
pub enum Job {
    /// Write these rows and answer with one result each, in order.
    Write {
        rows: Vec<PreparedRow>,
        reply: Reply,
    },
    /// Finish what is queued, checkpoint the log and stop.
    Stop { done: oneshot::Sender<()> },
}

pub struct Writer {
    pub connection: Connection,
    pub jobs: mpsc::Receiver<Job>,
    pub totals: Arc<RwLock<PerformanceTotals>>,
    /// The measures replaced versions are judged under, to take them back out
    /// of the totals.
    pub measures: Arc<MeasureSet>,
    /// The checkpointing thread of a database on disk.
    pub checkpointer: Option<Checkpointer>,
    /// The data directory's lock, released only once the database is closed.
    pub directory_lock: Option<DirectoryLock>,
}

type Batch = Vec<(Vec<PreparedRow>, Reply)>;

impl Writer {
    pub fn run(mut self) {
        let mut stopping = None;
        while let Some(first) = self.jobs.blocking_recv() {
            let batch = self.gather(first, &mut stopping);
            if !batch.is_empty() {
                self.commit(batch);
            }
        }
        self.finish(stopping);
    }

    /// One commit's writes: `first`, then whatever is queued, up to the bound.
    /// A request to stop closes the queue, so that what was queued before it
    /// is still committed and nothing after it is.
    fn gather(&mut self, first: Job, stopping: &mut Option<oneshot::Sender<()>>) -> Batch {
        let mut batch = Vec::new();
        let mut rows = 0;
        let mut next = Some(first);
        while let Some(job) = next {
            match job {
                Job::Write {
                    rows: written,
                    reply,
                } => {
                    rows += written.len();
                    batch.push((written, reply));
                }
                Job::Stop { done } => {
                    stopping.get_or_insert(done);
                    self.jobs.close();
                }
            }
            next = if rows < MAX_ROWS_PER_COMMIT {
                self.jobs.try_recv().ok()
            } else {
                None
            };
        }
        batch
    }

    fn commit(&mut self, batch: Batch) {
        let rows = batch.iter().map(|(rows, _)| rows.len()).sum::<usize>();
        match write(&mut self.connection, &batch) {
            Ok((results, replaced)) => {
                self.count(&batch, &results, replaced);
                let mut results = results.into_iter();
                for (written, reply) in batch {
                    let _ = reply.send(Ok(results.by_ref().take(written.len()).collect()));
                }
            }
            Err(error) => {
                // SAFETY: the handle is only read, on the thread that owns the
                // connection, before anything else uses it.
                let system_error = unsafe { ffi::sqlite3_system_errno(self.connection.handle()) };
                let no_room = for_want_of_room(&error, system_error);
                tracing::error!(%error, rows, no_room, "store commit failed; the batch was rolled back");
                for (_, reply) in batch {
                    let _ = reply.send(Err(if no_room {
                        StoreError::NoRoom
                    } else {
                        StoreError::CommitFailed
                    }));
                }
            }
        }
    }

    /// Adds a commit's stored rows to the totals and takes the versions they
    /// replaced back out. Replaced versions are judged before the lock is
    /// taken, so reports wait only for the additions.
    fn count(&self, batch: &Batch, results: &[Recorded], replaced: Vec<Claim>) {
        let taken_back: Vec<_> = replaced
            .into_iter()
            .map(|claim| {
                let outcomes = self.measures.outcomes(&claim);
                (claim, outcomes)
            })
            .collect();
        let mut taken_back = taken_back.iter();
        let mut totals = self.totals.write().unwrap_or_else(|p| p.into_inner());
        let rows = batch.iter().flat_map(|(rows, _)| rows);
        for (row, result) in rows.zip(results) {
            if *result == Recorded::Replaced
                && let Some((previous, outcomes)) = taken_back.next()
            {
                totals.apply(&previous.provider_id, previous.service_date, outcomes, -1);
            }
            if matches!(result, Recorded::Stored | Recorded::Replaced) {
                totals.apply(&row.provider_id, row.service_date, &row.outcomes, 1);
            }
        }
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
            directory_lock,
            ..
        } = self;
        drop(connection);
        drop(directory_lock);
        if let Some(done) = stopping {
            let _ = done.send(());
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

/// Writes a batch in one transaction and commits it: one result per row, in
/// order, and the previous version of each replaced row, in row order.
fn write(
    connection: &mut Connection,
    batch: &Batch,
) -> Result<(Vec<Recorded>, Vec<Claim>), StoreError> {
    let transaction = connection.transaction()?;
    let mut results = Vec::new();
    let mut replaced = Vec::new();
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO encounters
               (encounter_id, patient_hash, provider_id, service_date, claim, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, 1)
             ON CONFLICT (encounter_id) DO NOTHING",
        )?;
        let mut stored = transaction.prepare_cached(
            "SELECT patient_hash, provider_id, service_date, claim, revision
             FROM encounters WHERE encounter_id = ?1",
        )?;
        let mut update = transaction.prepare_cached(
            "UPDATE encounters
             SET patient_hash = ?2, provider_id = ?3, service_date = ?4, claim = ?5, revision = ?6
             WHERE encounter_id = ?1",
        )?;
        for row in batch.iter().flat_map(|(rows, _)| rows) {
            let columns = params![
                row.encounter_id,
                &row.patient_hash[..],
                row.provider_id,
                row.service_date_text,
                row.claim_json,
            ];
            if insert.execute(columns)? == 1 {
                results.push(Recorded::Stored);
                continue;
            }
            let (patient_hash, provider, service_date, claim, revision) =
                stored.query_row([&row.encounter_id], |stored| {
                    Ok((
                        stored.get::<_, Vec<u8>>(0)?,
                        stored.get::<_, String>(1)?,
                        stored.get::<_, String>(2)?,
                        stored.get::<_, String>(3)?,
                        stored.get::<_, i64>(4)?,
                    ))
                })?;
            let same = patient_hash == row.patient_hash
                && provider == row.provider_id
                && service_date == row.service_date_text
                && claim == row.claim_json;
            let result = if same {
                Recorded::Duplicate
            } else if row.replace {
                replaced.push(read_claim(provider, &service_date, &claim)?);
                update.execute(params![
                    row.encounter_id,
                    &row.patient_hash[..],
                    row.provider_id,
                    row.service_date_text,
                    row.claim_json,
                    revision + 1,
                ])?;
                Recorded::Replaced
            } else {
                Recorded::Conflict
            };
            results.push(result);
        }
    }
    transaction.commit()?;
    Ok((results, replaced))
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
