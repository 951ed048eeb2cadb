//! Defect 5: the data directory and its files are the owner's alone, and one
//! database is one server's.

use std::{os::unix::fs::PermissionsExt, path::Path};

use crate::binary::{ServerProcess, run_to_end};

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Records one encounter, so that the database and its logs exist.
fn record_one(server: &ServerProcess) {
    let address = server.address;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut client = cptd::pb::quality_measures_client::QualityMeasuresClient::new(
                crate::helpers::connect(address).await,
            );
            client
                .record_encounter(crate::quality_fixtures::record(
                    crate::quality_fixtures::cancer_visit("modes-1", "99213 1125F"),
                ))
                .await
                .expect("the encounter is recorded");
        });
}

#[test]
fn a_new_data_directory_and_every_file_in_it_are_private_whatever_the_umask() {
    // Arrange
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("data");

    // Act
    let server = ServerProcess::start_storing_in(&data, &[]);
    record_one(&server);

    // Assert
    assert_eq!(mode_of(&data), 0o700);
    for file in [
        "encounters.sqlite3",
        "encounters.sqlite3-wal",
        "encounters.sqlite3-shm",
        "patient-id.key",
        "cptd.lock",
    ] {
        assert_eq!(mode_of(&data.join(file)), 0o600, "{file}");
    }
}

#[test]
fn an_existing_directory_open_to_others_is_narrowed_with_a_warning() {
    // Arrange: as an older cptd or a careless operator left it.
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = data.path().join("encounters.sqlite3");
    std::fs::write(&database, b"").unwrap();
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();

    // Act
    let mut server = ServerProcess::start_storing_in(data.path(), &[]);
    record_one(&server);

    // Assert
    assert_eq!(mode_of(data.path()), 0o700);
    assert_eq!(mode_of(&database), 0o600);
    assert_eq!(mode_of(&data.path().join("encounters.sqlite3-wal")), 0o600);
    let warning = server.wait_for_log(|line| line.contains("narrowed the data directory"));
    assert!(warning.contains("0755"), "{warning}");
}

#[test]
fn a_second_server_is_refused_even_after_the_pid_file_is_deleted() {
    // Arrange
    let data = tempfile::tempdir().unwrap();
    let _first = ServerProcess::start_storing_in(data.path(), &[]);
    std::fs::remove_file(data.path().join("cptd.lock")).unwrap();

    // Act
    let data_dir = data.path().to_str().unwrap();
    let (status, _, stderr) = run_to_end(&["--listen", "127.0.0.1:0", "--data-dir", data_dir]);

    // Assert
    assert!(!status.success(), "the second server started: {stderr}");
    assert!(
        stderr.contains("in use by another running cptd"),
        "{stderr}"
    );
}
