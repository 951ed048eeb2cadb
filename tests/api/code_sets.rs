//! A practice's own code files through the real binary: overlay, history as of
//! several days, refusal with exact lines, `cptd check`, and SIGHUP reload while
//! other calls run.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use cptd::pb::{
    GetCodeRequest, ValidateCodesRequest, ValidationReason, code_lookup_client::CodeLookupClient,
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    binary::{ServerProcess, run_to_end},
    helpers::connect,
};

const HEADER: &str =
    "code,descriptor,short_name,synonyms,effective_date,deletion_date,replaced_by\n";

fn write(directory: &Path, name: &str, rows: &str) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, format!("{HEADER}{rows}")).expect("cannot write a code file");
    path
}

fn get(code: &str, as_of: &str) -> GetCodeRequest {
    GetCodeRequest {
        code: code.to_string(),
        as_of: as_of.to_string(),
    }
}

/// A practice-only code with a revision chain: two wordings, then deleted.
const REVISED_CODE: &str = "\
20999,First wording of the practice code.,Practice code v1,,2019-01-01,2021-01-01,\n\
20999,Second wording of the practice code.,Practice code v2,,2021-01-01,2024-01-01,20610\n";

#[tokio::test]
async fn a_licensed_descriptor_keeps_the_built_in_synonyms() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let file = write(
        directory.path(),
        "licensed.csv",
        "64483,Licensed wording of the code.,,,,,\n",
    );
    let server = ServerProcess::start(&["--codes", file.to_str().unwrap()]);
    let mut client = CodeLookupClient::new(connect(server.address).await);

    // Act
    let code = client
        .get_code(get("64483", ""))
        .await
        .unwrap()
        .into_inner();

    // Assert
    assert_eq!(code.descriptor, "Licensed wording of the code.");
    assert_eq!(
        code.short_name, "TFESI lumbar 1 level",
        "kept from the built-in set"
    );
    assert!(code.synonyms.iter().any(|synonym| synonym == "TFESI"));
    assert_eq!(code.anatomy, "lumbar or sacral spine");
}

#[tokio::test]
async fn history_is_answered_as_of_each_day() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let file = write(directory.path(), "history.csv", REVISED_CODE);
    let server = ServerProcess::start(&["--codes", file.to_str().unwrap()]);
    let mut client = CodeLookupClient::new(connect(server.address).await);

    // Act
    let before = client
        .get_code(get("20999", "2018-12-31"))
        .await
        .unwrap_err();
    let first = client
        .get_code(get("20999", "2020-12-31"))
        .await
        .unwrap()
        .into_inner();
    let second = client
        .get_code(get("20999", "2021-01-01"))
        .await
        .unwrap()
        .into_inner();
    let after = client
        .get_code(get("20999", "2024-01-01"))
        .await
        .unwrap()
        .into_inner();
    let verdicts = client
        .validate_codes(ValidateCodesRequest {
            codes: vec!["20999".to_string()],
            as_of: "2025-03-01".to_string(),
        })
        .await
        .unwrap()
        .into_inner()
        .results;

    // Assert
    assert_eq!(before.code(), Code::NotFound);
    assert!(before.message().contains("2019-01-01"), "{before:?}");
    assert_eq!(first.descriptor, "First wording of the practice code.");
    assert_eq!(first.deletion_date, "2021-01-01");
    assert_eq!(second.descriptor, "Second wording of the practice code.");
    assert_eq!(second.effective_date, "2021-01-01");
    assert_eq!(after.status(), cptd::pb::Status::Deleted);
    assert_eq!(after.replaced_by, ["20610"]);
    assert_eq!(verdicts[0].reason(), ValidationReason::Deleted);
    assert!(
        verdicts[0].message.contains("report 20610 instead"),
        "{verdicts:?}"
    );
}

#[test]
fn a_refused_file_stops_the_server_with_every_problem_by_line() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let file = write(
        directory.path(),
        "bad.csv",
        "64483,Fine row.,,,,,\n2061,Malformed code.,,,,,\n20610,,,,,,\n20611,Bad date.,,,2025-02-30,,\n",
    );
    let file = file.to_str().unwrap();

    // Act
    let (status, _, stderr) =
        run_to_end(&["--listen", "127.0.0.1:0", "--in-memory", "--codes", file]);

    // Assert
    assert!(!status.success(), "a refused file must stop the server");
    assert!(
        stderr.contains(&format!("{file}:3: column code: \"2061\" is not a code")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:4: column descriptor: descriptor is empty")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:5: column effective_date:")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("{file}:2:")),
        "the good row is not blamed: {stderr}"
    );
}

#[test]
fn check_lists_the_same_problems_offline_and_exits_non_zero() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let good = write(directory.path(), "good.csv", REVISED_CODE);
    let bad = write(
        directory.path(),
        "overlap.csv",
        "20998,One.,,,2020-01-01,,\n20998,Two.,,,2022-01-01,,\n",
    );

    // Act
    let (good_status, good_out, _) = run_to_end(&["check", good.to_str().unwrap()]);
    let (bad_status, _, bad_err) = run_to_end(&["check", bad.to_str().unwrap()]);

    // Assert
    assert!(good_status.success());
    assert!(good_out.starts_with("ok: "), "{good_out}");
    assert!(!bad_status.success());
    let bad = bad.to_str().unwrap();
    assert!(
        bad_err.contains(&format!(
            "{bad}:3: column effective_date: 20998 is already valid"
        )),
        "{bad_err}"
    );
}

#[tokio::test]
async fn sighup_swaps_the_code_set_while_calls_run_and_a_bad_reload_keeps_it() {
    // Arrange
    let directory = tempfile::tempdir().unwrap();
    let file = write(directory.path(), "codes.csv", "64483,Wording A.,,,,,\n");
    let mut server = ServerProcess::start(&["--codes", file.to_str().unwrap()]);
    let channel = connect(server.address).await;
    let mut client = CodeLookupClient::new(channel.clone());
    let first = client.get_code(get("64483", "")).await.unwrap();
    let first_version = first
        .metadata()
        .get("cptd-registry-version")
        .unwrap()
        .clone();

    let running = Arc::new(AtomicBool::new(true));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let mut client = CodeLookupClient::new(channel.clone());
            let running = running.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while running.load(Ordering::Relaxed) {
                    let response = client
                        .get_code(get("64483", ""))
                        .await
                        .expect("no call fails during a reload");
                    let version = response.metadata().get("cptd-registry-version").cloned();
                    answers.push((response.into_inner().descriptor, version));
                }
                answers
            })
        })
        .collect();

    // Act: a good reload while the callers run
    write(directory.path(), "codes.csv", "64483,Wording B.,,,,,\n");
    server.signal("HUP");
    server.wait_for_log(|line| line.contains("code set reloaded"));
    let after_reload = client.get_code(get("64483", "")).await.unwrap();
    running.store(false, Ordering::Relaxed);
    let mut answers = Vec::new();
    for caller in callers {
        answers.extend(caller.await.unwrap());
    }

    // Act: a bad reload
    write(directory.path(), "codes.csv", "64483,,,,,,\n");
    server.signal("HUP");
    server.wait_for_log(|line| line.contains("code set reload refused"));
    let after_refusal = client.get_code(get("64483", "")).await.unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "cpt.v1.CodeLookup".to_string(),
        })
        .await
        .unwrap()
        .into_inner();

    // Assert
    let reloaded_version = after_reload
        .metadata()
        .get("cptd-registry-version")
        .unwrap()
        .clone();
    assert_ne!(
        reloaded_version, first_version,
        "the registry version names the snapshot"
    );
    assert_eq!(after_reload.into_inner().descriptor, "Wording B.");
    for (descriptor, version) in &answers {
        let expected = if descriptor == "Wording A." {
            &first_version
        } else {
            &reloaded_version
        };
        assert!(
            descriptor == "Wording A." || descriptor == "Wording B.",
            "{descriptor}"
        );
        assert_eq!(
            version.as_ref(),
            Some(expected),
            "text and version come from one snapshot"
        );
    }
    assert_eq!(
        after_refusal.into_inner().descriptor,
        "Wording B.",
        "a refused reload keeps the registry"
    );
    assert_eq!(health.status(), ServingStatus::Serving);
    let log = server.log_lines().join("\n");
    assert!(
        log.contains("codes.csv:2: column descriptor: descriptor is empty"),
        "{log}"
    );
}
