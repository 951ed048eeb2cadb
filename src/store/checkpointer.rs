//! The checkpointing thread: copies the pages committed to the write-ahead log
//! into the database file, so that the log is reused instead of growing.
//!
//! Left to SQLite, the commit that takes the log past a thousand pages copies
//! them all (some 4 MB) and syncs the file before it returns, and every caller
//! waiting on the next commit waits for that too. Here the writer's commit only
//! signals this thread, which copies through a connection of its own in
//! SQLite's passive mode, while the writer goes on committing.

use std::{ffi::c_int, sync::mpsc, thread::JoinHandle};

use rusqlite::{Connection, ErrorCode, MAIN_DB, hooks::Wal, wal::CheckpointMode};

/// Pages in the log from which a commit asks for a checkpoint: SQLite's own
/// threshold for checkpointing on commit.
const CHECKPOINT_PAGES: c_int = 1000;

/// Pages in the log from which the writer checkpoints itself, should the
/// checkpointing thread fall far behind (starved of CPU, say): eight times the
/// usual, some 32 MB at 4 KiB pages, so the log stays bounded.
const MAX_LOG_PAGES: c_int = 8 * CHECKPOINT_PAGES;

/// The checkpointing thread. Dropping it lets a checkpoint in progress finish,
/// then ends the thread and closes its connection.
pub struct Checkpointer {
    requests: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread, checkpointing through `connection`, its own
    /// connection to the writer's database, and makes every commit on `writer`
    /// ask it for a checkpoint once the log is large. This replaces SQLite's
    /// checkpointing on commit.
    pub fn start(connection: Connection, writer: &mut Connection) -> std::io::Result<Checkpointer> {
        // One request waiting is enough: a checkpoint copies everything
        // committed before it starts.
        let (requests, received) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("cptd-store-checkpoint".into())
            .spawn(move || {
                crate::bulk_priority::lower_this_thread("store checkpoint");
                while received.recv().is_ok() {
                    checkpoint(&connection);
                }
            })?;
        let signal = requests.clone();
        writer
            .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
                if pages >= MAX_LOG_PAGES {
                    if let Err(error) = wal.checkpoint() {
                        log_failure(&error);
                    }
                } else if pages >= CHECKPOINT_PAGES {
                    // Full means a request is already waiting.
                    let _ = signal.try_send(());
                }
                // An error here would fail the statement that committed,
                // though its commit stands: never return one.
                Ok(())
            }))
            .map_err(std::io::Error::other)?;
        Ok(Checkpointer {
            requests: Some(requests),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // The thread ends once every sender is gone: the writer's hook holds
        // one until the writer's connection closes, so close that first.
        self.requests.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store's checkpointing thread panicked");
        }
    }
}

/// Runs a passive checkpoint.
fn checkpoint(connection: &Connection) {
    if let Err(error) = connection.wal_checkpoint_v2(Some(MAIN_DB), CheckpointMode::PASSIVE) {
        log_failure(&error);
    }
}

/// Busy means another checkpoint is running, which does the work; any other
/// failure (a full disk, say) is retried at the next commit, and committed
/// data is safe in the log meanwhile.
fn log_failure(error: &rusqlite::Error) {
    if error.sqlite_error_code() != Some(ErrorCode::DatabaseBusy) {
        tracing::warn!(%error, "checkpointing the store's log failed; retried after the next commit");
    }
}
