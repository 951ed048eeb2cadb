use std::process::ExitCode;

use clap::Parser;
use cptd::{
    claims::ClaimEdits,
    codes::CodeRegistry,
    config::{Cli, Command, Config, EditFileArgs, Secret},
    measures::{MeasureSet, Tin},
    server, shutdown,
    store::{EncounterStore, PatientIdKey, PostgresOptions, StoreError, shared_audit_trail},
    telemetry,
};

fn main() -> ExitCode {
    shutdown::ignore_file_size_limit_signal();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check {
            files,
            measure_files,
            edit_files,
            max_data_file_size,
        }) => check(&files, &measure_files, &edit_files, max_data_file_size),
        Some(Command::Export {
            tin,
            npi,
            year,
            data_dir,
            measure_files,
            patient_id_key,
            max_data_file_size,
        }) => {
            let export = ExportArgs {
                tin,
                npi,
                year,
                data_dir,
                measure_files,
                patient_id_key,
                max_data_file_size,
            };
            match export.run() {
                Ok(json) => {
                    use std::io::Write;
                    // A reader that stops early (`| head`) is no failure.
                    let _ = writeln!(std::io::stdout(), "{json}");
                    ExitCode::SUCCESS
                }
                Err(refused) => {
                    eprintln!("cptd export: {refused}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Probe {
            address,
            tls_ca,
            tls_server_name,
            timeout,
        }) => match runtime() {
            Ok(runtime) => runtime.block_on(probe(address, tls_ca, tls_server_name, timeout)),
            Err(error) => {
                eprintln!("cptd probe: {error}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Audit {
            data_dir,
            database_url,
            database_ca,
            since,
        }) => audit(
            &data_dir,
            database_url.map(|url| shared_store(url, database_ca)),
            since.as_deref().unwrap_or(""),
        ),
        None => match runtime() {
            Ok(runtime) => {
                let exit = runtime.block_on(async {
                    let export = match telemetry::init(
                        cli.config.log_format,
                        cli.config.otlp_endpoint.as_deref(),
                    ) {
                        Ok(export) => export,
                        Err(error) => {
                            eprintln!("cptd: {error}");
                            return ExitCode::FAILURE;
                        }
                    };
                    let served = serve(cli.config).await;
                    if let Some(export) = export {
                        // Blocks while it sends the last spans.
                        tokio::task::block_in_place(|| export.shutdown());
                    }
                    served
                });
                // Anything still running on a blocking thread (a read that
                // outlived the drain) must not hold the exit.
                runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                exit
            }
            Err(error) => {
                eprintln!("cptd: cannot start the async runtime: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cptd-runtime")
        .build()
}

/// `cptd export`: the measurement set of one provider and year, offline.
struct ExportArgs {
    tin: String,
    npi: String,
    year: i16,
    data_dir: std::path::PathBuf,
    measure_files: Vec<std::path::PathBuf>,
    patient_id_key: Option<Secret>,
    max_data_file_size: u64,
}

impl ExportArgs {
    /// The measurement set as pretty JSON, or why not.
    fn run(self) -> Result<String, String> {
        let tin = Tin::parse(&self.tin).map_err(|error| format!("--tin: {error}"))?;
        let key = self
            .patient_id_key
            .map(|secret| PatientIdKey::from_hex(&secret.0))
            .transpose()
            .map_err(|rule| format!("the patient-id key is refused: {rule}"))?;
        let measures = MeasureSet::load(&self.measure_files, self.max_data_file_size)
            .map_err(|error| error.to_string())?;
        let store =
            EncounterStore::open_read_only(&self.data_dir, key, std::sync::Arc::new(measures))
                .map_err(|error| error.to_string())?;
        let runtime = runtime().map_err(|error| error.to_string())?;
        runtime.block_on(async {
            let set = store.measurement_set(&tin, &self.npi, self.year).await;
            store.close().await;
            set.map(|set| serde_json::to_string_pretty(&set).unwrap_or_default())
                .map_err(|error| error.to_string())
        })
    }
}

async fn serve(config: Config) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(address = %config.listen, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let (shutdown, cut_drain_short) = shutdown::signals();
    match server::run_until(listener, config, shutdown, cut_drain_short).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the server stopped");
            ExitCode::FAILURE
        }
    }
}

/// `cptd probe`: one health check of a running server.
async fn probe(
    address: std::net::SocketAddr,
    tls_ca: Option<std::path::PathBuf>,
    server_name: String,
    timeout: std::time::Duration,
) -> ExitCode {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let check = async {
        let endpoint = match &tls_ca {
            None => Endpoint::from_shared(format!("http://{address}"))?,
            Some(ca) => {
                let ca = std::fs::read(ca)?;
                Endpoint::from_shared(format!("https://{address}"))?.tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca))
                        .domain_name(server_name),
                )?
            }
        };
        let channel = endpoint.timeout(timeout).connect().await?;
        let answer = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(answer.into_inner().status())
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            println!("{}", status.as_str_name());
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("cptd probe: {address}: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("cptd probe: {address}: no answer within {timeout:?}");
            ExitCode::FAILURE
        }
    }
}

/// The shared database `url` names, reached as a server reaches it.
fn shared_store(url: Secret, ca_file: Option<std::path::PathBuf>) -> PostgresOptions {
    PostgresOptions {
        url: url.0,
        pool_size: 1,
        statement_timeout: std::time::Duration::from_secs(300),
        ca_file,
    }
}

/// `cptd audit`: the audit trail of the data directory, or of the shared
/// database when given one, checked whole; the records since `since`
/// printed as JSON lines.
fn audit(data_dir: &std::path::Path, shared: Option<PostgresOptions>, since: &str) -> ExitCode {
    use std::io::Write;
    let trail = match &shared {
        None => EncounterStore::audit_trail(data_dir, since),
        Some(options) => runtime()
            .map_err(|error| StoreError::Io {
                path: data_dir.to_path_buf(),
                error,
            })
            .and_then(|runtime| runtime.block_on(shared_audit_trail(options, since))),
    };
    let source = match &shared {
        None => data_dir.display().to_string(),
        Some(_) => "the shared database".to_string(),
    };
    match trail {
        Ok(Ok(records)) => {
            let mut out = std::io::stdout().lock();
            for record in records {
                let line = serde_json::to_string(&record).unwrap_or_default();
                // A reader that stops early (`| head`) is no failure.
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
            ExitCode::SUCCESS
        }
        Ok(Err(broken)) => {
            eprintln!("cptd audit: {broken}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("cptd audit: {source}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `cptd check`: the server's own loads, offline, reported on the terminal;
/// every file is checked, and any problem fails the whole check.
fn check(
    code_files: &[std::path::PathBuf],
    measure_files: &[std::path::PathBuf],
    edit_files: &EditFileArgs,
    max_file_bytes: u64,
) -> ExitCode {
    let codes_load = code_files.is_empty() || check_codes(code_files, max_file_bytes);
    let measures_load = measure_files.is_empty() || check_measures(measure_files, max_file_bytes);
    let edits_load = edit_files.is_empty() || check_edits(edit_files, max_file_bytes);
    if codes_load && measures_load && edits_load {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `cptd check FILE...`: the server's own code-set load, offline, reported on
/// the terminal. True when it loads.
fn check_codes(files: &[std::path::PathBuf], max_file_bytes: u64) -> bool {
    match CodeRegistry::load(files, max_file_bytes) {
        Ok(registry) => {
            println!(
                "ok: {} codes, registry version {}",
                registry.len(),
                registry.version()
            );
            true
        }
        Err(refused) => {
            eprintln!("{refused}");
            false
        }
    }
}

/// `cptd check --ncci-ptp FILE …`: the server's own claim-edit load,
/// offline. True when it loads.
fn check_edits(files: &EditFileArgs, max_file_bytes: u64) -> bool {
    match ClaimEdits::load(&files.to_edit_files(), max_file_bytes) {
        Ok(edits) => {
            println!(
                "ok: {} PTP pairs, {} MUEs, {} add-on codes, {} fee-schedule codes, {} ICD-10-CM codes ({})",
                edits.ptp.len(),
                edits.mue.len(),
                edits.add_ons.len(),
                edits.pfs.len(),
                edits.icd10cm.len(),
                edits.version()
            );
            true
        }
        Err(refused) => {
            eprintln!("{refused}");
            false
        }
    }
}

/// `cptd check --measures FILE`: the server's own measure load, offline. True
/// when it loads.
fn check_measures(files: &[std::path::PathBuf], max_file_bytes: u64) -> bool {
    match MeasureSet::load(files, max_file_bytes) {
        Ok(measures) => {
            let all = measures.measures();
            let strata: usize = all.iter().map(|measure| measure.strata.len()).sum();
            println!(
                "ok: {} measures with {strata} strata, the built-in ones included",
                all.len()
            );
            true
        }
        Err(refused) => {
            eprintln!("{refused}");
            false
        }
    }
}
