//! The store on its own: durable across reopening, totals rebuilt from disk,
//! replacement re-counted once, the key and schema guarded, one store per directory.

use std::sync::{Arc, LazyLock};

use jiff::civil::date;
use rusqlite::Connection;

use super::*;
use crate::{
    codes::CodeValue,
    measures::{
        Claim, Diagnosis, Encounter, MeasureSet, PatientId, Period, PlaceOfService, ProviderFilter,
        ReportedCode,
    },
};

fn encounter(id: &str, codes: &[&str]) -> Encounter {
    Encounter {
        encounter_id: id.into(),
        patient_id: PatientId::parse("MRN-STORE-TEST").unwrap(),
        // A provider of its own, so that each encounter is its own unit.
        claim: Claim {
            provider_id: format!("npi-{id}"),
            tin: None,
            service_date: date(2025, 5, 6),
            place_of_service: None,
            patient_age: Some(50),
            patient_sex: None,
            codes: codes
                .iter()
                .map(|text| {
                    let mut parts = text.split('-');
                    ReportedCode {
                        code: CodeValue::parse(parts.next().unwrap()).unwrap(),
                        modifiers: parts
                            .map(|m| crate::measures::Modifier::parse(m).unwrap())
                            .collect(),
                        units: 0,
                    }
                })
                .collect(),
            diagnoses: vec![Diagnosis::parse("C50.911").unwrap()],
        },
    }
}

/// An encounter to record, judged under the built-in measures as the server
/// judges it.
fn submission(encounter: Encounter, replace: bool) -> Submission {
    static BUILT_IN: LazyLock<MeasureSet> = LazyLock::new(|| MeasureSet::built_in().unwrap());
    let judged = BUILT_IN.judge(&encounter.claim);
    Submission {
        encounter,
        replace,
        judged,
    }
}

fn options(directory: &std::path::Path) -> StoreOptions {
    StoreOptions {
        location: Location::Directory(directory.to_path_buf()),
        durability: Durability::Full,
        key: None,
        max_concurrent_reads: 4,
    }
}

fn in_memory_store(measures: &Arc<MeasureSet>, key: Option<PatientIdKey>) -> EncounterStore {
    let options = StoreOptions {
        location: Location::InMemory,
        durability: Durability::Full,
        key,
        max_concurrent_reads: 4,
    };
    EncounterStore::open(options, measures.clone()).unwrap()
}

/// Units met and eligible under `measure_id`, everyone's, in 2025.
async fn counts_of(store: &EncounterStore, measures: &MeasureSet, measure_id: &str) -> (i64, i64) {
    let measure = measures.get(measure_id).unwrap().clone();
    let report = store
        .report(measure, ProviderFilter::default(), Period::year(2025))
        .await
        .unwrap();
    let counts = report.overall.counts.unwrap();
    (counts.met, counts.eligible_population)
}

async fn met(store: &EncounterStore, measures: &MeasureSet) -> (i64, i64) {
    counts_of(store, measures, "pain-intensity-quantified").await
}

#[tokio::test]
async fn encounters_and_totals_survive_reopening() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    let batch = (0..5)
        .map(|index| submission(encounter(&format!("e{index}"), &["99213", "1125F"]), false))
        .collect();
    let recorded = store.record(batch).await.unwrap();
    assert!(recorded.iter().all(|r| *r == Recorded::Stored));
    store.close().await;

    let reopened = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    assert_eq!(met(&reopened, &measures).await, (5, 5));
    let again = reopened
        .record(vec![submission(
            encounter("e0", &["99213", "1125F"]),
            false,
        )])
        .await
        .unwrap();
    assert_eq!(again, [Recorded::Duplicate]);
}

#[tokio::test]
async fn a_replacement_takes_the_old_version_out_of_the_totals() {
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = in_memory_store(&measures, None);
    let first = submission(encounter("r1", &["99213"]), false);
    let changed = || submission(encounter("r1", &["99213", "1126F"]), false);
    let replacement = submission(encounter("r1", &["99213", "1126F"]), true);

    // One commit holding the first version, a conflicting resend and the
    // correction: applied in order.
    let recorded = store
        .record(vec![first, changed(), replacement])
        .await
        .unwrap();

    assert_eq!(
        recorded,
        [Recorded::Stored, Recorded::Conflict, Recorded::Replaced]
    );
    assert_eq!(met(&store, &measures).await, (1, 1));
}

#[tokio::test]
async fn a_commit_counts_each_row_it_stores_by_that_rows_own_outcomes() {
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = in_memory_store(&measures, None);
    let met_visit = |id: &str| encounter(id, &["99213", "1125F"]);
    let not_met_visit = |id: &str| encounter(id, &["99213", "1125F-8P"]);
    store
        .record(vec![submission(met_visit("c0"), false)])
        .await
        .unwrap();
    assert_eq!(met(&store, &measures).await, (1, 1));

    // Rows that change nothing come first in each commit. A counter that
    // took the outcomes of the wrong row would count a met visit twice here...
    let recorded = store
        .record(vec![
            submission(met_visit("c0"), false),
            submission(not_met_visit("c0"), false),
            submission(not_met_visit("c1"), false),
        ])
        .await
        .unwrap();
    assert_eq!(
        recorded,
        [Recorded::Duplicate, Recorded::Conflict, Recorded::Stored]
    );
    assert_eq!(met(&store, &measures).await, (1, 2));

    // ...and here would count the duplicate in place of the replacement,
    // which has no visit code and so leaves the measure.
    let recorded = store
        .record(vec![
            submission(not_met_visit("c1"), false),
            submission(encounter("c0", &["1125F"]), true),
        ])
        .await
        .unwrap();
    assert_eq!(recorded, [Recorded::Duplicate, Recorded::Replaced]);
    assert_eq!(met(&store, &measures).await, (0, 1));
}

/// What a row stores for one fixed encounter under one fixed key, as cptd
/// wrote it before preparing rows into shared buffers (`0a82d4d`). Stored
/// rows are compared with their resends column by column, so if these bytes
/// changed, every resend of an encounter stored earlier would be refused as
/// a conflict.
#[tokio::test]
async fn a_row_is_hashed_and_written_as_earlier_versions_wrote_it() {
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let key = PatientIdKey::from_hex(&"5a".repeat(32)).unwrap();
    let store = in_memory_store(&measures, Some(key));
    let mut visit = encounter("golden-1", &["99213-25", "1125F"]);
    visit.claim.place_of_service = Some(PlaceOfService::parse("11").unwrap());

    let row = store.prepare(submission(visit, false));

    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    assert_eq!(
        row.claim_json,
        r#"{"place":"11","age":50,"codes":[{"code":"99213","modifiers":["25"]},{"code":"1125F"}],"diagnoses":["C50911"]}"#
    );
    assert_eq!(row.service_date_text, "2025-05-06");
    assert_eq!(
        hex(&row.patient_hash),
        "8bdea61c3c3969052b2a935a26f6dd4aae52a24b2b0b9029bdcddb5da694895a"
    );
}

#[tokio::test]
async fn encounters_stored_under_the_first_schema_are_recognised_when_resent() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let visit = || encounter("v1-row", &["99213", "1125F"]);
    let store = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    store
        .record(vec![submission(visit(), false)])
        .await
        .unwrap();
    store.close().await;
    // The tables exactly as the first schema made them, the row and the key
    // check moved over, at version 1: the fingerprint column has no default,
    // so nothing is stored again until the migration drops it.
    let database = rusqlite::Connection::open(directory.path().join(DATABASE_FILE)).unwrap();
    database
        .execute_batch(
            "ALTER TABLE encounters RENAME TO encounters_now;
             ALTER TABLE meta RENAME TO meta_now;
             DROP TABLE claim_marks;
             DROP TABLE units;
             DROP TABLE groups;
             DROP TABLE totals;
             DROP TABLE measure_versions;
             DROP TABLE audit_trail;",
        )
        .unwrap();
    database.execute_batch(schema::MIGRATIONS[0]).unwrap();
    database
        .execute_batch(
            "INSERT INTO encounters SELECT encounter_id, patient_hash, x'00', provider_id,
                 service_date, claim, revision FROM encounters_now;
             INSERT INTO meta SELECT * FROM meta_now;
             DROP TABLE encounters_now;
             DROP TABLE meta_now;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    drop(database);

    let reopened = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    assert_eq!(met(&reopened, &measures).await, (1, 1));
    let recorded = reopened
        .record(vec![
            submission(visit(), false),
            submission(encounter("v1-row", &["99213", "1126F"]), false),
        ])
        .await
        .unwrap();
    assert_eq!(recorded, [Recorded::Duplicate, Recorded::Conflict]);
    assert_eq!(met(&reopened, &measures).await, (1, 1));
}

#[tokio::test]
async fn another_key_is_refused_and_newer_schemas_too() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    store.close().await;

    let other_key = StoreOptions {
        key: Some(PatientIdKey::from_hex(&"cd".repeat(32)).unwrap()),
        ..options(directory.path())
    };
    let refused = EncounterStore::open(other_key, measures.clone()).unwrap_err();
    assert!(matches!(refused, StoreError::KeyMismatch), "{refused}");

    let database = rusqlite::Connection::open(directory.path().join(DATABASE_FILE)).unwrap();
    database
        .pragma_update(None, "user_version", schema::SCHEMA_VERSION + 1)
        .unwrap();
    drop(database);
    let refused = EncounterStore::open(options(directory.path()), measures).unwrap_err();
    assert!(
        matches!(refused, StoreError::NewerSchema { .. }),
        "{refused}"
    );
}

#[tokio::test]
async fn nothing_of_the_patient_id_reaches_the_files() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    store
        .record(vec![submission(encounter("p1", &["99213"]), false)])
        .await
        .unwrap();
    store.close().await;

    for entry in std::fs::read_dir(directory.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let needle = b"MRN-STORE-TEST";
        assert!(!bytes.windows(needle.len()).any(|window| window == needle));
    }
}

#[tokio::test]
async fn of_stores_opening_one_new_directory_at_once_one_opens_and_the_rest_are_refused() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let openings: Vec<_> = (0..4)
        .map(|_| {
            let path = directory.path().to_path_buf();
            let measures = measures.clone();
            std::thread::spawn(move || EncounterStore::open(options(&path), measures))
        })
        .collect();
    let mut opened = Vec::new();
    for opening in openings {
        match opening.join().unwrap() {
            Ok(store) => opened.push(store),
            Err(StoreError::InUse { holder, .. }) => {
                // The winner may not have written its id yet when a loser
                // reads it (on a busy machine it often has not); what is
                // named must never be another process.
                assert!(
                    holder.is_none() || holder == Some(std::process::id()),
                    "{holder:?}"
                );
            }
            Err(error) => panic!("refused for another reason: {error}"),
        }
    }
    assert_eq!(
        opened.len(),
        1,
        "one store at a time may have the directory"
    );

    let store = opened.pop().unwrap();
    let batch = vec![submission(encounter("e1", &["99213", "1125F"]), false)];
    store.record(batch).await.unwrap();
    store.close().await;
    let reopened = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    assert_eq!(met(&reopened, &measures).await, (1, 1));
    reopened.close().await;
}

#[tokio::test]
async fn a_rebuild_counts_every_encounter_once() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    let rows: usize = 5_017;
    let batch = (0..rows)
        .map(|index| {
            let codes: &[&str] = if index % 3 == 0 {
                &["99213", "1125F"]
            } else {
                &["99213", "1125F-8P"]
            };
            submission(encounter(&format!("b{index}"), codes), false)
        })
        .collect();
    store.record(batch).await.unwrap();
    let before = met(&store, &measures).await;
    store.close().await;

    let reopened = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();

    assert_eq!(met(&reopened, &measures).await, before);
    assert_eq!(before, (rows.div_ceil(3) as i64, rows as i64));
}

#[tokio::test]
async fn a_new_database_another_process_is_writing_opens_once_it_commits() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    // Another process (an operator's sqlite3, say) is in the middle of a write
    // to the new database, in SQLite's default journal mode. SQLite refuses
    // the switch to WAL at once then, without waiting.
    let other = Connection::open(directory.path().join(DATABASE_FILE)).unwrap();
    other
        .execute_batch("CREATE TABLE other (x); BEGIN IMMEDIATE; INSERT INTO other VALUES (1);")
        .unwrap();
    let opening = {
        let path = directory.path().to_path_buf();
        let measures = measures.clone();
        std::thread::spawn(move || EncounterStore::open(options(&path), measures))
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    other.execute_batch("COMMIT").unwrap();
    drop(other);
    let store = opening
        .join()
        .unwrap()
        .expect("opens once the write is done");
    store.close().await;
}

#[tokio::test]
async fn reopening_under_more_measures_counts_past_encounters_under_them() {
    // A practice that starts loading a measure file after months of recording
    // finds the encounters it already stored counted under the new measures.
    let directory = tempfile::tempdir().unwrap();
    let built_in = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), built_in.clone()).unwrap();
    let diabetes_visit = |id: &str| {
        let mut visit = encounter(id, &["99213", "M1211"]);
        visit.claim.diagnoses = vec![Diagnosis::parse("E11.9").unwrap()];
        visit.claim.place_of_service = Some(PlaceOfService::parse("11").unwrap());
        visit
    };
    let batch = vec![
        submission(diabetes_visit("d1"), false),
        submission(diabetes_visit("d2"), false),
        submission(encounter("c1", &["99213", "1125F"]), false),
    ];
    store.record(batch).await.unwrap();
    store.close().await;

    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/measures/cms-shaped.json");
    let with_file =
        Arc::new(MeasureSet::load(&[fixture], crate::config::DEFAULT_MAX_DATA_FILE_BYTES).unwrap());
    let reopened = EncounterStore::open(options(directory.path()), with_file.clone()).unwrap();

    assert_eq!(counts_of(&reopened, &with_file, "001").await, (2, 2));
    assert_eq!(
        met(&reopened, &with_file).await,
        (1, 1),
        "built-in counts unchanged"
    );
    reopened.close().await;
}

/// `chunks` writes of 64 encounters each, all prepared first and then handed
/// over at once, as fast as an import can, so that they queue.
async fn queue_backlog(store: &EncounterStore, prefix: &str, chunks: usize) -> Vec<PendingWrite> {
    let prepared: Vec<Vec<PreparedRow>> = (0..chunks)
        .map(|chunk| {
            (0..64)
                .map(|row| {
                    let id = format!("{prefix}-{chunk}-{row}");
                    store.prepare(submission(encounter(&id, &["99213", "1125F"]), false))
                })
                .collect()
        })
        .collect();
    let mut pending = Vec::with_capacity(chunks);
    for rows in prepared {
        pending.push(store.submit(rows).await.unwrap());
    }
    pending
}

#[tokio::test]
async fn closing_commits_the_writes_queued_before_it() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    let chunks = queue_backlog(&store, "queued", 50).await;

    store.close().await;

    for chunk in chunks {
        assert_eq!(chunk.finish().await.unwrap().len(), 64);
    }
    let after_close = store.record(vec![submission(
        encounter("late", &["99213", "1125F"]),
        false,
    )]);
    assert!(matches!(after_close.await, Err(StoreError::Closed)));
    let reopened = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    assert_eq!(met(&reopened, &measures).await, (50 * 64, 50 * 64));
    reopened.close().await;
}

#[tokio::test]
async fn the_log_is_folded_into_the_database_file_while_the_store_is_open() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), measures.clone()).unwrap();
    let database = directory.path().join(DATABASE_FILE);
    let empty = std::fs::metadata(&database).unwrap().len();

    // Some 29,000 rows: a few thousand pages of log, past the mark at which a
    // commit asks for a checkpoint.
    for chunk in queue_backlog(&store, "folded", 450).await {
        chunk.finish().await.unwrap();
    }

    // Only a checkpoint writes rows into the database file itself, and the
    // store's hook has taken checkpointing away from SQLite's commits.
    let folded = async {
        while std::fs::metadata(&database).unwrap().len() < empty + 2_000_000 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), folded)
        .await
        .expect("the log was checkpointed into the database file while the store is open");
    store.close().await;
}

/// The nice value of each of this process's threads, by name (as the kernel
/// keeps it, cut to 15 bytes).
#[cfg(target_os = "linux")]
fn nice_by_thread_name() -> std::collections::HashMap<String, i64> {
    let mut nice_of = std::collections::HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let (Ok(name), Some(nice)) = (
            std::fs::read_to_string(task.join("comm")),
            crate::bulk_priority::nice_in(&task.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        nice_of.insert(name.trim().to_string(), nice);
    }
    nice_of
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_writer_and_the_checkpointer_run_at_the_priority_of_bulk_work() {
    let directory = tempfile::tempdir().unwrap();
    let measures = Arc::new(MeasureSet::built_in().unwrap());
    let store = EncounterStore::open(options(directory.path()), measures).unwrap();
    let bulk = i64::from(crate::bulk_priority::BULK_NICE);
    let expected = [("cptd-store-writ", bulk), ("cptd-store-chec", bulk)];
    // A thread takes its name and its priority once it runs, a moment after
    // the store opens.
    let mut seen = nice_by_thread_name();
    for _ in 0..500 {
        if expected
            .iter()
            .all(|(name, nice)| seen.get(*name) == Some(nice))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        seen = nice_by_thread_name();
    }
    for (name, nice) in expected {
        assert_eq!(seen.get(name), Some(&nice), "{name}: {seen:?}");
    }
    store.close().await;
}
