//! Running the real `cptd` binary as a child process, for what only a process
//! shows: start-up refusals, signals, exit codes and log lines.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::helpers::HANG_GUARD;

/// The compiled `cptd` binary of this build.
pub const CPTD: &str = env!("CARGO_BIN_EXE_cptd");

/// A `cptd` process serving on an ephemeral port, its JSON log lines collected.
pub struct ServerProcess {
    child: Child,
    /// Where it serves.
    pub address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `cptd --listen 127.0.0.1:0 --log-format json --in-memory` plus
    /// `args` (which may give another `--listen`, or a `--data-dir` instead of
    /// memory), and waits for its `serving` line. Panics, with the log, when it
    /// does not come. In memory, since a data directory is one server's at a
    /// time and tests run side by side.
    pub fn start(args: &[&str]) -> ServerProcess {
        let mut command = Command::new(CPTD);
        // `args` may name another address, or a data directory.
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !args.contains(&"--data-dir") {
            command.arg("--in-memory");
        }
        command.args(args);
        ServerProcess::launch(command)
    }

    /// Starts `cptd --listen 127.0.0.1:0 --log-format json --data-dir
    /// data_dir` plus `args` under the usual umask (022), and waits for its
    /// `serving` line.
    pub fn start_storing_in(data_dir: &std::path::Path, args: &[&str]) -> ServerProcess {
        let mut command = Command::new("sh");
        command
            .args(["-c", "umask 022; exec \"$0\" \"$@\"", CPTD, "--data-dir"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        ServerProcess::launch(command)
    }

    /// Starts `command` (cptd, or a shell that execs it) with the log format
    /// of every test server added, and waits for its `serving` line.
    pub fn launch(mut command: Command) -> ServerProcess {
        let mut child = command
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .env("CPTD_REQUEST_TIMEOUT", cptd::config::TEST_REQUEST_TIMEOUT)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the cptd binary");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.lock().expect("log lock").push(line);
            }
        });
        let mut process = ServerProcess {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let serving = process.wait_for_log(|line| line.contains("\"serving\""));
        let address = json_field(&serving, "address").expect("the serving line names the address");
        process.address = address.parse().expect("the address parses");
        process
    }

    /// Waits until a log line satisfies `wanted` and returns it; panics with the
    /// whole log when none does within the hang guard.
    pub fn wait_for_log(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|line| wanted(line)) {
                return line;
            }
            // An exited process may still have lines in the pipe, so it gets the
            // same patience as a running one.
            let exited = self.child.try_wait().ok().flatten();
            assert!(
                Instant::now() < deadline,
                "the awaited log line never came (exit: {exited:?}); log:\n{}",
                self.log_lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Sends `signal` (e.g. `HUP`, `TERM`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit, within the hang guard.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for cptd") {
                return status;
            }
            assert!(Instant::now() < deadline, "cptd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The string value of `field` in a JSON log line.
pub fn json_field(line: &str, field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    value.get(field)?.as_str().map(str::to_string)
}

/// Runs `cptd` with `args` to completion and returns its exit status, stdout and
/// stderr.
pub fn run_to_end(args: &[&str]) -> (ExitStatus, String, String) {
    let output = Command::new(CPTD)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("cannot run the cptd binary");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
