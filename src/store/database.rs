//! Opening the database: the file (or memory), its log mode and sync setting,
//! the patient-id key check, and the totals rebuilt from what is stored.

use std::{path::Path, time::Instant};

use rusqlite::{Connection, OptionalExtension};

use super::{
    DATABASE_FILE, Durability, Location, StoreError, StoreOptions, claim_json::read_claim,
    directory_lock::DirectoryLock, patient_key::PatientHasher, patient_key::PatientIdKey,
};
use crate::measures::{MeasureSet, PerformanceTotals};

/// What the meta table keeps to recognise the patient-id key.
const KEY_CHECK_NAME: &str = "patient_id_key_check";
const KEY_CHECK_INPUT: &[u8] = b"cptd patient-id key check";

/// How long a connection waits for a lock another process holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// An open database, the key for its patient ids, and, on disk, the lock that
/// keeps its directory to this store.
pub type Opened = (Connection, PatientIdKey, Option<DirectoryLock>);

/// Opens the database `options` names, creating its directory (owner only)
/// and its key as needed.
pub fn open(options: &StoreOptions) -> Result<Opened, StoreError> {
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
            let connection = open_file(directory, options.durability)?;
            Ok((connection, key, Some(lock)))
        }
    }
}

/// A connection to the database in `directory`, in WAL mode, syncing as
/// `durability` says.
pub fn open_file(directory: &Path, durability: Durability) -> Result<Connection, StoreError> {
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

/// Refuses a key other than the one the database was first written with.
pub fn check_key(connection: &Connection, hasher: &PatientHasher) -> Result<(), StoreError> {
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

/// Re-judges every stored claim under `measures` and sums the totals; also
/// answers how many encounters there are.
pub fn rebuild_totals(
    connection: &Connection,
    measures: &MeasureSet,
) -> Result<(PerformanceTotals, u64), StoreError> {
    let mut totals = PerformanceTotals::default();
    let mut statement =
        connection.prepare("SELECT provider_id, service_date, claim FROM encounters")?;
    let mut rows = statement.query([])?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let service_date: String = row.get(1)?;
        let claim: String = row.get(2)?;
        let claim = read_claim(row.get(0)?, &service_date, &claim)?;
        totals.apply(
            &claim.provider_id,
            claim.service_date,
            &measures.outcomes(&claim),
            1,
        );
        count += 1;
    }
    Ok((totals, count))
}
