//! A server on a PostgreSQL database, as an operator meets it: the key a
//! shared database needs and checks, measure definitions that differ between
//! replicas, counting again at start, the audit trail checked from the
//! command line, and TLS to the database.

use cptd::{config::Config, config::Secret, pb, server, store::StoreError};
use tonic::Code;

use crate::{
    binary::run_to_end,
    cms_counting::{claim, cms_config, counts, report},
    helpers::{HANG_GUARD, TestApp, spawn_app_with},
    postgres_fixture::TestDatabase,
    quality_fixtures::record,
};

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const OTHER_KEY: &str = "1f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// `base` storing in `database` under `key`.
fn on(database: &TestDatabase, key: Option<&str>, mut base: Config) -> Config {
    base.in_memory = false;
    base.database_url = Some(Secret(database.url()));
    base.patient_id_key = key.map(|key| Secret(key.into()));
    base.database_pool_size = 4;
    base
}

/// Why a server with `config` did not start.
async fn refusal(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = server::run(listener, config, std::future::pending());
    match tokio::time::timeout(HANG_GUARD, run).await {
        Ok(Err(error)) => error.to_string(),
        Ok(Ok(())) => panic!("the server started and stopped"),
        Err(_) => panic!("the server started"),
    }
}

fn visit(id: &str, patient: &str) -> pb::Encounter {
    claim(id, patient, "2025-03-04", "99213 1125F", &["C50.911"])
}

async fn record_one(app: &mut TestApp, id: &str, patient: &str) -> Result<(), tonic::Status> {
    app.quality_measures
        .record_encounter(record(visit(id, patient)))
        .await
        .map(drop)
}

#[tokio::test]
async fn a_shared_database_needs_a_key_and_refuses_another_than_its_own() {
    let database = TestDatabase::create().await;
    let without = refusal(on(&database, None, Config::for_tests())).await;
    assert!(
        without.contains("CPTD_PATIENT_ID_KEY") && without.contains("--patient-id-key-file"),
        "{without}"
    );

    let mut first = spawn_app_with(on(&database, Some(KEY), Config::for_tests())).await;
    record_one(&mut first, "k1", "MRN-K").await.unwrap();
    first.stop().await.unwrap();

    let other = refusal(on(&database, Some(OTHER_KEY), Config::for_tests())).await;
    assert_eq!(
        other,
        format!(
            "cannot open the encounter store: {}",
            StoreError::KeyMismatch
        )
    );
}

#[tokio::test]
async fn the_key_may_come_from_a_secret_file() {
    let database = TestDatabase::create().await;
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("patient-id-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let mut from_file = on(&database, None, Config::for_tests());
    from_file.patient_id_key_file = Some(key_file);
    let mut app = spawn_app_with(from_file).await;
    record_one(&mut app, "f1", "MRN-F").await.unwrap();
    app.stop().await.unwrap();

    // The same key given otherwise opens the same database.
    let mut again = spawn_app_with(on(&database, Some(KEY), Config::for_tests())).await;
    let resent = again
        .quality_measures
        .record_encounter(record(visit("f1", "MRN-F")))
        .await
        .unwrap()
        .into_inner();
    assert!(resent.duplicate, "{resent:?}");
    again.stop().await.unwrap();
}

#[tokio::test]
async fn a_replica_with_other_measures_refuses_writes_and_a_restart_counts_every_claim_again() {
    let database = TestDatabase::create().await;
    let mut with_cms = spawn_app_with(on(&database, Some(KEY), cms_config())).await;
    record_one(&mut with_cms, "m1", "MRN-M1").await.unwrap();
    assert_eq!(counts(&report(&mut with_cms, "047").await).0, 1);

    // Another replica starts without the CMS measures: it counts the
    // database under its own, so the first may no longer write.
    let mut built_in_only = spawn_app_with(on(&database, Some(KEY), Config::for_tests())).await;
    record_one(&mut built_in_only, "m2", "MRN-M2")
        .await
        .unwrap();
    let refused = record_one(&mut with_cms, "m3", "MRN-M3").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("--measures"), "{refused:?}");
    with_cms.stop().await.unwrap();
    built_in_only.stop().await.unwrap();

    // Restarted with the CMS measures, it counts every stored claim under
    // them again, the one recorded while they were out of force included.
    let mut restarted = spawn_app_with(on(&database, Some(KEY), cms_config())).await;
    assert_eq!(counts(&report(&mut restarted, "047").await).0, 2);
    let stored = restarted
        .quality_measures
        .get_encounter(pb::GetEncounterRequest {
            encounter_id: "m3".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        stored.code(),
        Code::NotFound,
        "the refused write left nothing"
    );
    restarted.stop().await.unwrap();
}

#[tokio::test]
async fn cptd_audit_checks_the_shared_trail_and_names_an_edited_record() {
    let database = TestDatabase::create().await;
    let mut app = spawn_app_with(on(&database, Some(KEY), Config::for_tests())).await;
    record_one(&mut app, "a1", "MRN-A").await.unwrap();
    app.quality_measures
        .get_encounter(pb::GetEncounterRequest {
            encounter_id: "a1".into(),
        })
        .await
        .unwrap();
    app.stop().await.unwrap();

    let url = database.url();
    let (status, out, err) = run_to_end(&["audit", "--database-url", &url]);
    assert!(status.success(), "{err}");
    let methods: Vec<String> = out
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["method"].to_string())
        .collect();
    assert_eq!(methods, ["\"RecordEncounter\"", "\"GetEncounter\""]);
    assert!(!out.contains("MRN-A"), "no patient id in the trail");

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute("UPDATE audit_trail SET subject = 'a9' WHERE seq = 1", &[])
        .await
        .unwrap();
    let (status, _, err) = run_to_end(&["audit", "--database-url", &url]);
    assert!(!status.success());
    assert!(err.contains("broken at record 1"), "{err}");
}

#[tokio::test]
async fn tls_to_the_database_is_verified_against_the_ca_given() {
    let database = TestDatabase::create().await;
    let (client, connection) = tokio_postgres::connect(&database.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let setting = |name: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .unwrap();
            row.get::<_, String>(0)
        }
    };
    assert_eq!(
        setting("ssl").await,
        "on",
        "this test needs the test PostgreSQL to serve TLS, as the project's machines' does"
    );
    let server_certificate = std::path::PathBuf::from(setting("ssl_cert_file").await);
    // The machines' server certificate names localhost.
    let by_name = database.url().replace("127.0.0.1", "localhost");

    let mut trusted = on(&database, Some(KEY), Config::for_tests());
    trusted.database_url = Some(Secret(by_name.clone()));
    trusted.database_ca = Some(server_certificate);
    let mut app = spawn_app_with(trusted).await;
    record_one(&mut app, "t1", "MRN-T").await.unwrap();
    let encrypted: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE datname = current_database() AND application_name = 'cptd' AND ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted > 0, "the server's connections are TLS");
    app.stop().await.unwrap();

    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let other_ca = directory.path().join("other-ca.pem");
    std::fs::write(&other_ca, stranger.cert.pem()).unwrap();
    let mut untrusted = on(&database, Some(KEY), Config::for_tests());
    untrusted.database_url = Some(Secret(by_name));
    untrusted.database_ca = Some(other_ca);
    let why = refusal(untrusted).await;
    assert!(why.contains("certificate"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_single_records_shares_commits_on_the_shared_database() {
    const BURST: usize = 200;
    let database = TestDatabase::create().await;
    let url = database.url();
    let mut command = std::process::Command::new(crate::binary::CPTD);
    command
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
        .args(["--database-url", &url, "--database-pool-size", "4"])
        .env("CPTD_PATIENT_ID_KEY", KEY);
    let mut server = crate::binary::ServerProcess::launch(command);
    let listening = server.wait_for_log(|line| line.contains("metrics listening"));
    let metrics_address = crate::binary::json_field(&listening, "address").unwrap();
    let channel = crate::helpers::connect(server.address).await;

    let calls: Vec<_> = (0..BURST)
        .map(|index| {
            let mut client =
                pb::quality_measures_client::QualityMeasuresClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .record_encounter(record(visit(&format!("b{index}"), "MRN-B")))
                    .await
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("recorded");
    }

    let samples = crate::metrics::parse(&crate::metrics::scrape(&metrics_address).await);
    let commits = crate::metrics::value(&samples, "cptd_store_commit_seconds_count", &[]).unwrap();
    // Each call is two writes (its encounter and its audit record).
    assert!(
        commits < BURST as f64,
        "{commits} commits for {BURST} records and their audit records"
    );
    let mut app_view = pb::quality_measures_client::QualityMeasuresClient::new(channel);
    let report = app_view
        .get_performance(crate::quality_fixtures::performance(
            "pain-intensity-quantified",
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.eligible_population, BURST as i64, "each visit once");
}
