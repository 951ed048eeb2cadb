//! The data directory and its files are the owner's alone.
//!
//! The database holds diagnoses, ages and dates of service, and the key file
//! the secret that protects patient ids, so nothing in the directory may be
//! readable by anyone but the account cptd runs as. A directory cptd creates
//! gets mode 0700 and every file it creates 0600, whatever the umask. At each
//! start an existing directory open to its group or others is narrowed to
//! 0700, and cptd's files in it to 0600, each with a warning that names the
//! path and the mode it had; where that is not allowed (cptd does not own the
//! directory), the start is refused with the `chmod` to run.

use std::path::{Path, PathBuf};

use super::{DATABASE_FILE, StoreError, database_lock::PID_FILE, patient_key::KEY_FILE};

/// The files cptd keeps in a data directory: the database, the logs SQLite
/// keeps beside it, the key file and the pid file.
fn own_files(directory: &Path) -> [PathBuf; 5] {
    [
        directory.join(DATABASE_FILE),
        directory.join(format!("{DATABASE_FILE}-wal")),
        directory.join(format!("{DATABASE_FILE}-shm")),
        directory.join(KEY_FILE),
        directory.join(PID_FILE),
    ]
}

/// Creates `directory` (mode 0700) if missing, or narrows it to 0700, and
/// cptd's files in it to 0600; refuses a directory it cannot narrow.
pub fn prepare(directory: &Path) -> Result<(), StoreError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| StoreError::Io { path, error }
    };
    if !directory.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(directory).map_err(io_error(directory))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(directory)
            .map_err(io_error(directory))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700)).map_err(
                |_| StoreError::OpenToOthers {
                    directory: directory.to_path_buf(),
                    mode: mode & 0o7777,
                },
            )?;
            tracing::warn!(
                path = %directory.display(),
                was = format!("{:04o}", mode & 0o7777),
                "narrowed the data directory to mode 0700; it was open to others"
            );
        }
        for file in own_files(directory) {
            let Ok(metadata) = std::fs::symlink_metadata(&file) else {
                continue;
            };
            let mode = metadata.permissions().mode();
            if metadata.is_file() && mode & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                    .map_err(io_error(&file))?;
                tracing::warn!(
                    path = %file.display(),
                    was = format!("{:04o}", mode & 0o7777),
                    "narrowed a data file to mode 0600; it was readable by others"
                );
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_missing_directory_is_created_for_its_owner_only() {
        let parent = tempfile::tempdir().unwrap();
        let directory = parent.path().join("data");

        prepare(&directory).unwrap();

        assert_eq!(mode_of(&directory), 0o700);
    }

    #[test]
    fn a_directory_open_to_others_is_narrowed_to_its_owner() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::set_permissions(directory.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

        prepare(directory.path()).unwrap();

        assert_eq!(mode_of(directory.path()), 0o700);
    }

    #[test]
    fn loose_data_files_are_narrowed_to_their_owner() {
        let directory = tempfile::tempdir().unwrap();
        let database = directory.path().join(DATABASE_FILE);
        std::fs::write(&database, b"").unwrap();
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();

        prepare(directory.path()).unwrap();

        assert_eq!(mode_of(&database), 0o600);
    }
}
