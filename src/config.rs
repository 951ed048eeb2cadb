//! The server's configuration: one flag per setting, each with an environment
//! variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
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
    /// Check code-set files offline, laid over the built-in set in the order given,
    /// exactly as the server would load them; print every problem and exit non-zero
    /// if there is any.
    Check {
        /// The code-set files (CSV), in load order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// The server's settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "CPTD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Directory for the encounter store. Not used yet: encounter storage arrives
    /// with the QualityMeasures service.
    #[arg(long, env = "CPTD_DATA_DIR", default_value = "./cptd-data")]
    pub data_dir: PathBuf,

    /// Keep nothing on disk. Not used yet: encounter storage arrives with the
    /// QualityMeasures service.
    #[arg(long, env = "CPTD_IN_MEMORY")]
    pub in_memory: bool,

    /// Code-set file to lay over the built-in set (repeatable; later files over
    /// earlier ones). SIGHUP re-reads them all and swaps the registry atomically.
    #[arg(long = "codes", env = "CPTD_CODES", value_delimiter = ',')]
    pub code_files: Vec<PathBuf>,

    /// Extra measure-definition file to load (repeatable). Not supported yet:
    /// given, the server refuses to start rather than ignore it.
    #[arg(long = "measures", env = "CPTD_MEASURES", value_delimiter = ',')]
    pub measure_files: Vec<PathBuf>,

    /// Log line format.
    #[arg(long, env = "CPTD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Most calls served at once across all connections; calls beyond it are
    /// refused at once with RESOURCE_EXHAUSTED instead of queueing.
    #[arg(long, env = "CPTD_MAX_CONCURRENT_CALLS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_calls: u32,

    /// Longest time a call may run, whatever deadline the caller sets.
    #[arg(long, env = "CPTD_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// On SIGINT or SIGTERM, how long calls in flight may take to finish before the
    /// server exits anyway.
    #[arg(long, env = "CPTD_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl Config {
    /// The settings for a server started from code: defaults throughout, listening
    /// on an ephemeral loopback port.
    pub fn for_tests() -> Config {
        Cli::parse_from(["cptd", "--listen", "127.0.0.1:0"]).config
    }
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
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
