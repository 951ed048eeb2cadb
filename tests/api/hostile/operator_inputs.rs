//! Defect 6: the operator's data files are read only when they are regular
//! files under `--max-data-file-size`; a device, a FIFO or an oversized file
//! is refused with a clear message, at start and at a reload, and the server
//! still stops on SIGTERM.

use std::{path::Path, process::Command};

use crate::binary::{ServerProcess, run_to_end};

const CODE_FILE: &str = "code,descriptor,short_name,synonyms,effective_date,deletion_date,\
                         replaced_by\n64483,Our own wording.,,,,,\n";

fn make_fifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("cannot run mkfifo");
    assert!(made.success(), "mkfifo failed");
}

/// Starts a server with `args` and returns its standard error once it exits,
/// asserting that it refused to start.
fn refused_start(args: &[&str]) -> String {
    let mut all = vec!["--listen", "127.0.0.1:0", "--in-memory"];
    all.extend_from_slice(args);
    let (status, _, stderr) = run_to_end(&all);
    assert!(!status.success(), "the server started: {stderr}");
    stderr
}

#[test]
fn an_endless_device_as_a_code_or_measure_file_is_refused_at_start() {
    for flag in ["--codes", "--measures"] {
        let stderr = refused_start(&[flag, "/dev/zero"]);

        assert!(stderr.contains("/dev/zero"), "{stderr}");
        assert!(stderr.contains("a device, not a regular file"), "{stderr}");
    }
}

#[test]
fn a_fifo_as_a_code_file_is_refused_at_start_without_waiting_for_a_writer() {
    let directory = tempfile::tempdir().unwrap();
    let fifo = directory.path().join("codes.csv");
    make_fifo(&fifo);

    let stderr = refused_start(&["--codes", fifo.to_str().unwrap()]);

    assert!(
        stderr.contains("a FIFO (named pipe), not a regular file"),
        "{stderr}"
    );
}

#[test]
fn a_code_file_over_the_size_limit_is_refused_naming_the_limit() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("codes.csv");
    std::fs::write(&file, CODE_FILE.repeat(40)).unwrap();

    let stderr = refused_start(&[
        "--codes",
        file.to_str().unwrap(),
        "--max-data-file-size",
        "1KiB",
    ]);

    assert!(stderr.contains("limit of 1024 bytes"), "{stderr}");
    assert!(stderr.contains("--max-data-file-size"), "{stderr}");
}

#[test]
fn a_reload_from_a_fifo_is_refused_and_sigterm_still_stops_the_server() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("codes.csv");
    std::fs::write(&file, CODE_FILE).unwrap();
    let mut server = ServerProcess::start(&["--codes", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    make_fifo(&file);

    // Act
    server.signal("HUP");
    let problem = server.wait_for_log(|line| line.contains("code-set problem"));
    server.wait_for_log(|line| line.contains("code set reload refused"));
    server.signal("TERM");
    let status = server.wait();

    // Assert
    assert!(problem.contains("not a regular file"), "{problem}");
    assert!(status.success(), "SIGTERM ends with exit 0, got {status}");
}
