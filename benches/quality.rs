//! QualityMeasures under load, through the real server over loopback gRPC, with a
//! data directory on disk and `synchronous=FULL` (the default):
//!
//! - `ImportEncounters` throughput, and the raw SQLite insert rate of the same
//!   rows with the same settings (WAL, FULL, one prepared statement, 4096 rows
//!   per transaction) measured just before and just after it, as a ratio to
//!   their mean. The import's
//!   client sends messages encoded before the clock starts, as a load
//!   generator does, so that the cores it shares with the server go to the
//!   server;
//! - `RecordEncounter` latency (p50, p99) at 1, 16 and 64 concurrent callers,
//!   and of one caller alone and while an import runs, in three alternating
//!   rounds;
//! - `GetCode` p99 alone and while an import runs, in five alternating rounds;
//! - `GetPerformance` latency with 1,000,000 stored encounters, over gRPC and in
//!   process;
//! - start-up time to rebuild the totals from 1,000,000 encounters.
//!
//! Run with `cargo bench --bench quality` (set `CPTD_BENCH_ENCOUNTERS` to change
//! the 1,000,000; set `CPTD_BENCH_CALL_SCHEDULING=fair` to run the server's
//! call threads under the normal policy rather than in real time; set
//! `CPTD_BENCH_IMPORT_ONLY` to a number of rounds to measure only the import
//! ratio, that many times, and stop; set
//! `CPTD_BENCH_GET_CODE_ONLY` to a number of rounds to measure only `GetCode`
//! alone and during an import, that many times, and stop); the figures are in
//! `BENCHMARKS.md`. Each figure is one run on the machine at hand, not a
//! statistic over runs.

mod encounter_mix;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use cptd::{
    config::{CallScheduling, Config},
    measures::MeasureSet,
    pb::{
        self, code_lookup_client::CodeLookupClient, quality_measures_client::QualityMeasuresClient,
    },
    server,
    store::{Durability, EncounterStore, Location, PreparedRows, StoreOptions, Submission},
};
use encounter_mix::{PROVIDERS, domain_encounter, encounter};
use jiff::civil::date;
use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::{Channel, Endpoint};

const IMPORT_STREAM: usize = 100_000;
/// The store's writer thread, as the kernel names it (15 characters at most).
const WRITER_THREAD: &str = "cptd-store-writ";
/// The store's counting thread, likewise.
const COUNTER_THREAD: &str = "cptd-store-coun";
/// The store's checkpointing thread, likewise.
const CHECKPOINT_THREAD: &str = "cptd-store-chec";
/// The server runtime's threads (`server::runtime`), likewise.
const RUNTIME_THREADS: &str = "cptd-runtime";
/// The threads whose CPU an import's figures give one by one, and what each
/// is called there.
const THREADS_OF_AN_IMPORT: [(&str, &str); 5] = [
    (WRITER_THREAD, "the store's writer thread"),
    (COUNTER_THREAD, "its counting thread"),
    (CHECKPOINT_THREAD, "its checkpointing thread"),
    (IMPORT_THREADS, "the import threads"),
    (RUNTIME_THREADS, "the server's runtime"),
];
/// The threads that prepare imports, by the start of their names.
const IMPORT_THREADS: &str = "cptd-import-";
/// Rounds of `GetCode` alone and during an import.
const GET_CODE_ROUNDS: usize = 5;
/// Rounds of one caller's `RecordEncounter` alone and during an import.
const RECORD_DURING_IMPORT_ROUNDS: usize = 3;

/// What an import's client thread answers.
struct ImportSent {
    summary: pb::ImportEncountersResponse,
    /// From the first message sent to the summary.
    elapsed: Duration,
    /// CPU time of the client's thread over the same span.
    client_cpu: Option<Duration>,
}

struct Server {
    address: std::net::SocketAddr,
    quality: QualityMeasuresClient<Channel>,
    lookup: CodeLookupClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), server::ServerError>>>,
}

/// Starts the server on its own runtime and threads, as a separate process would
/// have, so the benchmark's clients do not share its workers.
async fn start(data_dir: &Path, calls: CallScheduling) -> Server {
    let mut config = Config::for_tests();
    config.in_memory = false;
    config.data_dir = data_dir.to_path_buf();
    config.max_concurrent_calls = 4096;
    config.request_timeout = Duration::from_secs(600);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = server::runtime(calls).expect("runtime");
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            server::run(listener, config, async move {
                let _ = stopped.await;
            })
            .await
        })
    });
    // Two connections, as two calling services would have: look-ups do not
    // queue behind an import's frames on one connection.
    let quality_channel = connect(address).await;
    let lookup_channel = connect(address).await;
    Server {
        address,
        quality: QualityMeasuresClient::new(quality_channel)
            .max_decoding_message_size(64 * 1024 * 1024),
        lookup: CodeLookupClient::new(lookup_channel),
        stop: Some(stop),
        thread: Some(thread),
    }
}

async fn connect(address: std::net::SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{address}")).expect("uri");
    loop {
        match endpoint.connect().await {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

impl Server {
    /// Sends an import as a separate calling service would: from a thread, a
    /// runtime and a connection of its own, so that the benchmark's look-up
    /// client does not wait behind the import's encoding on a shared runtime.
    /// Answers the summary, the time from the first message sent to it, and the
    /// CPU time the client's thread used.
    fn import_from_another_client(
        &self,
        messages: Vec<prost::bytes::Bytes>,
    ) -> std::thread::JoinHandle<ImportSent> {
        let address = self.address;
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime");
            runtime.block_on(async move {
                let channel = connect(address).await;
                let started = Instant::now();
                let cpu_before = this_threads_cpu_time();
                let summary = send_encoded(channel, messages).await;
                let elapsed = started.elapsed();
                let client_cpu = this_threads_cpu_time()
                    .zip(cpu_before)
                    .map(|(after, before)| after - before);
                ImportSent {
                    summary,
                    elapsed,
                    client_cpu,
                }
            })
        })
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take().expect("running");
        joined(thread).await.expect("clean stop");
    }
}

/// CPU time used so far by this process's threads whose name begins with
/// `thread`, or by all of them; from `/proc` (Linux), `None` elsewhere. Unlike throughput,
/// CPU time per encounter hardly moves with the machine's other load.
fn cpu_time(thread: Option<&str>) -> Option<Duration> {
    let ticks = match thread {
        None => stat_ticks("/proc/self/stat".into())?.1,
        Some(wanted) => std::fs::read_dir("/proc/self/task")
            .ok()?
            .filter_map(|task| stat_ticks(task.ok()?.path().join("stat")))
            .filter(|(name, _)| name.starts_with(wanted))
            .map(|(_, ticks)| ticks)
            .sum(),
    };
    Some(ticks_to_time(ticks))
}

/// CPU time used so far by the calling thread, as [`cpu_time`] reads it: for a
/// thread that ends before the figures are taken.
fn this_threads_cpu_time() -> Option<Duration> {
    Some(ticks_to_time(
        stat_ticks("/proc/thread-self/stat".into())?.1,
    ))
}

/// The name and the user plus system CPU ticks of a `/proc` stat file.
fn stat_ticks(path: std::path::PathBuf) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
    let numbers: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
    let ticks = numbers.get(11)?.parse::<u64>().ok()? + numbers.get(12)?.parse::<u64>().ok()?;
    Some((name.to_string(), ticks))
}

fn ticks_to_time(ticks: u64) -> Duration {
    let ticks_per_second = 100.0; // USER_HZ, fixed at 100 on Linux
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

/// Waits for one of the bench's threads without holding up this runtime.
async fn joined<T: Send + 'static>(thread: std::thread::JoinHandle<T>) -> T {
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .expect("joined")
        .expect("the thread ended without panicking")
}

/// Microseconds of CPU per row between two readings, as text.
fn cpu_per_row(before: Option<Duration>, after: Option<Duration>, rows: usize) -> String {
    match (before, after) {
        (Some(before), Some(after)) => format!("{:.1} us", micros(after - before) / rows as f64),
        _ => "n/a".into(),
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

async fn import(
    client: &mut QualityMeasuresClient<Channel>,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> pb::ImportEncountersResponse {
    let messages = messages(prefix, range);
    send(client, messages).await
}

/// The import messages, built before any timing starts so the figures measure
/// sending and serving, not the benchmark making up encounters.
fn messages(prefix: &str, range: std::ops::Range<usize>) -> Vec<pb::ImportEncountersRequest> {
    range
        .map(|index| pb::ImportEncountersRequest {
            encounter: Some(encounter(prefix, index)),
            replace: false,
        })
        .collect()
}

async fn send(
    client: &mut QualityMeasuresClient<Channel>,
    messages: Vec<pb::ImportEncountersRequest>,
) -> pb::ImportEncountersResponse {
    client
        .import_encounters(tokio_stream::iter(messages))
        .await
        .expect("import")
        .into_inner()
}

/// An import's messages encoded before the clock starts, each a slice of one
/// shared buffer. A caller on another machine spends none of this machine's
/// cores encoding them; h2load, behind the other load figures, likewise
/// sends bytes prepared in advance.
fn encoded(messages: Vec<pb::ImportEncountersRequest>) -> Vec<prost::bytes::Bytes> {
    use prost::Message;

    let lengths: Vec<usize> = messages.iter().map(Message::encoded_len).collect();
    let mut buffer = prost::bytes::BytesMut::with_capacity(lengths.iter().sum());
    for message in &messages {
        message.encode(&mut buffer).expect("room reserved");
    }
    let mut buffer = buffer.freeze();
    lengths
        .into_iter()
        .map(|length| buffer.split_to(length))
        .collect()
}

/// Writes messages encoded beforehand as they are; reads the summary with prost.
struct PreEncodedCodec;

impl tonic::codec::Codec for PreEncodedCodec {
    type Encode = prost::bytes::Bytes;
    type Decode = pb::ImportEncountersResponse;
    type Encoder = PreEncodedCodec;
    type Decoder = tonic_prost::ProstDecoder<pb::ImportEncountersResponse>;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

impl tonic::codec::Encoder for PreEncodedCodec {
    type Item = prost::bytes::Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        message: prost::bytes::Bytes,
        buffer: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;

        buffer.put(message);
        Ok(())
    }
}

/// `ImportEncounters` of messages encoded beforehand.
async fn send_encoded(
    channel: Channel,
    messages: Vec<prost::bytes::Bytes>,
) -> pb::ImportEncountersResponse {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("connection ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/cpt.v1.QualityMeasures/ImportEncounters",
    );
    grpc.client_streaming(
        tonic::Request::new(tokio_stream::iter(messages)),
        path,
        PreEncodedCodec,
    )
    .await
    .expect("import")
    .into_inner()
}

/// The raw rate: the same rows the store writes, inserted straight into an
/// identical table in `database` with the same pragmas. Each round adds rows
/// to the same table, as each round does to the store it is compared with.
fn raw_insert_rate(database: &Path, round: usize, rows: usize) -> f64 {
    let connection = rusqlite::Connection::open(database).expect("open");
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    connection
        .pragma_update(None, "synchronous", "FULL")
        .expect("full");
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS encounters (
                 encounter_id TEXT PRIMARY KEY NOT NULL, patient_hash BLOB NOT NULL,
                 provider_id TEXT NOT NULL,
                 service_date TEXT NOT NULL, claim TEXT NOT NULL, revision INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )
        .expect("schema");
    let claim = r#"{"place":"11","age":61,"sex":"F","codes":[{"code":"99213","units":1},{"code":"1125F","units":1},{"code":"0521F","units":1}],"diagnoses":["C50911","G893"]}"#;
    let prepared: Vec<(String, String, String)> = (0..rows)
        .map(|index| {
            let row = encounter(&format!("raw{round}"), index);
            (row.encounter_id, row.provider_id, row.service_date)
        })
        .collect();
    let mut connection = connection;
    let started = Instant::now();
    for chunk in prepared.chunks(4096) {
        let transaction = connection.transaction().expect("begin");
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO encounters (encounter_id, patient_hash, provider_id,
                     service_date, claim, revision) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                )
                .expect("prepare");
            for (id, provider, day) in chunk {
                insert
                    .execute(rusqlite::params![id, &[7u8; 32][..], provider, day, claim])
                    .expect("insert");
            }
        }
        transaction.commit().expect("commit");
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Opens the store in `directory` as the server does, off the runtime.
async fn open_store(directory: PathBuf, measures: &Arc<MeasureSet>) -> EncounterStore {
    let options = StoreOptions {
        location: Location::Directory(directory),
        durability: Durability::Full,
        key: None,
    };
    let measures = measures.clone();
    tokio::task::spawn_blocking(move || EncounterStore::open(options, measures))
        .await
        .expect("joined")
        .expect("store opens")
}

/// The store's own share of an import: rows already parsed, judged, hashed
/// and serialised (not timed) are handed to a store of their own in the
/// import's writes, and timed until every commit is answered. This is the rate
/// an import reaches where the machine has the cores to prepare rows as fast
/// as the writer takes them, so its ratio to the raw insert is the part of the
/// import ratio that the store alone decides. Each round adds to the same
/// store, and the raw insert it is compared with to a table of its own.
async fn measure_store_alone(directory: &Path, round: usize) {
    // As many rows a write as the import hands the writer.
    const WRITE_ROWS: usize = cptd::api::IMPORT_CHUNK;
    let raw = raw_insert_rate(&directory.join("raw-alone.sqlite3"), round, IMPORT_STREAM);
    let measures = Arc::new(MeasureSet::built_in().expect("built-in measures"));
    let store = open_store(directory.join("alone"), &measures).await;
    let writes: Vec<PreparedRows> = (0..IMPORT_STREAM)
        .collect::<Vec<_>>()
        .chunks(WRITE_ROWS)
        .map(|indices| {
            let submissions: Vec<Submission> = indices
                .iter()
                .map(|&index| {
                    let encounter = domain_encounter(&format!("alone{round}"), index);
                    Submission {
                        encounter,
                        replace: false,
                    }
                })
                .collect();
            store.prepare(&submissions)
        })
        .collect();
    let writer_before = cpu_time(Some(WRITER_THREAD));
    let started = Instant::now();
    let mut pending = Vec::with_capacity(writes.len());
    for write in writes {
        pending.push(store.submit_bulk(write).await.expect("queued"));
    }
    let mut stored = 0;
    for write in pending {
        stored += write.finish().await.expect("committed").len();
    }
    let rate = stored as f64 / started.elapsed().as_secs_f64();
    let writer_after = cpu_time(Some(WRITER_THREAD));
    assert_eq!(stored, IMPORT_STREAM);
    println!(
        "store alone (rows prepared beforehand): {rate:.0} rows/s; raw sqlite insert: {raw:.0} rows/s; ratio {:.2}; writer CPU per row {}",
        rate / raw,
        cpu_per_row(writer_before, writer_after, IMPORT_STREAM),
    );
    store.close().await;
}

/// An import of as many rows through the server as the raw SQLite insert
/// takes just before and again just after it, and the import's ratio to the
/// mean of the two, with the CPU each took per row. The raw rate drifts by half
/// from one minute to the next on a shared machine; timing it on both sides
/// puts the import against the rate of its own moment. Each raw insert has a
/// table of its own that grows by a round's rows each round, as the store does.
async fn measure_import_ratio(server: &Server, directory: &Path, round: usize) {
    let raw_cpu_before = cpu_time(None);
    let raw_before = raw_insert_rate(&directory.join("raw.sqlite3"), round, IMPORT_STREAM);
    let raw_cpu = cpu_per_row(raw_cpu_before, cpu_time(None), IMPORT_STREAM);
    let prepared = encoded(messages(&format!("imp{round}"), 0..IMPORT_STREAM));
    let threads = || {
        THREADS_OF_AN_IMPORT
            .map(|(thread, _)| cpu_time(Some(thread)))
            .to_vec()
    };
    let (process_before, threads_before) = (cpu_time(None), threads());
    let importing = server.import_from_another_client(prepared);
    let ImportSent {
        summary,
        elapsed,
        client_cpu,
    } = joined(importing).await;
    let import_rate = IMPORT_STREAM as f64 / elapsed.as_secs_f64();
    let (process_after, threads_after) = (cpu_time(None), threads());
    assert_eq!(summary.accepted as usize, IMPORT_STREAM);
    let raw_after = raw_insert_rate(&directory.join("raw-after.sqlite3"), round, IMPORT_STREAM);
    let raw = (raw_before + raw_after) / 2.0;
    println!(
        "import: {import_rate:.0} encounters/s; raw sqlite insert: {raw_before:.0} rows/s before, {raw_after:.0} after; ratio {:.2} to their mean ({:.2} to the one before)",
        import_rate / raw,
        import_rate / raw_before,
    );
    if let (Some(before), Some(after)) = (process_before, process_after) {
        // Against the machine's cores: near all of them means the import is
        // bound by CPU, and only less work a row can raise its rate.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!(
            "cores busy during the import: {:.2} of {cores}",
            (after - before).as_secs_f64() / elapsed.as_secs_f64()
        );
    }
    println!(
        "CPU per row: raw insert {raw_cpu}; import, whole process (client included) {}, of which the client's thread {}, {}",
        cpu_per_row(process_before, process_after, IMPORT_STREAM),
        cpu_per_row(Some(Duration::ZERO), client_cpu, IMPORT_STREAM),
        THREADS_OF_AN_IMPORT
            .iter()
            .zip(threads_before.into_iter().zip(threads_after))
            .map(|((_, role), (before, after))| {
                format!("{role} {}", cpu_per_row(before, after, IMPORT_STREAM))
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
}

/// `RecordEncounter` latencies of `callers` concurrent callers recording
/// `total` encounters in all, one after another each, named after `prefix`.
async fn record_latencies(
    client: &QualityMeasuresClient<Channel>,
    prefix: &str,
    callers: usize,
    total: usize,
) -> Vec<Duration> {
    let per_caller = total / callers;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let mut client = client.clone();
            let name = format!("{prefix}-{caller}");
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_caller);
                for index in 0..per_caller {
                    let request = pb::RecordEncounterRequest {
                        encounter: Some(encounter(&name, index)),
                        replace: false,
                    };
                    let started = Instant::now();
                    client.record_encounter(request).await.expect("recorded");
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for task in tasks {
        all.extend(task.await.expect("joined"));
    }
    all.sort();
    all
}

/// One caller's `RecordEncounter` alone, then while an import runs, in
/// alternating rounds: a billing system recording claims one by one while the
/// nightly import loads.
async fn measure_records_during_imports(server: &Server, rounds: usize) {
    for round in 0..rounds {
        let alone = record_latencies(&server.quality, &format!("ra{round}"), 1, 500).await;
        let background = server
            .import_from_another_client(encoded(messages(&format!("rd{round}"), 0..IMPORT_STREAM)));
        let during = record_latencies(&server.quality, &format!("rb{round}"), 1, 500).await;
        let still_running = !background.is_finished();
        joined(background).await;
        println!(
            "RecordEncounter round {round}, 1 caller: alone p50 {:.0} us, p99 {:.0} us; during an import p50 {:.0} us, p99 {:.0} us (import still running at the end: {still_running})",
            micros(percentile(&alone, 0.5)),
            micros(percentile(&alone, 0.99)),
            micros(percentile(&during, 0.5)),
            micros(percentile(&during, 0.99)),
        );
    }
}

async fn get_code_latencies(client: &mut CodeLookupClient<Channel>, calls: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        client
            .get_code(pb::GetCodeRequest {
                code: "64483".into(),
                as_of: String::new(),
            })
            .await
            .expect("get code");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    latencies
}

/// How the server schedules its call threads: in real time where this
/// process may, as `--call-scheduling realtime` asks, unless
/// `CPTD_BENCH_CALL_SCHEDULING=fair`.
fn server_call_scheduling() -> CallScheduling {
    let fair_asked = std::env::var("CPTD_BENCH_CALL_SCHEDULING").as_deref() == Ok("fair");
    if fair_asked || cptd::scheduling::realtime_is_permitted().is_err() {
        CallScheduling::Fair
    } else {
        CallScheduling::Realtime
    }
}

/// Whether the look-up client has moved into real time; see
/// [`look_ups_in_real_time`].
static LOOK_UPS_IN_REAL_TIME: AtomicBool = AtomicBool::new(false);

/// Moves the look-up client, this thread and its runtime's workers (at their
/// next park), into real time, where this process may; answers whether it
/// did. It then stands for a calling service on cores of its own: on two
/// shared cores a client at normal priority waits behind the server's import
/// for its own answers, and that wait is the machine's, not the server's.
/// Called once the import ratios are measured, since a real-time client
/// lowered them (session 12); threads started afterwards, such as later
/// imports' clients, begin normal.
fn look_ups_in_real_time() -> CallScheduling {
    match cptd::scheduling::run_this_thread_in_realtime() {
        Ok(()) => {
            LOOK_UPS_IN_REAL_TIME.store(true, Ordering::Relaxed);
            CallScheduling::Realtime
        }
        Err(_) => CallScheduling::Fair,
    }
}

/// The bench's own runtime, for the look-up client and the bench's
/// bookkeeping: short time slices, as the server's, and real time once
/// [`look_ups_in_real_time`] says so. Its threads are named apart from the
/// server's, so the server's runtime CPU is the server's alone.
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-client")
        .on_thread_start(cptd::scheduling::shorten_this_threads_slice)
        .on_thread_park(|| {
            if LOOK_UPS_IN_REAL_TIME.load(Ordering::Relaxed) {
                cptd::scheduling::keep_this_worker_in_realtime();
            }
        })
        .build()
        .expect("client runtime")
}

fn main() {
    // `block_on` runs the look-up client on this thread.
    cptd::scheduling::shorten_this_threads_slice();
    let calls = server_call_scheduling();
    println!("server's call scheduling: {calls:?}");
    client_runtime().block_on(measure_everything(calls));
}

/// `GetCode` alone, then while an import runs, in alternating rounds: the
/// machine's other load moves the tails from one second to the next, and
/// alternating puts both figures of a round in the same conditions. Each
/// round stores one more import.
async fn measure_get_code_during_imports(server: &mut Server, rounds: usize) {
    let calls = 2000;
    let (mut all_alone, mut all_during) = (Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let alone = get_code_latencies(&mut server.lookup, calls).await;
        let prepared = encoded(messages(&format!("bg{round}"), 0..IMPORT_STREAM));
        let background = server.import_from_another_client(prepared);
        let during = get_code_latencies(&mut server.lookup, calls).await;
        let still_running = !background.is_finished();
        joined(background).await;
        let ratio = micros(percentile(&during, 0.99)) / micros(percentile(&alone, 0.99));
        println!(
            "GetCode round {round}: p99 alone {:.0} us, during an import {:.0} us (import still running at the end: {still_running}); ratio {ratio:.2}",
            micros(percentile(&alone, 0.99)),
            micros(percentile(&during, 0.99)),
        );
        ratios.push(ratio);
        all_alone.extend(alone);
        all_during.extend(during);
    }
    all_alone.sort();
    all_during.sort();
    println!(
        "GetCode, all rounds: p50 alone {:.0} us, during {:.0} us; p99 alone {:.0} us, during an import {:.0} us; ratio {:.2}",
        micros(percentile(&all_alone, 0.5)),
        micros(percentile(&all_during, 0.5)),
        micros(percentile(&all_alone, 0.99)),
        micros(percentile(&all_during, 0.99)),
        micros(percentile(&all_during, 0.99)) / micros(percentile(&all_alone, 0.99)),
    );
    ratios.sort_by(f64::total_cmp);
    println!(
        "GetCode p99 ratio, median of the {rounds} rounds: {:.2}",
        ratios[ratios.len() / 2]
    );
}

async fn measure_everything(calls: CallScheduling) {
    let total: usize = std::env::var("CPTD_BENCH_ENCOUNTERS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let directory = tempfile::tempdir().expect("temp dir");
    println!("data directory on {}", directory.path().display());

    let rounds_of = |variable: &str| -> Option<usize> {
        std::env::var(variable)
            .ok()
            .and_then(|text| text.parse().ok())
    };
    let import_only_rounds = rounds_of("CPTD_BENCH_IMPORT_ONLY");
    let get_code_only_rounds = rounds_of("CPTD_BENCH_GET_CODE_ONLY");
    let data_dir = directory.path().join("cptd");
    let mut server = start(&data_dir, calls).await;
    let import_rounds = match (import_only_rounds, get_code_only_rounds) {
        (Some(rounds), _) => rounds,
        (None, Some(_)) => 0,
        (None, None) => 1,
    };
    for round in 0..import_rounds {
        measure_import_ratio(&server, directory.path(), round).await;
        measure_store_alone(directory.path(), round).await;
    }
    if import_only_rounds.is_some() {
        server.stop().await;
        return;
    }
    let mut stored = IMPORT_STREAM * import_rounds;
    let get_code_rounds = get_code_only_rounds.unwrap_or(GET_CODE_ROUNDS);
    println!("look-up client from here on: {:?}", look_ups_in_real_time());
    measure_get_code_during_imports(&mut server, get_code_rounds).await;
    stored += IMPORT_STREAM * get_code_rounds;
    if get_code_only_rounds.is_some() {
        server.stop().await;
        return;
    }

    for callers in [1, 16, 64] {
        let latencies =
            record_latencies(&server.quality, &format!("rec{callers}"), callers, 64 * 40).await;
        println!(
            "RecordEncounter, {callers} callers: p50 {:.0} us, p99 {:.0} us ({} calls)",
            micros(percentile(&latencies, 0.5)),
            micros(percentile(&latencies, 0.99)),
            latencies.len()
        );
    }

    measure_records_during_imports(&server, RECORD_DURING_IMPORT_ROUNDS).await;
    stored += IMPORT_STREAM * RECORD_DURING_IMPORT_ROUNDS;

    // Fill up to `total` stored encounters (the imports above hold `stored`).
    let mut next = 0;
    let fill_started = Instant::now();
    while stored + next < total {
        let end = (next + IMPORT_STREAM).min(total - stored);
        import(&mut server.quality, "fill", next..end).await;
        next = end;
    }
    println!(
        "filled to about {total} encounters in {:.1} s",
        fill_started.elapsed().as_secs_f64()
    );

    // The cheapest call, just before: on this machine a quiet spell and a
    // noisy one differ more in the transport's tail than any report costs.
    let baseline = get_code_latencies(&mut server.lookup, 2000).await;
    println!(
        "GetCode just before, for comparison: p50 {:.0} us, p99 {:.0} us",
        micros(percentile(&baseline, 0.5)),
        micros(percentile(&baseline, 0.99))
    );
    let request = pb::GetPerformanceRequest {
        measure_id: "pain-plan-of-care".into(),
        provider_id: String::new(),
        period_start: "2025-01-01".into(),
        period_end: "2025-12-31".into(),
    };
    let mut latencies = Vec::new();
    let mut report = pb::PerformanceReport::default();
    for _ in 0..2000 {
        let started = Instant::now();
        report = server
            .quality
            .get_performance(request.clone())
            .await
            .expect("report")
            .into_inner();
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "GetPerformance over gRPC, whole year, all providers ({} eligible): p50 {:.0} us, p99 {:.0} us",
        report.eligible,
        micros(percentile(&latencies, 0.5)),
        micros(percentile(&latencies, 0.99))
    );
    server.stop().await;

    // Start-up: open the store and rebuild the totals, as the server does.
    let measures = Arc::new(MeasureSet::built_in().expect("built-in measures"));
    let started = Instant::now();
    let store = open_store(data_dir.clone(), &measures).await;
    println!(
        "start-up rebuild of the totals: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let measure = measures.get("pain-plan-of-care").expect("built in");
    let mut latencies = Vec::new();
    for provider in (0..2000).map(|index| format!("npi-{:02}", index % PROVIDERS)) {
        let started = Instant::now();
        let report = store.report(
            measure,
            Some(&provider),
            date(2025, 1, 1),
            date(2025, 12, 31),
        );
        latencies.push(started.elapsed());
        std::hint::black_box(report);
    }
    latencies.sort();
    println!(
        "GetPerformance in process, whole year, one provider: p50 {:.1} us, p99 {:.1} us",
        micros(percentile(&latencies, 0.5)),
        micros(percentile(&latencies, 0.99))
    );
    store.close().await;
}
