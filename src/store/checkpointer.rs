//! The checkpointing thread: copies the pages committed to the write-ahead log
//! into the database file, so that the log is reused instead of growing.
//!
//! By default SQLite checkpoints on the committing connection: once the log
//! holds a thousand pages, the commit that crossed the mark copies them all,
//! some 4 MB, and syncs the file. On the writer thread that took 10 to 15 ms,
//! during which every caller queued for the next commit waited, and the copy,
//! at the writer's priority, held a core from look-ups. Here the writer's
//! commit only signals this thread, which copies with a connection of its
//! own, at background priority, in SQLite's passive mode: the writer goes on
//! committing while it runs, and nothing waits for it.
//!
//! The log is reused from its start by the first write after a checkpoint has
//! copied all of it. Should this thread fall far behind, starved of CPU by
//! other work, the writer checkpoints itself once the log reaches
//! [`MAX_LOG_PAGES`], as SQLite would have, so the log stays bounded.

use std::{
    ffi::c_int,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

use rusqlite::{Connection, ErrorCode, MAIN_DB, hooks::Wal, wal::CheckpointMode};

use crate::scheduling::{BulkWork, lower_this_threads_priority};

/// Pages in the log from which a commit asks for a checkpoint: SQLite's own
/// default for checkpointing on commit.
pub const CHECKPOINT_PAGES: c_int = 1000;

/// Pages in the log from which the writer checkpoints itself rather than wait
/// for the checkpointing thread: eight times the usual, some 32 MB at 4 KiB
/// pages.
pub const MAX_LOG_PAGES: c_int = 8 * CHECKPOINT_PAGES;

/// What a commit that left `pages` in the log should have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCommit {
    /// Nothing: the log is still small.
    Nothing,
    /// Ask the checkpointing thread for a checkpoint.
    Signal,
    /// Checkpoint on the committing connection, now.
    CheckpointHere,
}

impl AfterCommit {
    pub fn for_log_of(pages: c_int) -> AfterCommit {
        if pages >= MAX_LOG_PAGES {
            AfterCommit::CheckpointHere
        } else if pages >= CHECKPOINT_PAGES {
            AfterCommit::Signal
        } else {
            AfterCommit::Nothing
        }
    }
}

/// The checkpointing thread, and the way to ask it for a checkpoint. Dropping
/// it lets a checkpoint in progress finish, then ends the thread and closes
/// its connection.
pub struct Checkpointer {
    requests: mpsc::SyncSender<Request>,
    thread: Option<JoinHandle<()>>,
}

enum Request {
    Checkpoint,
    Stop,
}

impl Checkpointer {
    /// Starts the thread, checkpointing through `connection`, a connection of
    /// its own to the writer's database, and adding one to `done` for each
    /// checkpoint that copied pages.
    pub fn start(connection: Connection, done: Arc<AtomicU64>) -> std::io::Result<Checkpointer> {
        // One request waiting is enough: a checkpoint copies everything
        // committed before it starts.
        let (requests, received) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("cptd-store-checkpoint".into())
            .spawn(move || {
                lower_this_threads_priority();
                while let Ok(Request::Checkpoint) = received.recv() {
                    // Copying a large log takes long after an import has
                    // answered; look-ups meanwhile still need their core.
                    let _competing = BulkWork::start();
                    if checkpoint(&connection) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })?;
        Ok(Checkpointer {
            requests,
            thread: Some(thread),
        })
    }

    /// Makes every commit on `writer` (the writer's connection) ask this
    /// thread for a checkpoint once the log is large, instead of checkpointing
    /// itself. This replaces SQLite's checkpointing on commit.
    pub fn watch(&self, writer: &mut Connection) -> rusqlite::Result<()> {
        let requests = self.requests.clone();
        // Said once each time the log grows past the mark, not at every commit.
        let mut behind = false;
        writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
            let after = AfterCommit::for_log_of(pages);
            match after {
                AfterCommit::Nothing => {}
                AfterCommit::Signal => {
                    // Full means a request is already waiting; closed, that
                    // the store is stopping.
                    let _ = requests.try_send(Request::Checkpoint);
                }
                AfterCommit::CheckpointHere => {
                    if !behind {
                        tracing::warn!(
                            pages,
                            "the checkpointing thread fell behind; the store's writer checkpoints the log itself"
                        );
                    }
                    if let Err(error) = wal.checkpoint() {
                        log_failure(&error);
                    }
                }
            }
            behind = after == AfterCommit::CheckpointHere;
            // An error here would fail the statement that committed, though
            // its commit stands: never return one.
            Ok(())
        }))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Waits behind a request already queued; fails if the thread is gone.
        let _ = self.requests.send(Request::Stop);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store's checkpointing thread panicked");
        }
    }
}

/// Runs a passive checkpoint; true when it copied pages.
fn checkpoint(connection: &Connection) -> bool {
    match connection.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
        Ok((_, copied)) => copied > 0,
        Err(error) => {
            log_failure(&error);
            false
        }
    }
}

/// Logs a failed checkpoint. Busy means another checkpoint is running, which
/// will do the work; anything else (a full disk, say) is retried at the next
/// commit's request, and committed data is safe in the log meanwhile.
fn log_failure(error: &rusqlite::Error) {
    if error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) {
        return;
    }
    tracing::warn!(%error, "checkpointing the store's log failed; it is retried after the next commit");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_log_is_handed_to_the_thread_and_a_huge_one_checkpointed_at_once() {
        let cases = [
            (0, AfterCommit::Nothing),
            (CHECKPOINT_PAGES - 1, AfterCommit::Nothing),
            (CHECKPOINT_PAGES, AfterCommit::Signal),
            (MAX_LOG_PAGES - 1, AfterCommit::Signal),
            (MAX_LOG_PAGES, AfterCommit::CheckpointHere),
        ];
        for (pages, expected) in cases {
            assert_eq!(AfterCommit::for_log_of(pages), expected, "{pages} pages");
        }
    }
}
