//! The server's configuration: one flag per setting, each with an environment
//! variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// cptd: procedure-code lookup, validation and search over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(name = "cptd", version, about)]
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

    /// Extra code-set file to load (repeatable). Not supported yet: given, the
    /// server refuses to start rather than ignore it.
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
        Config::parse_from(["cptd", "--listen", "127.0.0.1:0"])
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
        Config::command().debug_assert();
    }
}
