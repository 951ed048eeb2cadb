//! The real `cptd` binary with a data directory: `kill -9` in the middle of an
//! import, also while its log is being checkpointed into the database file,
//! loses nothing that was answered and counts nothing twice, the
//! patient id appears in no log line (at any level) and in no file, writes
//! that fail on disk are refused whole and recorded once when sent again, and
//! a second server is kept out of a directory in use.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use cptd::pb::{self, quality_measures_client::QualityMeasuresClient};

use crate::{
    cms_counting::{reports, workload},
    helpers::{HANG_GUARD, connect},
    quality_fixtures::{ImportCall, cancer_visit, import, import_all, open_import, record},
};

/// A patient id that must never be seen outside a request.
const CANARY: &str = "PHI-CANARY-5b1e7d";

/// A `cptd` process logging everything (`RUST_LOG=trace`) as JSON lines.
struct Cptd {
    child: Child,
    address: SocketAddr,
}

impl Cptd {
    fn start(data_dir: &Path, log: Arc<Mutex<Vec<String>>>) -> Cptd {
        Cptd::spawn(Cptd::command(data_dir), log)
    }

    /// The command that runs cptd on `data_dir`, to adjust before [`Cptd::spawn`].
    fn command(data_dir: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cptd"));
        command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "trace")
            .env("CPTD_REQUEST_TIMEOUT", cptd::config::TEST_REQUEST_TIMEOUT)
            .env_remove("CPTD_PATIENT_ID_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    fn spawn(mut command: Command, log: Arc<Mutex<Vec<String>>>) -> Cptd {
        // The log is shared across restarts; this run's lines start here.
        let first_line = log.lock().expect("log lock").len();
        let mut child = command.spawn().expect("cannot start cptd");
        let stderr = child.stderr.take().expect("piped");
        let collected = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.lock().expect("log lock").push(line);
            }
        });
        let deadline = Instant::now() + HANG_GUARD;
        let address = loop {
            let serving = log
                .lock()
                .expect("log lock")
                .iter()
                .skip(first_line)
                .find(|line| line.contains("\"serving\""))
                .cloned();
            if let Some(line) = serving {
                let value: serde_json::Value = serde_json::from_str(&line).expect("json log");
                let address = value["address"]
                    .as_str()
                    .expect("address field")
                    .to_string();
                break address.parse().expect("a socket address");
            }
            assert!(
                Instant::now() < deadline,
                "cptd did not start: {:?}",
                log.lock()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Cptd { child, address }
    }

    async fn client(&self) -> QualityMeasuresClient<tonic::transport::Channel> {
        QualityMeasuresClient::new(connect(self.address).await)
    }

    fn kill_hard(&mut self) {
        // SIGKILL: no shutdown code runs.
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }

    fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + HANG_GUARD;
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "cptd did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cptd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn canary_visit(id: &str, codes: &str) -> pb::Encounter {
    pb::Encounter {
        patient_id: CANARY.into(),
        ..cancer_visit(id, codes)
    }
}

async fn eligible(client: &mut QualityMeasuresClient<tonic::transport::Channel>) -> i64 {
    client
        .get_performance(crate::quality_fixtures::performance(
            "pain-intensity-quantified",
        ))
        .await
        .expect("GetPerformance")
        .into_inner()
        .eligible_population
}

/// Kills `server` with `kill -9` once it counts more than `counted` eligible
/// encounters, and checks that `open_import` never got its summary.
async fn kill_once_counted(
    server: &mut Cptd,
    client: &mut QualityMeasuresClient<tonic::transport::Channel>,
    counted: i64,
    open_import: ImportCall,
) {
    let deadline = Instant::now() + HANG_GUARD;
    while eligible(client).await <= counted {
        assert!(
            Instant::now() < deadline,
            "the open import was never committed past {counted}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill_hard();
    assert!(
        open_import.await.expect("joined").is_err(),
        "the import never got a summary"
    );
}

/// The encounters in the database file, once `PRAGMA integrity_check` has
/// found it whole.
fn stored_in_whole_database(database: &Path) -> i64 {
    let connection = rusqlite::Connection::open(database).expect("open the database");
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    connection
        .query_row("SELECT count(*) FROM encounters", [], |row| row.get(0))
        .expect("count")
}

fn files_under(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).expect("readable data dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_import_keeps_every_answered_encounter_once_and_no_phi_leaks() {
    let data = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(Mutex::new(Vec::new()));

    // Arrange: a first import, answered, and unary records, answered.
    let mut server = Cptd::start(data.path(), log.clone());
    let mut client = server.client().await;
    let first: Vec<pb::Encounter> = (0..300)
        .map(|index| canary_visit(&format!("first-{index}"), "99213 1125F"))
        .collect();
    let summary = import_all(&mut client, first.iter().cloned().map(import).collect()).await;
    assert_eq!(summary.accepted, 300);
    let mut acknowledged = first;
    for index in 0..10 {
        let encounter = canary_visit(&format!("unary-{index}"), "99213 1126F");
        client
            .record_encounter(record(encounter.clone()))
            .await
            .expect("recorded");
        acknowledged.push(encounter);
    }
    // A refused encounter carrying the canary, so errors are checked too.
    let refused = client
        .record_encounter(record(canary_visit("refused", "99213-8P")))
        .await
        .unwrap_err();
    assert!(!refused.message().contains(CANARY));

    // Act: a second import left open mid-stream, then kill -9 once part of it is
    // committed.
    let (sender, call) = open_import(&client);
    for index in 0..2000 {
        let message = import(canary_visit(&format!("second-{index}"), "99213 1125F"));
        sender.send(message).await.expect("the stream is open");
    }
    kill_once_counted(&mut server, &mut client, 310, call).await;
    drop(sender);

    // Assert: after a restart, every answered encounter is there, once.
    let mut server = Cptd::start(data.path(), log.clone());
    let mut client = server.client().await;
    let stored = stored_in_whole_database(&data.path().join("encounters.sqlite3"));
    assert!(
        stored > 310,
        "part of the second import is stored ({stored})"
    );
    assert_eq!(
        eligible(&mut client).await,
        stored,
        "each stored encounter counts once"
    );
    let resent = import_all(
        &mut client,
        acknowledged.iter().cloned().map(import).collect(),
    )
    .await;
    assert_eq!(resent.duplicates, acknowledged.len() as i64);
    assert_eq!((resent.accepted, resent.rejected), (0, 0));
    assert_eq!(eligible(&mut client).await, stored);
    server.stop();

    // No log line at any level, and no file, holds the patient id.
    let lines = log.lock().expect("log lock").clone();
    assert!(
        lines.len() > 100,
        "trace logging was on ({} lines)",
        lines.len()
    );
    let leaked: Vec<&String> = lines.iter().filter(|line| line.contains(CANARY)).collect();
    assert!(leaked.is_empty(), "the patient id was logged: {leaked:?}");
    let files = files_under(data.path());
    assert!(
        files
            .iter()
            .any(|file| file.ends_with("encounters.sqlite3"))
    );
    for file in files {
        let bytes = std::fs::read(&file).expect("readable file");
        let found = bytes
            .windows(CANARY.len())
            .any(|window| window == CANARY.as_bytes());
        assert!(!found, "{} holds the patient id", file.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_the_log_is_checkpointed_beside_an_import_keeps_every_answered_encounter() {
    let data = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(Mutex::new(Vec::new()));
    let database = data.path().join("encounters.sqlite3");

    // Arrange: an import large enough that its log is checkpointed into the
    // database file, answered.
    let mut server = Cptd::start(data.path(), log.clone());
    let mut client = server.client().await;
    let first: Vec<pb::Encounter> = (0..20_000)
        .map(|index| cancer_visit(&format!("folded-{index}"), "99213 1125F"))
        .collect();
    let summary = import_all(&mut client, first.iter().cloned().map(import).collect()).await;
    assert_eq!(summary.accepted, 20_000);
    let size = || std::fs::metadata(&database).map_or(0, |metadata| metadata.len());
    let deadline = Instant::now() + HANG_GUARD;
    while size() < 2_000_000 {
        assert!(Instant::now() < deadline, "the log was never checkpointed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Act: another import streams on, committing and being checkpointed, and
    // the server is killed in the middle of it.
    let (sender, call) = open_import(&client);
    let feeding = tokio::spawn(async move {
        for index in 0..100_000 {
            let message = import(cancer_visit(&format!("streaming-{index}"), "99213 1125F"));
            if sender.send(message).await.is_err() {
                break;
            }
        }
    });
    kill_once_counted(&mut server, &mut client, 30_000, call).await;
    feeding.await.expect("joined");

    // Assert: the database is whole, and counts what it holds, once; the
    // answered import is all there.
    let mut server = Cptd::start(data.path(), log);
    let mut client = server.client().await;
    let stored = stored_in_whole_database(&database);
    assert!(
        stored >= 30_000,
        "what was counted before the kill is stored"
    );
    assert_eq!(eligible(&mut client).await, stored);
    let resent = import_all(&mut client, first.into_iter().map(import).collect()).await;
    assert_eq!(
        (resent.duplicates, resent.accepted, resent.rejected),
        (20_000, 0, 0)
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_file_is_private_and_a_different_key_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut server = Cptd::start(data.path(), log.clone());
    server.stop();

    let key = data.path().join("patient-id.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key)
        .expect("the key file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let output = Command::new(env!("CARGO_BIN_EXE_cptd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("CPTD_PATIENT_ID_KEY", "ab".repeat(32))
        .output()
        .expect("run cptd");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("patient-id key differs"), "{stderr}");
    assert!(
        !stderr.contains(&"ab".repeat(32)),
        "the key was logged: {stderr}"
    );

    let malformed = "SECRET-not-hex-key";
    let output = Command::new(env!("CARGO_BIN_EXE_cptd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("CPTD_PATIENT_ID_KEY", malformed)
        .output()
        .expect("run cptd");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("64 hex digits"), "{stderr}");
    assert!(!stderr.contains(malformed), "the key was echoed: {stderr}");
}

#[tokio::test]
async fn a_second_server_on_a_running_servers_directory_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut first = Cptd::start(data.path(), log.clone());

    let output = Command::new(env!("CARGO_BIN_EXE_cptd"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env_remove("CPTD_PATIENT_ID_KEY")
        .output()
        .expect("run cptd");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("in use by another running cptd"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("(process {})", first.child.id())),
        "the holder is not named: {stderr}"
    );

    // The first server is unharmed, and its directory is free once it stops.
    let mut client = first.client().await;
    client
        .record_encounter(record(cancer_visit("after-refusal", "99213 1125F")))
        .await
        .expect("the first server still records");
    first.stop();
    let second = Cptd::start(data.path(), log);
    let mut client = second.client().await;
    assert_eq!(eligible(&mut client).await, 1);
}

/// The soft file-size limit (`RLIMIT_FSIZE`) of this process, or of `pid` when
/// given; the hard limit is left as it is.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_file_size_limit(pid: libc::pid_t, bytes: Option<u64>) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit reads and writes only the struct given.
    let read = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, std::ptr::null(), &mut limit) };
    assert_eq!(read, 0, "cannot read the file-size limit");
    limit.rlim_cur = bytes.map_or(limit.rlim_max, |bytes| bytes.min(limit.rlim_max));
    // SAFETY: as above.
    let written = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(written, 0, "cannot set the file-size limit");
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_whole_and_a_resend_records_each_encounter_once() {
    use std::os::unix::process::CommandExt;

    // A file-size limit of 1 MiB makes the store's files unwritable past it,
    // as a full disk would, without needing one: the import below needs about
    // twice that.
    let data = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut command = Cptd::command(data.path());
    // SAFETY: the closure only calls prlimit, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            set_file_size_limit(0, Some(1024 * 1024));
            Ok(())
        });
    }
    let mut server = Cptd::spawn(command, log.clone());
    let mut client = server.client().await;
    let encounters: Vec<pb::Encounter> = (0..6000)
        .map(|index| cancer_visit(&format!("full-{index}"), "99213 1125F"))
        .collect();
    let messages = || tokio_stream::iter(encounters.clone().into_iter().map(import));
    client
        .record_encounter(record(cancer_visit("before-full", "99213 1125F")))
        .await
        .expect("one encounter fits");

    let failed = client
        .import_encounters(messages())
        .await
        .expect_err("the import outgrows the limit");
    assert_eq!(failed.code(), tonic::Code::ResourceExhausted, "{failed:?}");
    assert!(
        failed.message().contains("disk is full")
            && failed
                .message()
                .contains("sending the whole import again is safe"),
        "{failed:?}"
    );
    // The import's commits before the limit stand; which ones is up to timing.
    // Its answer waited for every chunk it had handed over, so none of them
    // lands later, however long the writer takes with them. The database is
    // read directly: while the disk is full a report may be refused too, since
    // its audit record needs room.
    let database = data.path().join("encounters.sqlite3");
    let stored_before = stored_in_whole_database(&database) - 1;
    assert!(stored_before < 6000, "{stored_before}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        stored_in_whole_database(&database) - 1,
        stored_before,
        "part of the import landed after its answer"
    );
    // Single encounters fill what room the failed commits left, until one
    // does not fit either; every one answered counts, the refused one does not.
    let mut recorded_while_full = 0;
    let refused = loop {
        let encounter = cancer_visit(&format!("while-full-{recorded_while_full}"), "99213 1125F");
        match client.record_encounter(record(encounter)).await {
            Ok(_) => recorded_while_full += 1,
            Err(status) => break status,
        }
        assert!(
            recorded_while_full < 1000,
            "single encounters never filled the limit"
        );
    };
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.message().contains("disk is full"), "{refused:?}");
    // Every answered encounter is stored; the refused one too when only its
    // audit record did not fit (retrying it would be safe).
    let stored_while_full = stored_in_whole_database(&database) - 1 - stored_before;
    assert!(
        stored_while_full == recorded_while_full || stored_while_full == recorded_while_full + 1,
        "{stored_while_full} stored while full, {recorded_while_full} answered"
    );

    // Room again: the same import is taken whole, each encounter once.
    set_file_size_limit(server.child.id() as libc::pid_t, None);
    let resent = client
        .import_encounters(messages())
        .await
        .expect("the import is taken once there is room")
        .into_inner();
    assert_eq!(resent.duplicates, stored_before);
    assert_eq!(
        (resent.accepted + resent.duplicates, resent.rejected),
        (6000, 0)
    );
    // Nothing half-counted: the counts are those of the rows stored.
    let everything = 6001 + stored_while_full;
    assert_eq!(eligible(&mut client).await, everything);
    server.stop();

    let stored = stored_in_whole_database(&data.path().join("encounters.sqlite3"));
    assert_eq!(stored, everything);
    let server = Cptd::start(data.path(), log);
    assert_eq!(eligible(&mut server.client().await).await, everything);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_import_leaves_units_and_reports_as_if_nothing_happened() {
    let data = tempfile::tempdir().expect("temp dir");
    let log = Arc::new(Mutex::new(Vec::new()));
    let measures = crate::cms_counting::cms_config().measure_files;
    let with_measures = |data: &Path| {
        let mut command = Cptd::command(data);
        for file in &measures {
            command.arg("--measures").arg(file);
        }
        command
    };
    let answered = workload("answered", 4 * 20);
    let imported = workload("imported", 4 * 500);
    let voided = "answered-12";

    // Arrange: claims answered, one voided, then an import killed mid-way.
    let mut server = Cptd::spawn(with_measures(data.path()), log.clone());
    let mut client = server.client().await;
    import_all(&mut client, answered.iter().cloned().map(import).collect()).await;
    client
        .void_encounter(pb::VoidEncounterRequest {
            encounter_id: voided.into(),
        })
        .await
        .expect("voided");
    let (sender, call) = open_import(&client);
    for claim in &imported {
        sender
            .send(import(claim.clone()))
            .await
            .expect("the stream is open");
    }
    let database = data.path().join("encounters.sqlite3");
    let deadline = Instant::now() + HANG_GUARD;
    while stored_in_whole_database(&database) <= answered.len() as i64 {
        assert!(Instant::now() < deadline, "the import was never committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill_hard();
    assert!(
        call.await.expect("joined").is_err(),
        "no summary after kill -9"
    );
    drop(sender);

    // Act: restart and send the whole import again.
    let mut server = Cptd::spawn(with_measures(data.path()), log.clone());
    let mut client = server.client().await;
    let resent = import_all(&mut client, imported.iter().cloned().map(import).collect()).await;
    assert_eq!(resent.accepted + resent.duplicates, imported.len() as i64);
    assert!(
        resent.duplicates > 0,
        "part of the import was stored before the kill"
    );
    let after_kill = reports(&mut client).await;
    let still_voided = client
        .get_encounter(pb::GetEncounterRequest {
            encounter_id: voided.into(),
        })
        .await
        .expect("stored")
        .into_inner();
    server.stop();

    // Assert: a server that saw the same claims without a kill counts the same.
    let clean = crate::cms_counting::spawn_cms_app().await;
    let mut clean_client = clean.quality_measures.clone();
    import_all(
        &mut clean_client,
        answered.iter().cloned().map(import).collect(),
    )
    .await;
    clean_client
        .void_encounter(pb::VoidEncounterRequest {
            encounter_id: voided.into(),
        })
        .await
        .expect("voided");
    import_all(
        &mut clean_client,
        imported.iter().cloned().map(import).collect(),
    )
    .await;
    assert_eq!(after_kill, reports(&mut clean_client).await);
    assert!(still_voided.voided, "the voided claim did not come back");
}
