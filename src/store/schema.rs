//! The database schema, as numbered migrations.
//!
//! `PRAGMA user_version` records how many migrations a database has had. Opening
//! applies the missing ones in order, each in its own transaction, so a crash
//! mid-migration leaves the database at the previous version. A database from a
//! newer cptd (a higher version than this one knows) is refused rather than
//! guessed at.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Each migration's SQL; migration `n` (from 1) takes the schema to version `n`.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: encounters, keyed by the caller's id. The claim is the encounter's
    // facts as JSON (no patient id); `patient_hash` is HMAC-SHA256 of the patient
    // id; `fingerprint` identified the content, to tell a resend from a
    // conflicting one (until 2). `meta` holds store-wide facts such as the
    // key check.
    "CREATE TABLE encounters (
         encounter_id TEXT PRIMARY KEY NOT NULL,
         patient_hash BLOB NOT NULL,
         fingerprint BLOB NOT NULL,
         provider_id TEXT NOT NULL,
         service_date TEXT NOT NULL,
         claim TEXT NOT NULL,
         revision INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE meta (
         name TEXT PRIMARY KEY NOT NULL,
         value BLOB NOT NULL
     ) WITHOUT ROWID;",
    // 2: no fingerprint. A resend is told from a conflicting one by comparing
    // its columns with the stored row's, which the check reads anyway; the
    // hash cost every recorded encounter a SHA-256 of its whole row and every
    // row 32 bytes more. SQLite rewrites the table to drop it, once.
    "ALTER TABLE encounters DROP COLUMN fingerprint;",
    // 3: counting as CMS does. An encounter carries its billing TIN and may be
    // voided (kept, so that its id stays taken). A group is one measure
    // stratum, one provider (TIN, NPI), one patient and one bucket (the year,
    // or the date for measures whose units live within a date), named by a
    // number so that marks and units carry a short key. Each eligible claim
    // leaves a mark in its group; `units` holds the units a group's marks
    // form, `totals` their counts per provider and bucket, kept in the same
    // transaction as the claims that move them. `measure_versions` records the
    // definition each measure was counted under, so that a changed one is
    // counted again at start.
    "ALTER TABLE encounters ADD COLUMN tin TEXT NOT NULL DEFAULT '';
     ALTER TABLE encounters ADD COLUMN voided INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE groups (
         group_id INTEGER PRIMARY KEY,
         measure_id TEXT NOT NULL,
         stratum INTEGER NOT NULL,
         tin TEXT NOT NULL,
         npi TEXT NOT NULL,
         patient_hash BLOB NOT NULL,
         bucket TEXT NOT NULL,
         UNIQUE (patient_hash, measure_id, stratum, tin, npi, bucket)
     );
     CREATE TABLE claim_marks (
         group_id INTEGER NOT NULL,
         encounter_id TEXT NOT NULL,
         service_date TEXT NOT NULL,
         marker INTEGER,
         weight INTEGER NOT NULL,
         diagnoses TEXT NOT NULL,
         unit_no INTEGER NOT NULL,
         PRIMARY KEY (group_id, encounter_id)
     ) WITHOUT ROWID;
     CREATE INDEX claim_marks_by_encounter ON claim_marks (encounter_id);
     CREATE TABLE units (
         group_id INTEGER NOT NULL,
         unit_no INTEGER NOT NULL,
         marker INTEGER,
         weight INTEGER NOT NULL,
         first_date TEXT NOT NULL,
         last_date TEXT NOT NULL,
         PRIMARY KEY (group_id, unit_no)
     ) WITHOUT ROWID;
     CREATE TABLE totals (
         measure_id TEXT NOT NULL,
         stratum INTEGER NOT NULL,
         tin TEXT NOT NULL,
         npi TEXT NOT NULL,
         bucket TEXT NOT NULL,
         eligible INTEGER NOT NULL,
         met INTEGER NOT NULL,
         not_met INTEGER NOT NULL,
         exclusions INTEGER NOT NULL,
         exceptions INTEGER NOT NULL,
         PRIMARY KEY (measure_id, stratum, tin, npi, bucket)
     ) WITHOUT ROWID;
     CREATE TABLE measure_versions (
         measure_id TEXT PRIMARY KEY NOT NULL,
         fingerprint TEXT NOT NULL
     ) WITHOUT ROWID;",
    // 4: the audit trail (see `audit`).
    AUDIT_TRAIL_TABLE,
];

/// One record per call that read or wrote encounter data, each chained to the
/// one before by `hash`.
pub(super) const AUDIT_TRAIL_TABLE: &str = "CREATE TABLE audit_trail (
         seq INTEGER PRIMARY KEY,
         at TEXT NOT NULL,
         caller TEXT NOT NULL,
         method TEXT NOT NULL,
         subject TEXT NOT NULL,
         outcome TEXT NOT NULL,
         hash BLOB NOT NULL
     );";

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses a database that is not at [`SCHEMA_VERSION`], changing nothing.
pub fn require_current(connection: &Connection) -> Result<(), StoreError> {
    let found: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(StoreError::OtherSchema {
            found,
            known: SCHEMA_VERSION,
        })
    }
}

/// Brings the database up to [`SCHEMA_VERSION`].
pub fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        // IMMEDIATE takes the write lock before reading the version again, so
        // two servers starting at once on one directory migrate it once.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 =
            transaction.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if current >= version {
            continue;
        }
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
        tracing::info!(schema_version = version, "store schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT name FROM pragma_table_info('encounters') ORDER BY cid")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_database_of_the_first_schema_drops_the_fingerprint_and_keeps_its_rows() {
        let mut connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(MIGRATIONS[0]).unwrap();
        connection.pragma_update(None, "user_version", 1).unwrap();
        connection
            .execute(
                "INSERT INTO encounters VALUES ('e1', x'0102', x'0304', 'npi-1', '2025-01-02', '{}', 3)",
                [],
            )
            .unwrap();

        migrate(&mut connection).unwrap();

        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            columns(&connection),
            [
                "encounter_id",
                "patient_hash",
                "provider_id",
                "service_date",
                "claim",
                "revision",
                "tin",
                "voided"
            ]
        );
        let kept: (Vec<u8>, String, String, String, i64) = connection
            .query_row(
                "SELECT * FROM encounters WHERE encounter_id = 'e1'",
                [],
                |row| {
                    Ok((
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(5)?,
                    ))
                },
            )
            .unwrap();
        assert_eq!(
            kept,
            (
                vec![1, 2],
                "npi-1".into(),
                "2025-01-02".into(),
                "{}".into(),
                3
            )
        );
    }
}
