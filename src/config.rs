//! The server's configuration: one flag per setting, each with an environment
//! variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A secret given on the command line or in the environment. Its `Debug` hides
/// it, and it is read as any text, so that a malformed value is refused later
/// without being echoed the way a flag parser echoes invalid values.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

fn secret(text: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret(text.to_string()))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How each commit of the encounter store reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// Sync every commit before answering (SQLite synchronous=FULL).
    Full,
    /// Sync only at checkpoints (synchronous=NORMAL); see `--sync`.
    Normal,
}

/// cptd: procedure-code lookup, validation and search over gRPC. With no
/// subcommand, it serves.
#[derive(Debug, Clone, Parser)]
#[command(name = "cptd", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How to serve.
    #[command(flatten)]
    pub config: Config,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Check code-set files and measure files offline, exactly as the server would
    /// load them (code sets laid over the built-in set in the order given, measure
    /// files beside the built-in measures); print every problem and exit non-zero
    /// if there is any.
    Check {
        /// The code-set files (CSV), in load order.
        #[arg(required_unless_present_any = ["measure_files", "ncci_ptp", "mue", "add_on_edits", "pfs", "icd10cm"])]
        files: Vec<PathBuf>,

        /// A measure-definition file to check, as `--measures` loads it
        /// (repeatable).
        #[arg(long = "measures", value_delimiter = ',')]
        measure_files: Vec<PathBuf>,

        /// CMS claim-edit files to check, as the server loads them.
        #[command(flatten)]
        edit_files: EditFileArgs,
        /// Largest code-set or measure file read, as the server's flag.
        #[arg(long, env = "CPTD_MAX_DATA_FILE_SIZE", default_value = DEFAULT_MAX_DATA_FILE_SIZE, value_parser = parse_size)]
        max_data_file_size: u64,
    },
    /// Print the QPP Submissions API measurement set (JSON) of one provider
    /// and performance year from a data directory, as `ExportMeasurementSet`
    /// answers it, without a running server (stop the server first: a data
    /// directory is one process's at a time).
    Export {
        /// The billing TIN, nine digits.
        #[arg(long)]
        tin: String,
        /// The rendering NPI.
        #[arg(long)]
        npi: String,
        /// The performance year, e.g. 2025.
        #[arg(long)]
        year: i16,
        /// The data directory the server stores encounters in.
        #[arg(long, env = "CPTD_DATA_DIR", default_value = "./cptd-data")]
        data_dir: PathBuf,
        /// The measure files the server loads (repeatable), so that the same
        /// measures are counted.
        #[arg(long = "measures", env = "CPTD_MEASURES", value_delimiter = ',')]
        measure_files: Vec<PathBuf>,
        /// The patient-id key, when the server is given one rather than using
        /// the data directory's key file.
        #[arg(long = "patient-id-key", env = "CPTD_PATIENT_ID_KEY", hide_env_values = true, value_parser = secret)]
        patient_id_key: Option<Secret>,
        /// Largest measure file read, as the server's flag.
        #[arg(long, env = "CPTD_MAX_DATA_FILE_SIZE", default_value = DEFAULT_MAX_DATA_FILE_SIZE, value_parser = parse_size)]
        max_data_file_size: u64,
    },
    /// Ask a running server's gRPC health service whether it is serving, for
    /// container and service-manager probes: exit 0 when SERVING, 1 otherwise.
    Probe {
        /// The server's address.
        #[arg(long, default_value = "127.0.0.1:50051")]
        address: SocketAddr,
        /// CA certificate (PEM) to check the server's TLS certificate with;
        /// plain text without it.
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// The name the server's certificate is checked against.
        #[arg(long, default_value = "localhost")]
        tls_server_name: String,
        /// Longest wait for the answer.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Check the audit trail of a data directory from its first record and
    /// print the records written since a time, one JSON object per line;
    /// exit non-zero, naming the record, if any was edited, inserted or
    /// removed. Reads only: a server may be running on the directory.
    Audit {
        /// The data directory the server stores encounters in.
        #[arg(long, env = "CPTD_DATA_DIR", default_value = "./cptd-data")]
        data_dir: PathBuf,
        /// The PostgreSQL database the servers share, instead of a data
        /// directory.
        #[arg(long, env = "CPTD_DATABASE_URL", hide_env_values = true, value_parser = secret)]
        database_url: Option<Secret>,
        /// CA certificates (PEM) of the database's certificate, as the
        /// server's flag.
        #[arg(long, env = "CPTD_DATABASE_CA")]
        database_ca: Option<PathBuf>,
        /// Print the records written at or after this date (2026-12-01) or
        /// UTC time (2026-12-01T08:00:00Z); every record without it.
        #[arg(long, value_parser = parse_since)]
        since: Option<String>,
    },
}

/// The server's settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "CPTD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Directory for the encounter store (SQLite) and the patient-id key file;
    /// created, readable by its owner only, if missing.
    #[arg(long, env = "CPTD_DATA_DIR", default_value = "./cptd-data")]
    pub data_dir: PathBuf,

    /// Keep the encounters in this PostgreSQL database instead of SQLite in
    /// `--data-dir`, shared with every replica given the same URL, e.g.
    /// `postgres://cptd@db.internal/cptd`. Prefer the environment variable if
    /// the URL holds a password. Needs the patient-id key from
    /// CPTD_PATIENT_ID_KEY or `--patient-id-key-file`, the same on every
    /// replica.
    #[arg(long, env = "CPTD_DATABASE_URL", hide_env_values = true, value_parser = secret, conflicts_with = "in_memory")]
    pub database_url: Option<Secret>,

    /// Most connections this server opens to the PostgreSQL database, its
    /// writer's and its health check's included.
    #[arg(long, env = "CPTD_DATABASE_POOL_SIZE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(3..=1000))]
    pub database_pool_size: u32,

    /// Longest a statement may run on the PostgreSQL database before the
    /// database cancels it.
    #[arg(long, env = "CPTD_DATABASE_STATEMENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub database_statement_timeout: Duration,

    /// CA certificates (PEM) the PostgreSQL server's certificate must chain
    /// to; given, the connection is TLS (and verified) or nothing.
    #[arg(long, env = "CPTD_DATABASE_CA")]
    pub database_ca: Option<PathBuf>,

    /// Keep nothing on disk: encounters live in memory and are lost at exit.
    #[arg(long, env = "CPTD_IN_MEMORY")]
    pub in_memory: bool,

    /// How hard each commit of the encounter store tries to reach the disk.
    /// `full`: every answer waits until its write is on disk, so nothing answered
    /// is lost to a crash or a power cut. `normal`: faster; nothing answered is
    /// lost to a crash or kill of the process, but a power failure or operating
    /// system crash may lose the most recently answered encounters (the database
    /// itself stays intact).
    #[arg(long = "sync", env = "CPTD_SYNC", value_enum, default_value = "full")]
    pub sync: SyncMode,

    /// Refuse encounters that report a well-formed code the code set does not
    /// hold, instead of accepting them with a warning; for practices that load
    /// their full code set.
    #[arg(long, env = "CPTD_STRICT_CODES")]
    pub strict_codes: bool,

    /// Key of the patient-id hash, 64 hex digits. Prefer the environment
    /// variable: a flag shows in the process list. Without it, the key file in
    /// the data directory is used, and created on first start.
    #[arg(long = "patient-id-key", env = "CPTD_PATIENT_ID_KEY", hide_env_values = true, value_parser = secret)]
    pub patient_id_key: Option<Secret>,

    /// File holding the patient-id key as 64 hex digits (a mounted secret),
    /// instead of CPTD_PATIENT_ID_KEY.
    #[arg(
        long,
        env = "CPTD_PATIENT_ID_KEY_FILE",
        conflicts_with = "patient_id_key"
    )]
    pub patient_id_key_file: Option<PathBuf>,

    /// Code-set file to lay over the built-in set (repeatable; later files over
    /// earlier ones). SIGHUP re-reads them all and swaps the registry atomically.
    #[arg(long = "codes", env = "CPTD_CODES", value_delimiter = ',')]
    pub code_files: Vec<PathBuf>,

    /// Measure file to load besides the built-in measures (repeatable), in
    /// either shape CMS publishes: the claims single-source definitions (a JSON
    /// object keyed by measure id) or measures-data.json (a JSON array, for
    /// titles, isInverse, strata and overallAlgorithm); CMS's yearly files load
    /// unchanged. A file with any problem is refused whole, and the server does
    /// not start.
    #[arg(long = "measures", env = "CPTD_MEASURES", value_delimiter = ',')]
    pub measure_files: Vec<PathBuf>,

    /// The CMS claim-edit files `CheckClaim` uses instead of the built-in
    /// pain-management extracts.
    #[command(flatten)]
    pub edit_files: EditFileArgs,

    /// Log line format.
    #[arg(long, env = "CPTD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Most calls served at once across all connections; calls beyond it are
    /// refused at once with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(long, env = "CPTD_MAX_CONCURRENT_CALLS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,

    /// Most imports (`ImportEncounters` streams) running at once; one more is
    /// refused with RESOURCE_EXHAUSTED before any of it is read. One writer
    /// commits every import, so beyond a few none goes faster.
    #[arg(long, env = "CPTD_MAX_CONCURRENT_IMPORTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_imports: u32,

    /// Most reads of the encounter store running at once (reports, care
    /// gaps, encounters); more wait for a turn. Each holds a database
    /// connection with its own cache.
    #[arg(long, env = "CPTD_MAX_CONCURRENT_READS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_reads: u32,

    /// Longest time a call may run, whatever deadline the caller sets.
    #[arg(long, env = "CPTD_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// On SIGINT or SIGTERM, how long calls in flight may take to finish before the
    /// server exits anyway. A second signal ends the drain at once.
    #[arg(long, env = "CPTD_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Longest wait for a call's first request message after its headers, and
    /// for each next message of an import. A call takes its place among the
    /// `--max-concurrent-calls` only once its first message is in, so callers
    /// that send headers and stall hold no place; past this wait they are
    /// ended with DEADLINE_EXCEEDED.
    #[arg(long, env = "CPTD_MESSAGE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub message_timeout: Duration,

    /// Most client connections open at once; beyond it the server stops
    /// accepting until one closes (the kernel queues the rest).
    #[arg(long, env = "CPTD_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most calls open at once on one connection (HTTP/2
    /// SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "CPTD_MAX_STREAMS_PER_CONNECTION", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_connection: u32,

    /// A connection from which nothing has been read for this long is closed:
    /// sockets that never speak HTTP/2, or stopped answering. Live gRPC
    /// clients answer the server's keepalive pings, so keep this longer than
    /// `--keepalive-interval`.
    #[arg(long, env = "CPTD_CONNECTION_IDLE_TIMEOUT", default_value = "2m", value_parser = parse_duration)]
    pub connection_idle_timeout: Duration,

    /// How often the server pings each connection (HTTP/2 PING) to learn that
    /// its client is still there.
    #[arg(long, env = "CPTD_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub keepalive_interval: Duration,

    /// How long a ping may go unanswered before its connection is closed.
    #[arg(long, env = "CPTD_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub keepalive_timeout: Duration,

    /// Largest code-set, measure or claim-edit file read (`--codes`,
    /// `--measures`, `--ncci-ptp`, …), in bytes or with a unit (`256MiB`,
    /// `1GiB`); only regular files are read.
    #[arg(long, env = "CPTD_MAX_DATA_FILE_SIZE", default_value = DEFAULT_MAX_DATA_FILE_SIZE, value_parser = parse_size)]
    pub max_data_file_size: u64,
    /// Certificate chain (PEM, leaf first) to serve TLS with. SIGHUP re-reads
    /// it, the key and the client CA, for rotation without a restart.
    #[arg(long, env = "CPTD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of `--tls-cert`.
    #[arg(long, env = "CPTD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to: with it,
    /// every client needs a certificate (mutual TLS).
    #[arg(long, env = "CPTD_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Who may call what: a TOML file of callers, each with roles and a token
    /// hash or a certificate name (docs/operations.md). SIGHUP re-reads it.
    /// Without it, every caller may call everything, which only a loopback
    /// listener allows.
    #[arg(long, env = "CPTD_AUTH_POLICY")]
    pub auth_policy: Option<PathBuf>,

    /// With `--auth-policy`, health checks and reflection need the `reader`
    /// role too; by default they are open, for probes and load balancers.
    #[arg(long, env = "CPTD_AUTH_PROBES")]
    pub auth_probes: bool,

    /// Serve beyond loopback without TLS or without `--auth-policy`, e.g.
    /// behind a proxy that terminates TLS and checks callers. Logged at start.
    #[arg(long, env = "CPTD_ALLOW_INSECURE")]
    pub allow_insecure: bool,

    /// OTLP/gRPC collector to export a span per call to (e.g.
    /// `http://127.0.0.1:4317`), continuing the caller's W3C trace context;
    /// no export without it.
    #[arg(long, env = "CPTD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Address of a plain HTTP listener serving Prometheus metrics at
    /// `/metrics`; none without it.
    #[arg(long, env = "CPTD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// The CMS claim-edit files, each replacing the built-in extract of its kind.
/// A file with any problem is refused whole, naming its lines; SIGHUP reads
/// them all again.
#[derive(Debug, Clone, Default, Args)]
pub struct EditFileArgs {
    /// An NCCI practitioner procedure-to-procedure edit file, as CMS
    /// publishes it (tab-separated text); repeat for the quarter's parts.
    #[arg(long = "ncci-ptp", env = "CPTD_NCCI_PTP", value_delimiter = ',')]
    pub ncci_ptp: Vec<PathBuf>,

    /// The MUE practitioner services file (CMS's CSV).
    #[arg(long = "mue", env = "CPTD_MUE")]
    pub mue: Option<PathBuf>,

    /// The NCCI add-on code edit file (CSV: add_on_code, primary_code,
    /// edit_type).
    #[arg(long = "add-on-edits", env = "CPTD_ADD_ON_EDITS")]
    pub add_on_edits: Option<PathBuf>,

    /// The physician fee schedule relative value file (CMS's PPRRVU CSV).
    #[arg(long = "pfs", env = "CPTD_PFS")]
    pub pfs: Option<PathBuf>,

    /// The ICD-10-CM order file (CMS's fixed-width icd10cm_order_YYYY.txt).
    #[arg(long = "icd10cm", env = "CPTD_ICD10CM")]
    pub icd10cm: Option<PathBuf>,
}

impl EditFileArgs {
    /// The files as the claim domain takes them.
    pub fn to_edit_files(&self) -> crate::claims::EditFiles {
        crate::claims::EditFiles {
            ncci_ptp: self.ncci_ptp.clone(),
            mue: self.mue.clone(),
            add_on_edits: self.add_on_edits.clone(),
            pfs: self.pfs.clone(),
            icd10cm: self.icd10cm.clone(),
        }
    }

    /// True when no file is given.
    pub fn is_empty(&self) -> bool {
        self.to_edit_files() == crate::claims::EditFiles::default()
    }
}
/// The default of `--max-data-file-size`, as written on the command line:
/// comfortably above a full licensed code set (tens of MB as CSV) and CMS's
/// yearly measure files (a few MB).
const DEFAULT_MAX_DATA_FILE_SIZE: &str = "256MiB";

/// [`DEFAULT_MAX_DATA_FILE_SIZE`] in bytes, for loads started from code.
pub const DEFAULT_MAX_DATA_FILE_BYTES: u64 = 256 * 1024 * 1024;

impl Config {
    /// The settings for a server started from code: defaults throughout, listening
    /// on an ephemeral loopback port and keeping nothing on disk, except that a
    /// call may run for [`TEST_REQUEST_TIMEOUT`].
    pub fn for_tests() -> Config {
        Cli::parse_from([
            "cptd",
            "--listen",
            "127.0.0.1:0",
            "--in-memory",
            "--request-timeout",
            TEST_REQUEST_TIMEOUT,
        ])
        .config
    }
}

/// The call time limit of servers under test. Tests import tens of thousands of
/// encounters through unoptimised builds, on machines shared with other work;
/// the production default of 30 s cut such imports off. A test of the limit itself sets its own.
pub const TEST_REQUEST_TIMEOUT: &str = "5m";

/// A size in bytes, written bare (`1048576`) or with a binary unit (`KiB`,
/// `MiB`, `GiB`).
fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?} is not a size: write bytes or a number with KiB, MiB or GiB, like 256MiB"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|number| number.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a usable size"))
}

fn parse_since(text: &str) -> Result<String, String> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return Ok(date.to_string());
    }
    text.parse::<jiff::Timestamp>()
        .map(|time| time.to_string())
        .map_err(|_| {
            format!("{text:?} is neither a date (2026-12-01) nor a UTC time (2026-12-01T08:00:00Z)")
        })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: write it like 500ms, 10s or 2m"))?;
    Duration::try_from(span).map_err(|_| format!("{text:?} is not a usable duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("256MiB"), Ok(DEFAULT_MAX_DATA_FILE_BYTES));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("2 KiB"), Ok(2048));
        assert!(parse_size("10MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
