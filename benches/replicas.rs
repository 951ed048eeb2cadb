//! Several replicas on one PostgreSQL database, through the real release
//! server run as child processes:
//!
//! 1. One replica importing one stream of 100,000 encounters into SQLite
//!    (`--sync full`, a fresh data directory), then two replicas on one fresh
//!    PostgreSQL database importing one such stream each at the same time
//!    (disjoint encounters of the same patients). Guardrail: the two together
//!    store at least half as many encounters a second as the one into SQLite.
//! 2. The database filled to `CPTD_BENCH_ENCOUNTERS` through both replicas at
//!    once, then `GetPerformance` for calendar 2025 over all providers from
//!    the second replica, 2,000 calls one after another, p50 and p99, of the
//!    quality bench's two measures. Guardrail: p99 under 10 ms.
//!
//! Imports are sent by importer processes, as in the quality bench. Run with
//! `cargo bench --bench replicas`. Settings (environment):
//! `CPTD_BENCH_POSTGRES`, a PostgreSQL server on which databases may be made
//! and dropped (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! `CPTD_BENCH_ENCOUNTERS` (default 1,000,000); `CPTD_BENCH_PATIENTS`
//! (default 300,000). Each figure is one run on the machine at hand; the
//! figures are in `BENCHMARKS.md`.

// Shared with the quality bench, which uses the rest of them.
#[allow(dead_code)]
mod encounter_mix;
#[allow(dead_code)]
mod quality_processes;

use std::time::{Duration, Instant};

use cptd::pb::quality_measures_client::QualityMeasuresClient;
use quality_processes::{Import, Server, Store, connect, measure_performance, verdict};

/// Encounters in one import stream: the most one stream may hold.
const IMPORT_STREAM: usize = 100_000;

fn main() {
    if let Ok(job) = std::env::var(quality_processes::IMPORTER) {
        quality_processes::run_importer(&job);
        return;
    }
    let encounters = quality_processes::setting("CPTD_BENCH_ENCOUNTERS", 1_000_000);
    let patients = quality_processes::setting("CPTD_BENCH_PATIENTS", 300_000);
    let server = std::env::var("CPTD_BENCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(measure(&server, encounters, patients));
}

async fn measure(postgres: &str, encounters: usize, patients: usize) {
    let scratch = tempfile::tempdir().expect("temp dir");
    let data_dir = scratch.path().join("cptd-data");
    println!(
        "{} CPUs; each figure is one run; load average {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        load_average()
    );
    let (sqlite, _) = Server::start(
        Store::Directory(&data_dir),
        &scratch.path().join("sqlite.log"),
    )
    .await;
    let alone = Import::prepare(sqlite.address, 0, IMPORT_STREAM, patients).run();
    sqlite.stop().await;
    println!(
        "one replica into SQLite (--sync full), one stream of {IMPORT_STREAM}: {alone:.0} \
         encounters/s; load average {}",
        load_average()
    );

    let database = Database::create(postgres).await;
    let url = database.url();
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let log = scratch.path().join(format!("replica-{name}.log"));
        replicas.push(Server::start(Store::Postgres(&url), &log).await.0);
    }
    let (mut stored, rates, wall) = import_at_once(&replicas, 0, 2 * IMPORT_STREAM, patients);
    let together = stored as f64 / wall.as_secs_f64();
    println!(
        "two replicas into PostgreSQL at once, one stream of {IMPORT_STREAM} each: {together:.0} \
         encounters/s together (each stream {:.0} and {:.0}/s); / SQLite {:.2} (goal >= 0.5: \
         {}); load average {}",
        rates[0],
        rates[1],
        together / alone,
        verdict(together / alone >= 0.5),
        load_average()
    );

    let (filled, mut filling) = (stored, Duration::ZERO);
    while stored < encounters {
        let (count, _, wall) = import_at_once(&replicas, stored, encounters, patients);
        stored += count;
        filling += wall;
    }
    if stored > filled {
        println!(
            "fill to {stored} encounters, through both replicas at once: {:.0} encounters/s; \
             load average {}",
            (stored - filled) as f64 / filling.as_secs_f64(),
            load_average()
        );
    }
    let mut quality = QualityMeasuresClient::new(connect(replicas[1].address).await);
    measure_performance(&mut quality, Duration::from_millis(10)).await;
    drop(quality);
    for replica in replicas {
        replica.stop().await;
    }
}

/// Imports through every replica at once, each of one stream of up to
/// [`IMPORT_STREAM`] encounters from `first` on and before `end`: how many
/// were stored, each stream's rate, and the time from the start of the
/// first to the end of the last.
fn import_at_once(
    replicas: &[Server],
    first: usize,
    end: usize,
    patients: usize,
) -> (usize, Vec<f64>, Duration) {
    let mut imports = Vec::new();
    let mut next = first;
    for replica in replicas {
        let count = IMPORT_STREAM.min(end - next);
        if count > 0 {
            imports.push(Import::prepare(replica.address, next, count, patients));
            next += count;
        }
    }
    let started = Instant::now();
    imports.iter_mut().for_each(Import::start);
    let rates = imports.into_iter().map(Import::finish).collect();
    (next - first, rates, started.elapsed())
}

/// The machine's load averages over 1, 5 and 15 minutes.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split(' ').take(3).collect::<Vec<_>>().join(" ")
}

/// A database of the bench's own on the PostgreSQL server, dropped at the
/// end.
struct Database {
    server: String,
    name: String,
}

impl Database {
    async fn create(server: &str) -> Database {
        let name = format!("cptd_bench_{}", std::process::id());
        administer(server, &format!("CREATE DATABASE {name}")).await;
        Database {
            server: server.to_string(),
            name,
        }
    }

    /// The server's URL naming this database instead.
    fn url(&self) -> String {
        let (server, _) = self
            .server
            .rsplit_once('/')
            .expect("a URL ending in a database name");
        format!("{server}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let server = self.server.clone();
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(administer(&server, &statement))
        })
        .join();
    }
}

async fn administer(server: &str, statement: &str) {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at {server} is not reachable: {error}"));
    let connection = tokio::spawn(connection);
    client
        .batch_execute(statement)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
    drop(client);
    let _ = connection.await;
}
