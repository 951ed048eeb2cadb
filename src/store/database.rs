//! Opening the database: the file (or memory), its log mode and sync setting,
//! the patient-id key check, and the connections reads go through.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Instant,
};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{
    DATABASE_FILE, Durability, Location, StoreError, StoreOptions, database_lock::DatabaseLock,
    file_modes, patient_key::PatientHasher, patient_key::PatientIdKey,
};

/// What the meta table keeps to recognise the patient-id key.
const KEY_CHECK_NAME: &str = "patient_id_key_check";
const KEY_CHECK_INPUT: &[u8] = b"cptd patient-id key check";

/// Statements a connection keeps prepared: more than the writer and the
/// readers use, so none is parsed again once warm (rusqlite keeps 16 by
/// default, fewer than a commit uses, and each miss parses and plans its SQL
/// anew).
const PREPARED_STATEMENTS: usize = 64;

/// Bytes of the database file a connection maps into memory to read it: the
/// whole file for a practice's data (a million encounters take about 1 GB).
const MAPPED_BYTES: i64 = 4 << 30;

/// KiB of pages a connection keeps cached.
const CACHE_KIB: i64 = 64 * 1024;

/// How long a connection waits for a lock another process holds.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The writer's connection to an open database, the key for its patient
/// ids, on disk the lock that keeps its directory to this store, and the
/// connections reads go through.
pub type Opened = (Connection, PatientIdKey, Option<DatabaseLock>, Readers);

/// Opens the database `options` names, creating its directory and files
/// (owner only) and its key as needed, and takes its lock.
pub fn open(options: &StoreOptions) -> Result<Opened, StoreError> {
    match &options.location {
        Location::InMemory => {
            let key = match &options.key {
                Some(key) => key.clone(),
                None => PatientIdKey::random()?,
            };
            // SQLite's memdb file system shares one database in memory
            // between the connections of this process that name it, so reads
            // go through connections of their own as they do on disk; the
            // name is random, so stores in one process never share one.
            let name = format!(
                "file:/cptd-{}?vfs=memdb",
                key.hasher().hash_bytes(b"in-memory database name")[..8]
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<String>()
            );
            let connection = open_memory(&name)?;
            let readers = Readers::new(Source::Memory(name));
            Ok((connection, key, None, readers))
        }
        Location::Directory(directory) => {
            file_modes::prepare(directory)?;
            let lock = DatabaseLock::acquire(directory)?;
            let key = match &options.key {
                Some(key) => key.clone(),
                None => PatientIdKey::in_directory(directory)?,
            };
            let connection = open_file(directory, options.durability)?;
            let readers = Readers::new(Source::File(directory.clone(), options.durability));
            Ok((connection, key, Some(lock), readers))
        }
    }
}

fn open_memory(name: &str) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(name, flags)?;
    connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
    // Without a write-ahead log in memory, a read waits for the commit in
    // progress.
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}

/// Where reading connections connect.
#[derive(Debug)]
enum Source {
    File(PathBuf, Durability),
    Memory(String),
}

/// Most idle reading connections kept for the next read.
const IDLE_READERS: usize = 8;

/// The connections reads go through: WAL lets them read while the writer
/// commits. One is opened whenever every kept one is busy (the store lets
/// only so many reads run at once), and up to [`IDLE_READERS`] are kept
/// between reads.
#[derive(Debug)]
pub struct Readers {
    source: Source,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Reading connections to the database in `directory`.
    pub fn for_directory(directory: &Path) -> Readers {
        Readers::new(Source::File(directory.to_path_buf(), Durability::Full))
    }

    fn new(source: Source) -> Readers {
        Readers {
            source,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Closes the connections kept between reads.
    pub fn close_idle(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Runs `read` on a reading connection. Blocking.
    pub fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let kept = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match kept {
            Some(connection) => connection,
            None => {
                let connection = match &self.source {
                    Source::File(directory, durability) => open_file(directory, *durability)?,
                    Source::Memory(name) => open_memory(name)?,
                };
                // A read never writes; should one try, it fails.
                connection.pragma_update(None, "query_only", true)?;
                connection
            }
        };
        let answer = read(&connection);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        answer
    }
}

/// A connection to the database in `directory`, in WAL mode, syncing as
/// `durability` says.
pub fn open_file(directory: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let connection = Connection::open(directory.join(DATABASE_FILE))?;
    connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
    // Another process (an operator's sqlite3, a backup tool) may hold a lock
    // for a moment; wait rather than fail at once.
    connection.busy_timeout(BUSY_TIMEOUT)?;
    use_write_ahead_log(&connection)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    // A commit decides again the units of every group it touches, reading
    // their marks and units from all over the database; with SQLite's 2 MB
    // page cache each of those reads was a system call once the database
    // outgrew it. The operating system's cache, mapped into the process,
    // serves them instead, and a larger cache of our own keeps the pages a
    // commit writes.
    connection.pragma_update(None, "mmap_size", MAPPED_BYTES)?;
    connection.pragma_update(None, "cache_size", -CACHE_KIB)?;
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
/// The value a database keeps to recognise the key of `hasher`.
pub fn key_check(hasher: &PatientHasher) -> [u8; 32] {
    hasher.hash_bytes(KEY_CHECK_INPUT)
}

pub fn check_key(connection: &Connection, hasher: &PatientHasher) -> Result<(), StoreError> {
    let check = key_check(hasher);
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
