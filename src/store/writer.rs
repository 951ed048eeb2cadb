//! The writer thread: the only code that writes the database.
//!
//! It takes every write queued since its last commit (up to a bound), applies them
//! in one transaction, commits once, and hands the durable commit to the
//! counting thread, which adds the new outcomes to the running totals and only
//! then answers each caller. Concurrent callers thus share one disk sync (group
//! commit), and an answer always follows the commit that made it durable. Being
//! alone, the writer also decides every idempotency race: of two identical
//! sends, whichever it takes second finds the first already there.

use std::sync::mpsc as std_mpsc;

use rusqlite::{Connection, ErrorCode, ffi, params};
use tokio::sync::{mpsc, oneshot};

use super::{
    Recorded, StoreError,
    counter::{Commit, TotalsChange},
    directory_lock::DirectoryLock,
    row::read_claim,
};
use crate::{
    measures::{Claim, Verdict},
    scheduling::CooperativeYield,
};

/// Most rows one transaction takes; a longer queue waits for the next commit,
/// so no single commit holds callers for long.
const MAX_ROWS_PER_COMMIT: usize = 4096;

/// One encounter ready to write: hashed, serialised and judged.
#[derive(Debug)]
pub struct PendingRow {
    pub encounter_id: String,
    pub patient_hash: [u8; 32],
    pub fingerprint: [u8; 32],
    pub claim: Claim,
    /// The service date as stored, rendered before the writer sees it.
    pub service_date: String,
    pub claim_json: String,
    pub replace: bool,
    pub verdicts: Vec<Verdict>,
}

/// Where the writer sends one job's results.
pub type Reply = oneshot::Sender<Result<Vec<Recorded>, StoreError>>;

/// What the writer is asked to do.
pub enum Job {
    /// Write these rows and answer with one result each, in order.
    Write { rows: Vec<PendingRow>, reply: Reply },
    /// Finish the queue, checkpoint the log and stop.
    Stop { done: oneshot::Sender<()> },
}

pub struct Writer {
    pub connection: Connection,
    pub jobs: mpsc::Receiver<Job>,
    /// Durable commits, to be counted and answered.
    pub committed: std_mpsc::SyncSender<Commit>,
    /// The counting thread, joined at stop so every answer is sent first.
    pub counter: std::thread::JoinHandle<()>,
    /// The data directory's lock, released only once the database is closed.
    /// Declared last, so it is dropped last.
    pub directory_lock: Option<DirectoryLock>,
}

impl Writer {
    pub fn run(mut self) {
        while let Some(job) = self.jobs.blocking_recv() {
            let mut batch = Vec::new();
            let mut rows = 0;
            let mut stop = None;
            let mut next = Some(job);
            while let Some(job) = next.take() {
                match job {
                    Job::Write {
                        rows: written,
                        reply,
                    } => {
                        rows += written.len();
                        batch.push((written, reply));
                    }
                    Job::Stop { done } => {
                        stop = Some(done);
                        break;
                    }
                }
                if rows < MAX_ROWS_PER_COMMIT {
                    next = self.jobs.try_recv().ok();
                }
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            if let Some(done) = stop {
                self.stop(done);
                return;
            }
        }
    }

    fn stop(self, done: oneshot::Sender<()>) {
        let Writer {
            connection,
            committed,
            counter,
            directory_lock,
            ..
        } = self;
        // The counter finishes what it holds once the writer hangs up.
        drop(committed);
        if counter.join().is_err() {
            tracing::error!("the store's counting thread panicked");
        }
        // Folds the log into the main file so the next start reads less.
        if let Err(error) = connection.pragma_update(None, "wal_checkpoint", "TRUNCATE") {
            tracing::warn!(%error, "store checkpoint at shutdown failed");
        }
        drop(connection);
        drop(directory_lock);
        let _ = done.send(());
    }

    fn commit(&mut self, batch: Vec<(Vec<PendingRow>, Reply)>) {
        let rows: usize = batch.iter().map(|(rows, _)| rows.len()).sum();
        let written = write_all(&mut self.connection, &batch);
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
                if no_room {
                    tracing::error!(%error, rows, "store commit failed for want of room on the disk; the batch was rolled back");
                } else {
                    tracing::error!(%error, rows, "store commit failed; the batch was rolled back");
                }
                for (_, reply) in batch {
                    let failure = if no_room {
                        StoreError::NoRoom
                    } else {
                        StoreError::CommitFailed
                    };
                    let _ = reply.send(Err(failure));
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

fn write_all(
    connection: &mut Connection,
    batch: &[(Vec<PendingRow>, Reply)],
) -> Result<Written, StoreError> {
    let transaction = connection.transaction()?;
    let mut results = Vec::new();
    let mut changes = Vec::new();
    {
        let mut find = transaction.prepare_cached(
            "SELECT fingerprint, provider_id, service_date, claim, revision
             FROM encounters WHERE encounter_id = ?1",
        )?;
        // New ids are the common case: one statement each, as cheap as a plain
        // insert. Only an id already stored costs the look-up that tells a
        // resend from a conflict or a replacement.
        let mut insert = transaction.prepare_cached(
            "INSERT INTO encounters
               (encounter_id, patient_hash, fingerprint, provider_id, service_date, claim, revision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
             ON CONFLICT (encounter_id) DO NOTHING",
        )?;
        let mut update = transaction.prepare_cached(
            "UPDATE encounters SET patient_hash = ?2, fingerprint = ?3, provider_id = ?4,
               service_date = ?5, claim = ?6, revision = ?7
             WHERE encounter_id = ?1",
        )?;
        let rows = batch.iter().flat_map(|(rows, _)| rows);
        let mut turns = CooperativeYield::new();
        for (index, row) in rows.enumerate() {
            turns.between_items();
            let inserted = insert.execute(params![
                row.encounter_id,
                &row.patient_hash[..],
                &row.fingerprint[..],
                row.claim.provider_id,
                row.service_date,
                row.claim_json,
            ])?;
            if inserted == 1 {
                changes.push(TotalsChange::Add(index));
                results.push(Recorded::Stored);
                continue;
            }
            let (fingerprint, provider, stored_date, claim, revision) =
                find.query_row(params![row.encounter_id], |found| {
                    Ok((
                        found.get::<_, Vec<u8>>(0)?,
                        found.get::<_, String>(1)?,
                        found.get::<_, String>(2)?,
                        found.get::<_, String>(3)?,
                        found.get::<_, i64>(4)?,
                    ))
                })?;
            let result = if fingerprint == row.fingerprint {
                Recorded::Duplicate
            } else if row.replace {
                let previous = read_claim(provider, &stored_date, &claim)?;
                update.execute(params![
                    row.encounter_id,
                    &row.patient_hash[..],
                    &row.fingerprint[..],
                    row.claim.provider_id,
                    row.service_date,
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
