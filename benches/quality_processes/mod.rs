//! The processes the quality bench runs beside itself: the release server,
//! and importers, which are the bench binary run again with [`IMPORTER`] set.
//! Separate processes share nothing with the bench's own client but the
//! machine, as calling services on one host would.

use std::{
    fs::File,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use cptd::pb::{self, quality_measures_client::QualityMeasuresClient};
use prost::bytes::{BufMut, Bytes, BytesMut};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::encounter_mix::encounter;

/// The measure files the server loads: the test fixtures in CMS's shapes.
const FIXTURE_MEASURES: [&str; 2] = [
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/measures/claims-2025.json"
    ),
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/measures/claims-2025-measures-data.json"
    ),
];

/// The variable that makes the bench binary an importer: the server's
/// address, the first encounter, how many, and of how many patients,
/// separated by spaces.
pub const IMPORTER: &str = "CPTD_BENCH_IMPORTER";

/// The store's log line that times its opening.
const STORE_OPENED: &str = "encounter store opened";

/// The whole number the environment variable `name` gives (`1,000,000` and
/// `1_000_000` read as `1000000`), or `default` without it.
pub fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |text| {
        text.replace([',', '_'], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number"))
    })
}

/// The patient-id key of servers on PostgreSQL, which need one given.
const BENCH_PATIENT_ID_KEY: &str =
    "6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c";

/// Where a server keeps its encounters.
#[derive(Clone, Copy)]
pub enum Store<'a> {
    /// SQLite in this data directory.
    Directory(&'a Path),
    /// The PostgreSQL database at this URL.
    Postgres(&'a str),
}

/// The release server, running as a child process.
pub struct Server {
    child: Child,
    pub address: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts the release server on `store`, logging to `log`; answers it
    /// and the time from starting the process to its first health check
    /// answered as serving.
    pub async fn start(store: Store<'_>, log: &Path) -> (Server, Duration) {
        let address = free_address();
        let started = Instant::now();
        let mut command = Command::new(env!("CARGO_BIN_EXE_cptd"));
        match store {
            Store::Directory(data_dir) => command.arg("--data-dir").arg(data_dir),
            Store::Postgres(url) => command
                .args(["--database-url", url])
                .env("CPTD_PATIENT_ID_KEY", BENCH_PATIENT_ID_KEY),
        };
        let child = command
            .arg("--listen")
            .arg(address.to_string())
            // The default 30 s per call is plenty for an import here, but not
            // on a machine busy with other work.
            .args(["--request-timeout", "5m", "--log-format", "json"])
            // CMS's patient measures beside the built-in visit ones.
            .args(
                FIXTURE_MEASURES
                    .iter()
                    .flat_map(|file| ["--measures", file]),
            )
            // No line per call, which would time the log file; the store's
            // line that says how long opening took.
            .env("RUST_LOG", "warn,cptd::store=info")
            .stdout(Stdio::null())
            .stderr(File::create(log).expect("server log file"))
            .spawn()
            .expect("start the release server");
        let mut server = Server {
            child,
            address,
            log: log.to_path_buf(),
        };
        server.wait_until_serving().await;
        (server, started.elapsed())
    }

    async fn wait_until_serving(&mut self) {
        let endpoint = Endpoint::from_shared(format!("http://{}", self.address)).expect("uri");
        loop {
            if let Some(status) = self.child.try_wait().expect("server status") {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("the server exited ({status}) before serving; its log:\n{log}");
            }
            // The port is bound before the store opens, so a connection made
            // early waits, and is answered as soon as the server serves.
            if let Ok(channel) = endpoint.connect().await {
                let mut health = HealthClient::new(channel);
                let check = health.check(HealthCheckRequest::default());
                if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_secs(1), check).await
                    && answer.into_inner().status == ServingStatus::Serving as i32
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How long the store took to open and rebuild its totals, by its log.
    pub fn store_opened_in(&self) -> Option<Duration> {
        let log = std::fs::read_to_string(&self.log).ok()?;
        log.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == STORE_OPENED)
            .and_then(|line| line["elapsed_ms"].as_u64())
            .map(Duration::from_millis)
    }

    /// Stops the server with SIGTERM, as an operator does; answers how long
    /// it took to exit. Waits without blocking the runtime, whose client
    /// connections must see the server's GOAWAY and close for it to exit
    /// before its shutdown grace runs out.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("server status") {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(status.success(), "the server exited with {status}");
        started.elapsed()
    }
}

impl Drop for Server {
    /// A bench that fails midway leaves no server behind, and shows how the
    /// server was then, its log's last lines, before its directory goes.
    fn drop(&mut self) {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "server {}: {}; the last lines of its log:\n{}",
                self.address,
                exited.map_or("still running".into(), |status| format!(
                    "exited ({status})"
                )),
                lines[lines.len().saturating_sub(20)..].join("\n")
            );
        }
    }
}

/// A loopback address whose port was free when asked.
fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}

/// A connection to the server at `address`, retried until it is up.
pub async fn connect(address: SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{address}")).expect("uri");
    loop {
        match endpoint.connect().await {
            Ok(channel) => break channel,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// An import sent by an importer process.
pub struct Import {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Import {
    /// Starts an importer of encounters `first..first + count` of `patients`
    /// patients, and returns once it has encoded them and connected.
    pub fn prepare(address: SocketAddr, first: usize, count: usize, patients: usize) -> Import {
        let mut child = Command::new(std::env::current_exe().expect("the bench binary"))
            .env(IMPORTER, format!("{address} {first} {count} {patients}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start an importer");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("importer output");
        assert_eq!(line.trim(), "ready", "the importer failed before sending");
        Import { child, stdout }
    }

    /// Tells the importer to send.
    pub fn start(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("piped");
        writeln!(stdin, "go").expect("tell the importer to send");
    }

    /// Whether the import is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("importer status").is_none()
    }

    /// Waits for the import to end; answers its encounters per second, from
    /// the first message sent to the summary received.
    pub fn finish(mut self) -> f64 {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("importer output");
        let status = self.child.wait().expect("importer exit");
        assert!(status.success(), "the importer failed: {status}");
        line.trim().parse().expect("the importer's rate")
    }

    /// Sends the import and waits for it to end; answers its rate.
    pub fn run(mut self) -> f64 {
        self.start();
        self.finish()
    }
}

/// The importer's side of [`Import`]: encodes its encounters, connects, says
/// `ready`, sends them all in one stream when told, checks that all were
/// stored, and prints the rate.
pub fn run_importer(job: &str) {
    let fields: Vec<&str> = job.split(' ').collect();
    let [address, first, count, patients] = fields[..] else {
        panic!("{IMPORTER}={job:?}: expected an address and three numbers");
    };
    let number = |text: &str| text.parse::<usize>().expect("a whole number");
    let (first, count, patients) = (number(first), number(count), number(patients));
    let address: SocketAddr = address.parse().expect("the server's address");
    let messages = encoded(
        (first..first + count).map(|index| pb::ImportEncountersRequest {
            encounter: Some(encounter(index, patients)),
            replace: false,
        }),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("importer runtime");
    runtime.block_on(async move {
        let mut grpc = tonic::client::Grpc::new(connect(address).await);
        grpc.ready().await.expect("connection ready");
        println!("ready");
        std::io::stdin()
            .read_line(&mut String::new())
            .expect("the word to send");
        let started = Instant::now();
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(
            "/cpt.v1.QualityMeasures/ImportEncounters",
        );
        let request = tonic::Request::new(tokio_stream::iter(messages));
        let summary = grpc
            .client_streaming(request, path, PreEncodedCodec)
            .await
            .expect("import")
            .into_inner();
        let elapsed = started.elapsed();
        assert_eq!(
            summary.accepted as usize,
            count,
            "not every encounter was stored: {} duplicates, {} rejected, first error {:?}",
            summary.duplicates,
            summary.rejected,
            summary.errors.first()
        );
        println!("{}", count as f64 / elapsed.as_secs_f64());
    });
}

/// The messages encoded, each a slice of one buffer.
fn encoded(messages: impl Iterator<Item = pb::ImportEncountersRequest>) -> Vec<Bytes> {
    use prost::Message;

    let messages: Vec<_> = messages.collect();
    let lengths: Vec<usize> = messages.iter().map(Message::encoded_len).collect();
    let mut buffer = BytesMut::with_capacity(lengths.iter().sum());
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
    type Encode = Bytes;
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
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        message: Bytes,
        buffer: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        buffer.put(message);
        Ok(())
    }
}

/// `GetPerformance` calls timed.
const PERFORMANCE_CALLS: usize = 2_000;

/// `GetPerformance` over everything stored, of a measure counted by visit
/// (one unit per patient and date) and one counted by patient (one unit per
/// patient and year): p50 and p99 of calls one after another, the p99
/// against `goal`.
pub async fn measure_performance(quality: &mut QualityMeasuresClient<Channel>, goal: Duration) {
    for measure_id in ["pain-plan-of-care", "047"] {
        let request = pb::GetPerformanceRequest {
            measure_id: measure_id.into(),
            period_start: "2025-01-01".into(),
            period_end: "2025-12-31".into(),
            ..Default::default()
        };
        let mut latencies = Vec::with_capacity(PERFORMANCE_CALLS);
        let mut report = pb::PerformanceReport::default();
        for _ in 0..PERFORMANCE_CALLS {
            let started = Instant::now();
            report = quality
                .get_performance(request.clone())
                .await
                .expect("report")
                .into_inner();
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let p99 = percentile(&latencies, 0.99);
        println!(
            "GetPerformance, {measure_id} ({}), 2025, all providers ({} units), \
             {PERFORMANCE_CALLS} calls: p50 {:.0} us, p99 {:.0} us (goal p99 < {goal:?}: {})",
            report.calculation_type,
            report.eligible_population,
            micros(percentile(&latencies, 0.5)),
            micros(p99),
            verdict(p99 < goal)
        );
    }
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

pub fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
