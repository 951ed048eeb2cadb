//! The shared database's schema, as numbered migrations, and the start-up
//! lock that lets replicas starting together migrate and recount it once.
//!
//! The tables are those of the embedded store (see `store::schema`), in
//! PostgreSQL's types, but for `groups.group_key`: a hash of a group's six
//! key columns, so that finding or making the groups of a commit is one
//! narrow index's work. `cptd_schema` records the version; a database from a
//! newer cptd is refused rather than guessed at.

use deadpool_postgres::Object;

use super::super::{StoreError, patient_key::PatientHasher};

/// Held by a replica while it migrates, checks the key and recounts; a
/// session-level advisory lock, so it ends with the connection if the replica
/// dies.
const START_LOCK: i64 = 0x6370_7464_0001;

/// Taken at the start of every writing transaction (see the module docs of
/// `postgres`); a transaction-level advisory lock, released at its end.
pub const WRITE_LOCK: i64 = 0x6370_7464_0002;

/// Each migration's SQL; migration `n` (from 1) takes the schema to version `n`.
const MIGRATIONS: &[&str] = &["CREATE TABLE meta (
         name TEXT PRIMARY KEY,
         value BYTEA NOT NULL
     );
     CREATE TABLE encounters (
         encounter_id TEXT PRIMARY KEY,
         patient_hash BYTEA NOT NULL,
         provider_id TEXT NOT NULL,
         tin TEXT NOT NULL,
         service_date TEXT NOT NULL,
         claim TEXT NOT NULL,
         voided BOOLEAN NOT NULL,
         revision BIGINT NOT NULL
     );
     CREATE TABLE groups (
         group_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         group_key BYTEA NOT NULL UNIQUE,
         measure_id TEXT NOT NULL,
         stratum BIGINT NOT NULL,
         tin TEXT NOT NULL,
         npi TEXT NOT NULL,
         patient_hash BYTEA NOT NULL,
         bucket TEXT NOT NULL
     );
     CREATE INDEX groups_by_provider ON groups (measure_id, stratum, tin, npi, bucket);
     CREATE TABLE claim_marks (
         group_id BIGINT NOT NULL,
         encounter_id TEXT NOT NULL,
         service_date TEXT NOT NULL,
         marker BIGINT,
         weight BIGINT NOT NULL,
         diagnoses TEXT NOT NULL,
         unit_no BIGINT NOT NULL,
         PRIMARY KEY (group_id, encounter_id)
     );
     CREATE INDEX claim_marks_by_encounter ON claim_marks (encounter_id);
     CREATE TABLE units (
         group_id BIGINT NOT NULL,
         unit_no BIGINT NOT NULL,
         marker BIGINT,
         weight BIGINT NOT NULL,
         first_date TEXT NOT NULL,
         last_date TEXT NOT NULL,
         PRIMARY KEY (group_id, unit_no)
     );
     CREATE TABLE totals (
         measure_id TEXT NOT NULL,
         stratum BIGINT NOT NULL,
         tin TEXT NOT NULL,
         npi TEXT NOT NULL,
         bucket TEXT NOT NULL,
         eligible BIGINT NOT NULL,
         met BIGINT NOT NULL,
         not_met BIGINT NOT NULL,
         exclusions BIGINT NOT NULL,
         exceptions BIGINT NOT NULL,
         PRIMARY KEY (measure_id, stratum, tin, npi, bucket)
     );
     CREATE TABLE measure_versions (
         measure_id TEXT PRIMARY KEY,
         fingerprint TEXT NOT NULL
     );
     CREATE TABLE audit_trail (
         seq BIGINT PRIMARY KEY,
         at TEXT NOT NULL,
         caller TEXT NOT NULL,
         method TEXT NOT NULL,
         subject TEXT NOT NULL,
         outcome TEXT NOT NULL,
         hash BYTEA NOT NULL
     );"];

/// The schema version this build writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// What the meta table keeps to recognise the patient-id key.
const KEY_CHECK_NAME: &str = "patient_id_key_check";

/// Takes the start-up lock (held until [`unlock`]) and brings the database
/// up to [`SCHEMA_VERSION`], each migration in its own transaction.
pub async fn migrate(client: &mut Object) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&START_LOCK])
        .await?;
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS cptd_schema (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = client
        .query_opt("SELECT version FROM cptd_schema", &[])
        .await?
        .map_or(0, |row| row.get(0));
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let transaction = client.transaction().await?;
        transaction.batch_execute(sql).await?;
        transaction.execute("DELETE FROM cptd_schema", &[]).await?;
        transaction
            .execute("INSERT INTO cptd_schema (version) VALUES ($1)", &[&version])
            .await?;
        transaction.commit().await?;
        tracing::info!(schema_version = version, "store schema migrated");
    }
    Ok(())
}

/// Releases the start-up lock.
pub async fn unlock(client: &Object) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&START_LOCK])
        .await?;
    Ok(())
}

/// Records the key's check value on first start, and refuses a key that
/// differs from the one the database was written with.
pub async fn check_key(client: &Object, hasher: &PatientHasher) -> Result<(), StoreError> {
    let check = super::super::database::key_check(hasher);
    client
        .execute(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&KEY_CHECK_NAME, &&check[..]],
        )
        .await?;
    let stored: Vec<u8> = client
        .query_one("SELECT value FROM meta WHERE name = $1", &[&KEY_CHECK_NAME])
        .await?
        .get(0);
    if stored == check {
        Ok(())
    } else {
        Err(StoreError::KeyMismatch)
    }
}
