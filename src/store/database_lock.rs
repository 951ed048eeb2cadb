//! One server per database.
//!
//! A second server on the same database would run a writer of its own beside
//! the first one's, each deciding the units and totals of its commits from
//! what it last read, so the two would split and miscount the units they share.
//! A store opened on a directory therefore holds an exclusive lock (`flock`) on
//! the database file itself for as long as it runs, and a second opening is
//! refused. The lock is on the file that is shared, not on a file beside it, so
//! deleting any other file in the directory does not lift it; and the
//! operating system drops it when the process ends, however it ends, so a
//! crash never leaves the database locked.
//!
//! SQLite locks the same file with POSIX record locks, which Linux keeps apart
//! from `flock` locks; but closing any descriptor of the file drops every POSIX
//! lock this process holds on it, so the lock's descriptor is closed only after
//! every connection (see [`DatabaseLock`]).

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::Write,
    path::Path,
};

use super::{DATABASE_FILE, StoreError};

/// The file in the data directory that names the process holding the
/// database, for an operator who wants to signal it; it is no lock itself.
pub const PID_FILE: &str = "cptd.lock";

/// The lock, held until dropped. Shared (`Arc`) by the store and its writer
/// thread so that it outlives the last connection, whichever closes last.
#[derive(Debug)]
pub struct DatabaseLock {
    _database: File,
}

impl DatabaseLock {
    /// Takes the lock on the database in `directory`, creating the database
    /// file (mode 0600, so the log files SQLite makes beside it get the same
    /// mode) when it is missing; or names the process that holds it.
    pub fn acquire(directory: &Path) -> Result<DatabaseLock, StoreError> {
        let path = directory.join(DATABASE_FILE);
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |error| StoreError::Io { path, error }
        };
        let database = private_file(&path).map_err(io_error(&path))?;
        match database.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Best effort: the holder may be writing its id right now.
                let holder = std::fs::read_to_string(directory.join(PID_FILE))
                    .ok()
                    .and_then(|text| text.trim().parse().ok());
                return Err(StoreError::InUse {
                    directory: directory.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(error)) => return Err(io_error(&path)(error)),
        }
        let pid_path = directory.join(PID_FILE);
        let mut pid_file = private_file(&pid_path).map_err(io_error(&pid_path))?;
        pid_file.set_len(0).map_err(io_error(&pid_path))?;
        writeln!(pid_file, "{}", std::process::id()).map_err(io_error(&pid_path))?;
        Ok(DatabaseLock {
            _database: database,
        })
    }
}

/// Opens `path` for reading and writing, creating it readable by its owner
/// only when missing; an existing file keeps its content.
fn private_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_database_is_refused_naming_the_holder_and_free_once_dropped() {
        let directory = tempfile::tempdir().unwrap();
        let held = DatabaseLock::acquire(directory.path()).unwrap();

        let refused = DatabaseLock::acquire(directory.path()).unwrap_err();
        let StoreError::InUse { holder, .. } = &refused else {
            panic!("not refused as in use: {refused}");
        };
        assert_eq!(*holder, Some(std::process::id()));
        assert!(
            refused
                .to_string()
                .contains("in use by another running cptd")
        );

        drop(held);
        DatabaseLock::acquire(directory.path()).unwrap();
    }

    #[test]
    fn deleting_the_pid_file_does_not_lift_the_lock() {
        let directory = tempfile::tempdir().unwrap();
        let _held = DatabaseLock::acquire(directory.path()).unwrap();
        std::fs::remove_file(directory.path().join(PID_FILE)).unwrap();

        let refused = DatabaseLock::acquire(directory.path()).unwrap_err();

        assert!(matches!(refused, StoreError::InUse { holder: None, .. }));
    }
}
