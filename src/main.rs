use std::process::ExitCode;

use clap::Parser;
use cptd::{
    codes::CodeRegistry,
    config::{Cli, Command, Config},
    measures::MeasureSet,
    server, shutdown, telemetry,
};

fn main() -> ExitCode {
    shutdown::ignore_file_size_limit_signal();
    let cli = Cli::parse();
    if let Some(Command::Check {
        files,
        measure_files,
    }) = cli.command
    {
        return check(&files, &measure_files);
    }
    telemetry::init(cli.config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cptd-runtime")
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(serve(cli.config)),
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            ExitCode::FAILURE
        }
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
    match server::run(listener, config, shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the server stopped");
            ExitCode::FAILURE
        }
    }
}

/// `cptd check`: the server's own loads, offline, reported on the terminal;
/// every file is checked, and any problem fails the whole check.
fn check(code_files: &[std::path::PathBuf], measure_files: &[std::path::PathBuf]) -> ExitCode {
    let codes_load = code_files.is_empty() || check_codes(code_files);
    let measures_load = measure_files.is_empty() || check_measures(measure_files);
    if codes_load && measures_load {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `cptd check FILE...`: the server's own code-set load, offline, reported on
/// the terminal. True when it loads.
fn check_codes(files: &[std::path::PathBuf]) -> bool {
    match CodeRegistry::load(files) {
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

/// `cptd check --measures FILE`: the server's own measure load, offline. True
/// when it loads.
fn check_measures(files: &[std::path::PathBuf]) -> bool {
    match MeasureSet::load(files) {
        Ok(measures) => {
            let all = measures.measures();
            let groups: usize = all.iter().map(|measure| measure.groups.len()).sum();
            println!(
                "ok: {} measures with {groups} option groups, the built-in ones included",
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
