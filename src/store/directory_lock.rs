//! One server per data directory.
//!
//! Each server keeps the running totals of what it writes in memory. A second
//! server writing to the same database would leave both reporting numbers that
//! miss the other's encounters, so a store opened on a directory holds an
//! exclusive lock on a file in it for as long as it runs, and a second opening
//! is refused. The operating system drops the lock when the process ends,
//! however it ends, so a crash never leaves the directory locked.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::Write,
    path::Path,
};

use super::StoreError;

/// The lock file in the data directory; it holds the holder's process id.
pub const LOCK_FILE: &str = "cptd.lock";

/// The lock, held until dropped.
#[derive(Debug)]
pub struct DirectoryLock {
    _file: File,
}

impl DirectoryLock {
    /// Takes the lock on `directory`, or names the process that holds it.
    pub fn acquire(directory: &Path) -> Result<DirectoryLock, StoreError> {
        let path = directory.join(LOCK_FILE);
        let io_error = |error| StoreError::Io {
            path: path.clone(),
            error,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Best effort: the holder may be writing its id right now.
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.trim().parse().ok());
                return Err(StoreError::InUse {
                    directory: directory.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(error)) => return Err(io_error(error)),
        }
        // For an operator wondering which process has the directory.
        file.set_len(0).map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        Ok(DirectoryLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_is_refused_naming_the_holder_and_free_once_dropped() {
        let directory = tempfile::tempdir().unwrap();
        let held = DirectoryLock::acquire(directory.path()).unwrap();

        let refused = DirectoryLock::acquire(directory.path()).unwrap_err();
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
        DirectoryLock::acquire(directory.path()).unwrap();
    }
}
