use std::process::ExitCode;

use clap::Parser;
use cptd::{
    codes::CodeRegistry,
    config::{Cli, Command},
    memory, server, shutdown, telemetry,
};

fn main() -> ExitCode {
    memory::tune_allocator();
    shutdown::ignore_file_size_limit_signal();
    let cli = Cli::parse();
    if let Some(Command::Check { files }) = cli.command {
        return check(&files);
    }
    match server::runtime() {
        Ok(runtime) => runtime.block_on(serve(cli.config)),
        Err(error) => {
            eprintln!("cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: cptd::config::Config) -> ExitCode {
    telemetry::init(config.log_format);
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
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `cptd check`: the server's own load, offline, reported on the terminal.
fn check(files: &[std::path::PathBuf]) -> ExitCode {
    match CodeRegistry::load(files) {
        Ok(registry) => {
            println!(
                "ok: {} codes, registry version {}",
                registry.len(),
                registry.version()
            );
            ExitCode::SUCCESS
        }
        Err(refused) => {
            eprintln!("{refused}");
            ExitCode::FAILURE
        }
    }
}
