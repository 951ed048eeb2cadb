//! QualityMeasures through the real release server, run as a child process on
//! a data directory on disk with the default `--sync full`:
//!
//! 1. `ImportEncounters` of one stream of 100,000 encounters, against the raw
//!    SQLite insert of the same rows into a table of the store's shape (WAL,
//!    `synchronous=FULL`, one prepared statement, 4,096 rows a transaction)
//!    timed just before and just after it. Guardrails: at least 0.4 times the
//!    mean raw rate, at least 50,000 encounters/s, and at least half the rate
//!    before CMS counting.
//! 2. `GetCode` p50 and p99, one call after another, while 100,000
//!    encounters are imported, then alone for as many calls, in 5 alternating
//!    rounds. Guardrail: the median of the rounds' p99 ratios at most 2.5.
//! 3. The store filled to `CPTD_BENCH_ENCOUNTERS` (the imports above count),
//!    then `GetPerformance` for calendar 2025 over all providers, 2,000 calls
//!    one after another, p50 and p99; guardrail: p99 under 5 ms.
//! 4. The server stopped and started again on that data directory: how long
//!    until it answers a health check.
//!
//! Every import is sent by a separate process, as a calling service would
//! send it: this bench run again with `CPTD_BENCH_IMPORTER` set. It encodes
//! its messages before the clock starts, as a load generator does, so that
//! the cores it shares with the server go to the server.
//!
//! Run with `cargo bench --bench quality`. Settings (environment):
//! `CPTD_BENCH_ENCOUNTERS`, the encounters stored for step 3 (default
//! 1,000,000; steps 1 and 2 store 600,000 whatever it says);
//! `CPTD_BENCH_PATIENTS`, the patients they belong to (default 300,000);
//! `TMPDIR`, where the data directory goes (a real disk: the figures time its
//! syncs). Each figure is one run on the machine at hand, not a statistic
//! over runs; the figures are in `BENCHMARKS.md`.

mod encounter_mix;
// Shared with the replicas bench, which alone stores in PostgreSQL.
#[allow(dead_code)]
mod quality_processes;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use cptd::pb::{
    self, code_lookup_client::CodeLookupClient, quality_measures_client::QualityMeasuresClient,
};
use encounter_mix::{StoreRow, encounter, store_row};
use quality_processes::{
    Import, Server, Store, connect, measure_performance, micros, percentile, verdict,
};
use tonic::transport::Channel;

/// Encounters in one import stream: the most one stream may hold.
const IMPORT_STREAM: usize = 100_000;
/// Rounds of `GetCode` alone and during an import.
const GET_CODE_ROUNDS: usize = 5;
/// Encounters/s this bench imported at before claims were counted as CMS
/// counts them (at `1d61e87`, the issue-19 guardrail run in `BENCHMARKS.md`).
const RATE_BEFORE_CMS_COUNTING: u32 = 208_132;
/// Rows a transaction of the raw insert takes: as many as a commit of the
/// store's writer takes at most.
const RAW_ROWS_PER_TRANSACTION: usize = 4096;

fn main() {
    if let Ok(job) = std::env::var(quality_processes::IMPORTER) {
        quality_processes::run_importer(&job);
        return;
    }
    let encounters = quality_processes::setting("CPTD_BENCH_ENCOUNTERS", 1_000_000);
    let patients = quality_processes::setting("CPTD_BENCH_PATIENTS", 300_000);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(measure(encounters, patients));
}

async fn measure(encounters: usize, patients: usize) {
    let directory = tempfile::tempdir().expect("temp dir");
    let data_dir = directory.path().join("cptd-data");
    println!(
        "data directory {}, --sync full; {} CPUs; each figure is one run",
        data_dir.display(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let (server, _) = Server::start(
        Store::Directory(&data_dir),
        &directory.path().join("server-1.log"),
    )
    .await;
    let channel = connect(server.address).await;
    let mut lookup = CodeLookupClient::new(channel.clone());
    let mut quality = QualityMeasuresClient::new(channel);

    let mut stored = 0;
    measure_import(&server, directory.path(), &data_dir, patients);
    stored += IMPORT_STREAM;
    measure_get_code_during_imports(&server, &mut lookup, stored, patients).await;
    stored += GET_CODE_ROUNDS * IMPORT_STREAM;

    let (mut filled, mut sending) = (0, 0.0);
    while stored < encounters {
        let count = IMPORT_STREAM.min(encounters - stored);
        let rate = Import::prepare(server.address, stored, count, patients).run();
        sending += count as f64 / rate;
        stored += count;
        filled += count;
    }
    if filled > 0 {
        println!(
            "fill: {filled} more encounters in {sending:.1} s of sending ({:.0}/s); {stored} \
             stored, of {} patients",
            filled as f64 / sending,
            patients.min(stored),
        );
    }
    measure_performance(&mut quality, Duration::from_millis(5)).await;

    drop((lookup, quality));
    let stopped = server.stop().await;
    println!(
        "stop: {:.2} s (SIGTERM to exit, the log checkpointed); data directory {:.0} MB",
        stopped.as_secs_f64(),
        directory_bytes(&data_dir) as f64 / 1e6
    );
    let (server, serving_after) = Server::start(
        Store::Directory(&data_dir),
        &directory.path().join("server-2.log"),
    )
    .await;
    let store_opened = match server.store_opened_in() {
        Some(time) => format!("{:.2} s", time.as_secs_f64()),
        None => "not in its log".into(),
    };
    println!(
        "restart on {stored} encounters: serving after {:.2} s, of which opening the store \
         (with its migrations and any counting again) {store_opened}",
        serving_after.as_secs_f64(),
    );
    server.stop().await;
}

/// Step 1: one import, and the raw insert of the same rows before and after.
fn measure_import(server: &Server, scratch: &Path, data_dir: &Path, patients: usize) {
    let rows: Vec<StoreRow> = (0..IMPORT_STREAM)
        .map(|index| store_row(&encounter(index, patients)))
        .collect();
    let raw_before = raw_insert_rate(&scratch.join("raw-before.sqlite3"), &rows);
    let import_rate = Import::prepare(server.address, 0, IMPORT_STREAM, patients).run();
    let raw_after = raw_insert_rate(&scratch.join("raw-after.sqlite3"), &rows);
    check_rows_match_the_store(data_dir, &rows[..12]);
    let ratio = import_rate / ((raw_before + raw_after) / 2.0);
    println!(
        "ImportEncounters, one stream of {IMPORT_STREAM}: {import_rate:.0} encounters/s \
         (guardrails >= 50000: {}; >= half the {RATE_BEFORE_CMS_COUNTING} before CMS counting: {})",
        verdict(import_rate >= 50_000.0),
        verdict(import_rate >= RATE_BEFORE_CMS_COUNTING as f64 / 2.0)
    );
    println!(
        "raw SQLite insert of the same rows: {raw_before:.0} rows/s before, {raw_after:.0} after; \
         import / their mean {ratio:.2} (guardrail >= 0.4: {})",
        verdict(ratio >= 0.4)
    );
}

/// The rows inserted straight into a table of the store's shape (its
/// migrations' end state, `src/store/schema.rs`) with the store's pragmas, in
/// a database of their own; answers rows per second.
fn raw_insert_rate(database: &Path, rows: &[StoreRow]) -> f64 {
    let mut connection = rusqlite::Connection::open(database).expect("open");
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    connection
        .pragma_update(None, "synchronous", "FULL")
        .expect("full");
    connection
        .execute_batch(
            "CREATE TABLE encounters (
                 encounter_id TEXT PRIMARY KEY NOT NULL,
                 patient_hash BLOB NOT NULL,
                 provider_id TEXT NOT NULL,
                 service_date TEXT NOT NULL,
                 claim TEXT NOT NULL,
                 revision INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )
        .expect("schema");
    let started = Instant::now();
    for chunk in rows.chunks(RAW_ROWS_PER_TRANSACTION) {
        let transaction = connection.transaction().expect("begin");
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO encounters (encounter_id, patient_hash, provider_id,
                     service_date, claim, revision) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                )
                .expect("prepare");
            for row in chunk {
                insert
                    .execute(rusqlite::params![
                        row.encounter_id,
                        &row.patient_hash[..],
                        row.provider_id,
                        row.service_date,
                        row.claim
                    ])
                    .expect("insert");
            }
        }
        transaction.commit().expect("commit");
    }
    rows.len() as f64 / started.elapsed().as_secs_f64()
}

/// Fails unless the server stored exactly the claim text the raw insert
/// writes, so that both time rows of the same size.
fn check_rows_match_the_store(data_dir: &Path, rows: &[StoreRow]) {
    let connection = rusqlite::Connection::open_with_flags(
        data_dir.join(cptd::store::DATABASE_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the server's database");
    for row in rows {
        let stored: String = connection
            .query_row(
                "SELECT claim FROM encounters WHERE encounter_id = ?1",
                [&row.encounter_id],
                |found| found.get(0),
            )
            .expect("the imported row");
        assert_eq!(stored, row.claim, "the raw rows must be the store's rows");
    }
}

/// Step 2: `GetCode` during an import, then alone for as many calls, in
/// alternating rounds, so that the machine's other load, which moves tails
/// from one second to the next, weighs on both figures of a round alike.
async fn measure_get_code_during_imports(
    server: &Server,
    lookup: &mut CodeLookupClient<Channel>,
    mut stored: usize,
    patients: usize,
) {
    let mut ratios = Vec::new();
    for round in 1..=GET_CODE_ROUNDS {
        let mut import = Import::prepare(server.address, stored, IMPORT_STREAM, patients);
        import.start();
        let during = get_code_latencies(lookup, |_| import.running()).await;
        let import_rate = import.finish();
        stored += IMPORT_STREAM;
        let alone = get_code_latencies(lookup, |calls| calls < during.len()).await;
        let ratio = micros(percentile(&during, 0.99)) / micros(percentile(&alone, 0.99));
        println!(
            "GetCode round {round}, {} calls each: during an import ({import_rate:.0} \
             encounters/s) p50 {:.0} us, p99 {:.0} us; alone p50 {:.0} us, p99 {:.0} us; p99 \
             ratio {ratio:.2}",
            during.len(),
            micros(percentile(&during, 0.5)),
            micros(percentile(&during, 0.99)),
            micros(percentile(&alone, 0.5)),
            micros(percentile(&alone, 0.99)),
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "GetCode p99 during an import / alone, median of {GET_CODE_ROUNDS} rounds: {median:.2} \
         (guardrail <= 2.5: {})",
        verdict(median <= 2.5)
    );
}

/// Latencies of `GetCode` calls made one after another for as long as `more`
/// says, given the calls made so far; sorted.
async fn get_code_latencies(
    lookup: &mut CodeLookupClient<Channel>,
    mut more: impl FnMut(usize) -> bool,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while more(latencies.len()) {
        let request = pb::GetCodeRequest {
            code: "64483".into(),
            as_of: String::new(),
        };
        let started = Instant::now();
        let code = lookup.get_code(request).await.expect("get code");
        latencies.push(started.elapsed());
        assert_eq!(code.into_inner().code, "64483");
    }
    assert!(!latencies.is_empty(), "the import ended before any call");
    latencies.sort();
    latencies
}

fn directory_bytes(directory: &Path) -> u64 {
    std::fs::read_dir(directory)
        .expect("data directory")
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}
