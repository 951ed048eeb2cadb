//! The audit trail through the real binary: exactly the calls made, who made
//! them and how they ended, no patient id, and tampering found.

use cptd::pb::{
    GetCodeRequest, GetEncounterRequest, VoidEncounterRequest,
    code_lookup_client::CodeLookupClient, quality_measures_client::QualityMeasuresClient,
};
use tonic::{Request, transport::Channel};

use crate::{
    binary::{ServerProcess, json_field, run_to_end},
    helpers::{connect, sha256_hex},
    quality_fixtures::{cancer_visit, import, performance, record},
};

fn as_caller<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// `cptd audit` on `data_dir`: its exit status, and `(caller, method,
/// subject, outcome)` of each record printed.
fn audit(data_dir: &std::path::Path) -> (bool, Vec<[String; 4]>, String) {
    let (status, stdout, stderr) = run_to_end(&["audit", "--data-dir", data_dir.to_str().unwrap()]);
    let records = stdout
        .lines()
        .map(|line| {
            ["caller", "method", "subject", "outcome"]
                .map(|field| json_field(line, field).unwrap_or_default())
        })
        .collect();
    (status.success(), records, stdout + &stderr)
}

// Several threads: the client's connection must see the server's GOAWAY
// while the test waits for the server to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trail_holds_exactly_the_calls_on_encounter_data_and_finds_an_edited_record() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[caller]]\nname = \"billing\"\nroles = [\"recorder\", \"reader\"]\ntoken_sha256 = \"{}\"\n\n\
             [[caller]]\nname = \"dashboard\"\nroles = [\"quality\"]\ntoken_sha256 = \"{}\"\n",
            sha256_hex("billing-token"),
            sha256_hex("dashboard-token")
        ),
    )
    .unwrap();
    let mut server = ServerProcess::start(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--auth-policy",
        policy.to_str().unwrap(),
    ]);
    let channel: Channel = connect(server.address).await;
    let mut quality = QualityMeasuresClient::new(channel.clone());

    let visit = cancer_visit("enc-1", "99213 0521F");
    quality
        .record_encounter(as_caller(record(visit.clone()), "billing-token"))
        .await
        .unwrap();
    let resent = quality
        .record_encounter(as_caller(record(visit.clone()), "billing-token"))
        .await
        .unwrap();
    assert!(resent.into_inner().duplicate);
    let mut guessed = visit.clone();
    guessed.diagnoses = vec!["C50.912".to_string()];
    quality
        .record_encounter(as_caller(record(guessed), "billing-token"))
        .await
        .unwrap_err();
    quality
        .import_encounters(as_caller(
            tokio_stream::iter(vec![
                import(cancer_visit("enc-2", "99213")),
                import(cancer_visit("enc-3", "99213")),
            ]),
            "billing-token",
        ))
        .await
        .unwrap();
    quality
        .get_encounter(as_caller(
            GetEncounterRequest {
                encounter_id: "enc-1".into(),
            },
            "dashboard-token",
        ))
        .await
        .unwrap();
    quality
        .get_performance(as_caller(
            performance("pain-plan-of-care"),
            "dashboard-token",
        ))
        .await
        .ok();
    quality
        .void_encounter(as_caller(
            VoidEncounterRequest {
                encounter_id: "enc-1".into(),
            },
            "billing-token",
        ))
        .await
        .unwrap();
    // Refused before it is served, and a look-up: neither touches encounter data.
    quality
        .get_encounter(as_caller(
            GetEncounterRequest {
                encounter_id: "enc-1".into(),
            },
            "billing-token",
        ))
        .await
        .unwrap_err();
    CodeLookupClient::new(channel)
        .get_code(as_caller(
            GetCodeRequest {
                code: "64483".into(),
                ..Default::default()
            },
            "billing-token",
        ))
        .await
        .unwrap();

    // Read while the server runs.
    let (ok, records, output) = audit(&data_dir);
    assert!(ok, "{output}");
    let summary: Vec<[&str; 3]> = records
        .iter()
        .map(|[caller, method, _, outcome]| [caller.as_str(), method.as_str(), outcome.as_str()])
        .collect();
    assert_eq!(
        summary,
        [
            ["billing", "RecordEncounter", "Ok"],
            ["billing", "RecordEncounter", "Ok duplicate"],
            ["billing", "RecordEncounter", "AlreadyExists"],
            ["billing", "ImportEncounters", "Ok"],
            ["dashboard", "GetEncounter", "Ok"],
            ["dashboard", "GetPerformance", "Ok"],
            ["billing", "VoidEncounter", "Ok"],
        ],
        "{output}"
    );
    assert_eq!(records[0][2], "enc-1");
    assert_eq!(records[3][2], "enc-2,enc-3");
    assert!(records[4][2].contains("enc-1"));
    assert!(records[5][2].contains("pain-plan-of-care"));
    assert!(!output.contains("patient-of-"), "no patient id: {output}");

    server.signal("TERM");
    assert!(server.wait().success());
    let database = data_dir.join(cptd::store::DATABASE_FILE);
    rusqlite::Connection::open(&database)
        .unwrap()
        .execute(
            "UPDATE audit_trail SET caller = 'dashboard' WHERE seq = 3",
            [],
        )
        .unwrap();
    let (ok, _, output) = audit(&data_dir);
    assert!(!ok);
    assert!(output.contains("broken at record 3"), "{output}");
}
