//! Two `cptd` replicas on one PostgreSQL database: what one answers as
//! recorded the other reports at once; sends raced to both store each
//! encounter once; an import cut off by `kill -9` of one replica is completed
//! by a resend to the other; an unreachable database makes the calls that
//! need it UNAVAILABLE, and health NOT_SERVING, until it returns; replicas
//! starting together both migrate and serve.

use std::{
    path::Path,
    process::Command,
    sync::{
        Arc, Barrier,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use cptd::pb::{
    self, code_lookup_client::CodeLookupClient, quality_measures_client::QualityMeasuresClient,
};
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    binary::{CPTD, ServerProcess},
    cms_counting::{
        NPI, TIN, claim, cms_config, counts, reports, spawn_cms_app, workload, workload_claim,
    },
    helpers::{HANG_GUARD, connect},
    postgres_fixture::TestDatabase,
    quality_fixtures::{import, import_all, open_import, performance, record},
};

/// The patient-id key every replica is given, as replicas of one deployment
/// share theirs: a patient's claims make one unit whichever replica took them.
const PATIENT_ID_KEY: &str = "5f0c8e2a9b7d4136a0e1c2d3b4a59687f8e9d0c1b2a3948576a6b7c8d9e0f1a2";

/// Kept small so that the replicas of the tests running side by side stay
/// within PostgreSQL's default of 100 connections.
const DATABASE_POOL_SIZE: &str = "4";

/// How many encounters each race sends to both replicas at once.
const RACES: usize = 50;

/// The health names of what needs the database, `NOT_SERVING` while it is
/// away: the whole server and the service that stores encounters.
const NEEDING_THE_DATABASE: [&str; 2] = ["", pb::quality_measures_server::SERVICE_NAME];

/// The services that need no database, and so stay `SERVING` by name while
/// it is away (docs/operations.md, "Balancing and health").
const NEEDING_NO_DATABASE: [&str; 2] = [
    pb::code_lookup_server::SERVICE_NAME,
    pb::claim_check_server::SERVICE_NAME,
];

/// A `cptd` process storing in the test's database, and clients of it.
struct Replica {
    process: ServerProcess,
    quality_measures: QualityMeasuresClient<Channel>,
    health: HealthClient<Channel>,
    /// Where the process runs, so nothing it writes lands in the repository.
    _working_dir: tempfile::TempDir,
}

impl Replica {
    /// Starts a replica on `database` and waits until it serves.
    async fn start(database: &TestDatabase) -> Replica {
        let mut started = Replica::start_together(database, 1).await;
        started.pop().expect("one replica was started")
    }

    /// Starts `count` replicas on `database` at the same moment and waits
    /// until each serves.
    async fn start_together(database: &TestDatabase, count: usize) -> Vec<Replica> {
        let starting_line = Arc::new(Barrier::new(count));
        let launches: Vec<_> = (0..count)
            .map(|_| {
                let working_dir = tempfile::tempdir().expect("a working directory");
                let command = replica_command(database, working_dir.path());
                let starting_line = starting_line.clone();
                let launch = tokio::task::spawn_blocking(move || {
                    starting_line.wait();
                    ServerProcess::launch(command)
                });
                (launch, working_dir)
            })
            .collect();
        let mut replicas = Vec::with_capacity(count);
        for (launch, working_dir) in launches {
            let process = launch
                .await
                .unwrap_or_else(|failed| std::panic::resume_unwind(failed.into_panic()));
            let channel = connect(process.address).await;
            replicas.push(Replica {
                process,
                quality_measures: QualityMeasuresClient::new(channel.clone()),
                health: HealthClient::new(channel),
                _working_dir: working_dir,
            });
        }
        replicas
    }

    async fn record(&mut self, encounter: pb::Encounter) -> pb::RecordEncounterResponse {
        self.quality_measures
            .record_encounter(record(encounter))
            .await
            .expect("recorded")
            .into_inner()
    }

    async fn report(&mut self, measure_id: &str) -> pb::PerformanceReport {
        self.quality_measures
            .get_performance(performance(measure_id))
            .await
            .expect("a report")
            .into_inner()
    }

    async fn encounter(&mut self, encounter_id: &str) -> pb::StoredEncounter {
        self.quality_measures
            .get_encounter(encounter_request(encounter_id))
            .await
            .unwrap_or_else(|status| panic!("{encounter_id} is not stored: {status:?}"))
            .into_inner()
    }

    async fn void(&mut self, encounter_id: &str) -> pb::VoidEncounterResponse {
        self.quality_measures
            .void_encounter(void_request(encounter_id))
            .await
            .expect("voided")
            .into_inner()
    }

    /// The care gaps of `measure_id` for [`TIN`] in 2025, as their kind and
    /// encounter ids, sorted.
    async fn care_gaps(&mut self, measure_id: &str) -> Vec<(pb::GapKind, Vec<String>)> {
        let answer = self
            .quality_measures
            .list_care_gaps(care_gaps_request(measure_id))
            .await
            .expect("care gaps")
            .into_inner();
        assert!(answer.next_page_token.is_empty(), "one page holds them all");
        let mut gaps: Vec<_> = answer
            .gaps
            .iter()
            .map(|gap| {
                let ids = gap
                    .encounters
                    .iter()
                    .map(|encounter| encounter.encounter_id.clone())
                    .collect();
                (gap.kind(), ids)
            })
            .collect();
        gaps.sort();
        gaps
    }

    /// The value of `measure_id` in the 2025 measurement set of [`TIN`] and
    /// [`NPI`]; JSON null when the set has no such measurement.
    async fn exported(&mut self, measure_id: &str) -> serde_json::Value {
        let answer = self
            .quality_measures
            .export_measurement_set(measurement_set_request())
            .await
            .expect("a measurement set")
            .into_inner();
        let set: serde_json::Value =
            serde_json::from_str(&answer.measurement_set_json).expect("the set is JSON");
        set["measurements"]
            .as_array()
            .expect("the set lists measurements")
            .iter()
            .find(|measurement| measurement["measureId"] == measure_id)
            .map_or(serde_json::Value::Null, |measurement| {
                measurement["value"].clone()
            })
    }

    async fn health(&mut self, service: &str) -> ServingStatus {
        self.health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers whatever the database does")
            .into_inner()
            .status()
    }

    /// Waits until the health service answers `wanted` for each of `services`.
    async fn wait_for_health(&mut self, services: &[&str], wanted: ServingStatus) {
        let deadline = Instant::now() + HANG_GUARD;
        for service in services {
            loop {
                let answered = self.health(service).await;
                if answered == wanted {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "health of {service:?} stayed {answered:?}, not {wanted:?}; log:\n{}",
                    self.process.log_lines().join("\n")
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// The command that runs a replica on `database` in `working_dir`, with
/// CMS's claims measures besides the built-in ones.
fn replica_command(database: &TestDatabase, working_dir: &Path) -> Command {
    let mut command = Command::new(CPTD);
    command
        .current_dir(working_dir)
        .args(["--listen", "127.0.0.1:0", "--database-url"])
        .arg(database.url())
        .env("CPTD_PATIENT_ID_KEY", PATIENT_ID_KEY)
        .args(["--database-pool-size", DATABASE_POOL_SIZE]);
    for file in cms_config().measure_files {
        command.arg("--measures").arg(file);
    }
    command
}

fn encounter_request(encounter_id: &str) -> pb::GetEncounterRequest {
    pb::GetEncounterRequest {
        encounter_id: encounter_id.into(),
    }
}

fn void_request(encounter_id: &str) -> pb::VoidEncounterRequest {
    pb::VoidEncounterRequest {
        encounter_id: encounter_id.into(),
    }
}

fn care_gaps_request(measure_id: &str) -> pb::ListCareGapsRequest {
    pb::ListCareGapsRequest {
        measure_id: measure_id.into(),
        tin: TIN.into(),
        period_start: "2025-01-01".into(),
        period_end: "2025-12-31".into(),
        page_size: 100,
        ..Default::default()
    }
}

fn measurement_set_request() -> pb::ExportMeasurementSetRequest {
    pb::ExportMeasurementSetRequest {
        tin: TIN.into(),
        npi: NPI.into(),
        performance_year: 2025,
    }
}

/// The reports of a fresh SQLite-backed server given `encounters` in one
/// clean import: what any store must count for them.
async fn reports_of_a_clean_import(encounters: &[pb::Encounter]) -> Vec<pb::PerformanceReport> {
    let clean = spawn_cms_app().await;
    let mut client = clean.quality_measures.clone();
    let summary = import_all(
        &mut client,
        encounters.iter().cloned().map(import).collect(),
    )
    .await;
    assert_eq!(
        (summary.accepted, summary.rejected),
        (encounters.len() as i64, 0),
        "{:?}",
        summary.errors
    );
    reports(&mut client).await
}

/// The answers of one encounter raced to two replicas: A's, then B's.
type RaceAnswers = (
    Result<pb::RecordEncounterResponse, Status>,
    Result<pb::RecordEncounterResponse, Status>,
);

/// Records each pair's first encounter on `a` and its second on `b` at the
/// same moment, every pair at once; the answers in the order of `pairs`.
async fn race(
    a: &Replica,
    b: &Replica,
    pairs: Vec<(pb::Encounter, pb::Encounter)>,
) -> Vec<RaceAnswers> {
    let calls: Vec<_> = pairs
        .into_iter()
        .map(|(to_a, to_b)| {
            let mut client_a = a.quality_measures.clone();
            let mut client_b = b.quality_measures.clone();
            tokio::spawn(async move {
                let (from_a, from_b) = tokio::join!(
                    client_a.record_encounter(record(to_a)),
                    client_b.record_encounter(record(to_b))
                );
                (
                    from_a.map(tonic::Response::into_inner),
                    from_b.map(tonic::Response::into_inner),
                )
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(calls.len());
    for call in calls {
        let answered = tokio::time::timeout(HANG_GUARD, call)
            .await
            .expect("both replicas answered the race")
            .expect("joined");
        answers.push(answered);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_replica_answers_as_recorded_the_other_reports_at_once() {
    let database = TestDatabase::create().await;
    let mut a = Replica::start(&database).await;
    let mut b = Replica::start(&database).await;

    // Act: one patient's claim met, another's unreported, recorded on A.
    let met = a
        .record(claim(
            "met-1",
            "patient-met",
            "2025-03-03",
            "99213 1123F",
            &[],
        ))
        .await;
    a.record(claim("gap-1", "patient-gap", "2025-03-03", "99213", &[]))
        .await;

    // Assert: B's very next calls see both.
    assert_eq!(counts(&b.report("047").await), (2, 1, 0, 0, 0, 1));
    let stored = b.encounter("met-1").await;
    assert_eq!((stored.revision, stored.voided), (1, false));
    assert_eq!(stored.outcomes, met.outcomes);
    assert!(!stored.units.is_empty(), "{stored:?}");
    assert_eq!(
        b.care_gaps("047").await,
        [(pb::GapKind::Unreported, vec!["gap-1".to_string()])]
    );
    let exported = b.exported("047").await;
    assert_eq!(
        (&exported["eligiblePopulation"], &exported["performanceMet"]),
        (&2.into(), &1.into()),
        "{exported}"
    );

    // A unit of claims taken by both: B's later claim closes the gap A took.
    b.record(claim(
        "gap-2",
        "patient-gap",
        "2025-06-03",
        "99213 1123F",
        &[],
    ))
    .await;
    assert_eq!(counts(&a.report("047").await), (2, 2, 0, 0, 0, 0));
    assert_eq!(a.care_gaps("047").await, []);

    // A void on B is in A's very next report.
    assert!(!b.void("met-1").await.already_voided);
    assert_eq!(counts(&a.report("047").await), (1, 1, 0, 0, 0, 0));
    let voided = a.encounter("met-1").await;
    assert_eq!((voided.revision, voided.voided), (2, true));
    assert!(a.void("met-1").await.already_voided);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_encounter_raced_to_both_replicas_is_stored_and_counted_once() {
    let database = TestDatabase::create().await;
    let mut a = Replica::start(&database).await;
    let mut b = Replica::start(&database).await;
    let pairs = (0..RACES)
        .map(|index| {
            let patient = format!("patient-race-{index}");
            let encounter = claim(
                &format!("race-{index}"),
                &patient,
                "2025-03-03",
                "99213 1123F",
                &[],
            );
            (encounter.clone(), encounter)
        })
        .collect();

    let answers = race(&a, &b, pairs).await;

    let mut not_stored_once = Vec::new();
    for (index, (from_a, from_b)) in answers.into_iter().enumerate() {
        let from_a = from_a.unwrap_or_else(|status| panic!("race-{index} on A: {status:?}"));
        let from_b = from_b.unwrap_or_else(|status| panic!("race-{index} on B: {status:?}"));
        // One replica stores it; the other finds it there and says so.
        if from_a.duplicate == from_b.duplicate {
            not_stored_once.push(index);
        }
        assert_eq!(from_a.outcomes, from_b.outcomes, "race-{index}");
    }
    assert!(
        not_stored_once.is_empty(),
        "races answered as stored by both or by neither: {not_stored_once:?}"
    );
    for replica in [&mut a, &mut b] {
        let expected = (RACES as i64, RACES as i64, 0, 0, 0, 0);
        assert_eq!(counts(&replica.report("047").await), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_of_one_patient_raced_to_both_replicas_make_one_unit() {
    let database = TestDatabase::create().await;
    let mut a = Replica::start(&database).await;
    let mut b = Replica::start(&database).await;
    // Each patient's four claims, two at a time, one to each replica.
    let claims = workload("shared", 4 * RACES);
    let pairs = claims
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();

    let answers = race(&a, &b, pairs).await;

    for (from_a, from_b) in answers {
        for answer in [from_a, from_b] {
            let answer = answer.expect("every claim is recorded");
            assert!(!answer.duplicate, "{} sent once", answer.encounter_id);
        }
    }
    let expected = reports_of_a_clean_import(&claims).await;
    assert_eq!(reports(&mut a.quality_measures).await, expected);
    assert_eq!(reports(&mut b.quality_measures).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_content_raced_under_one_id_stores_one_and_refuses_the_other() {
    let database = TestDatabase::create().await;
    let mut a = Replica::start(&database).await;
    let mut b = Replica::start(&database).await;
    let id = |index: usize| format!("conflict-{index}");
    let pairs = (0..RACES)
        .map(|index| {
            let patient = format!("patient-conflict-{index}");
            let visit = |codes: &str| claim(&id(index), &patient, "2025-03-03", codes, &[]);
            (visit("99213 1123F"), visit("99213 1123F-8P"))
        })
        .collect();

    let answers = race(&a, &b, pairs).await;

    let (mut met_from_a, mut not_met_from_b) = (0, 0);
    for (index, answer) in answers.into_iter().enumerate() {
        let (stored, refused) = match answer {
            (Ok(stored), Err(refused)) => {
                met_from_a += 1;
                (stored, refused)
            }
            (Err(refused), Ok(stored)) => {
                not_met_from_b += 1;
                (stored, refused)
            }
            other => panic!("{}: not one stored and one refused: {other:?}", id(index)),
        };
        assert!(!stored.duplicate, "{}", id(index));
        assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
        assert!(refused.message().contains("replace"), "{refused:?}");
        let kept = a.encounter(&id(index)).await;
        assert_eq!(
            kept.outcomes,
            stored.outcomes,
            "{} holds what the replica that said stored was sent",
            id(index)
        );
    }
    for replica in [&mut a, &mut b] {
        let expected = (RACES as i64, met_from_a, not_met_from_b, 0, 0, 0);
        assert_eq!(counts(&replica.report("047").await), expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_cut_off_by_kill_9_of_one_replica_is_completed_once_by_a_resend_to_the_other() {
    let database = TestDatabase::create().await;
    let mut a = Replica::start(&database).await;
    let mut b = Replica::start(&database).await;
    let claims = workload("import", 20_000);

    // Act: A takes the import; once B reports part of it, A is killed with
    // the stream still open, so the import can never have been answered.
    let (sender, call) = open_import(&a.quality_measures);
    let feeding = {
        let claims = claims.clone();
        tokio::spawn(async move {
            for claim in claims {
                if sender.send(import(claim)).await.is_err() {
                    break;
                }
            }
            sender
        })
    };
    let deadline = Instant::now() + HANG_GUARD;
    while b.report("047").await.eligible_population < 100 {
        assert!(Instant::now() < deadline, "B never saw the import on A");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.process.signal("KILL");
    a.process.wait();
    let cut_off = tokio::time::timeout(HANG_GUARD, call)
        .await
        .expect("the import ended with its replica")
        .expect("joined");
    assert!(cut_off.is_err(), "no summary after kill -9: {cut_off:?}");
    drop(feeding.await.expect("joined"));

    // Act: the whole import sent again, to B.
    let resent = tokio::time::timeout(
        HANG_GUARD,
        import_all(
            &mut b.quality_measures,
            claims.iter().cloned().map(import).collect(),
        ),
    )
    .await
    .expect("the resend was answered");

    // Assert: every claim stored once, counted as a clean import counts them.
    assert_eq!(resent.rejected, 0, "{:?}", resent.errors);
    assert_eq!(resent.accepted + resent.duplicates, claims.len() as i64);
    assert!(resent.duplicates > 0, "part was stored before the kill");
    assert_eq!(
        reports(&mut b.quality_measures).await,
        reports_of_a_clean_import(&claims).await
    );
}

/// Encounters recorded on one replica by several clients at once until
/// stopped, each kept with the code it was answered with.
struct WriteLoad {
    progress: Arc<LoadProgress>,
    writers: Vec<tokio::task::JoinHandle<Vec<(pb::Encounter, Code)>>>,
}

#[derive(Default)]
struct LoadProgress {
    next_claim: AtomicUsize,
    succeeded: AtomicUsize,
    failed: AtomicUsize,
    stop: AtomicBool,
}

impl WriteLoad {
    /// Starts `writers` clients recording claims of the workload named
    /// `prefix` on `replica`, each claim once.
    fn start(replica: &Replica, prefix: &'static str, writers: usize) -> WriteLoad {
        let progress = Arc::new(LoadProgress::default());
        let writers = (0..writers)
            .map(|_| {
                let progress = progress.clone();
                let mut client = replica.quality_measures.clone();
                tokio::spawn(async move {
                    let mut answered = Vec::new();
                    while !progress.stop.load(Ordering::Relaxed) {
                        let index = progress.next_claim.fetch_add(1, Ordering::Relaxed);
                        let encounter = workload_claim(prefix, index);
                        let answer = tokio::time::timeout(
                            HANG_GUARD,
                            client.record_encounter(record(encounter.clone())),
                        )
                        .await
                        .unwrap_or_else(|_| {
                            panic!("{} was never answered", encounter.encounter_id)
                        });
                        let code = match answer {
                            Ok(_) => {
                                progress.succeeded.fetch_add(1, Ordering::Relaxed);
                                Code::Ok
                            }
                            Err(status) => {
                                progress.failed.fetch_add(1, Ordering::Relaxed);
                                status.code()
                            }
                        };
                        answered.push((encounter, code));
                    }
                    answered
                })
            })
            .collect();
        WriteLoad { progress, writers }
    }

    fn succeeded(&self) -> usize {
        self.progress.succeeded.load(Ordering::Relaxed)
    }

    /// Waits until `done` holds of the counts of (succeeded, failed) writes.
    async fn wait_until(&self, what: &str, done: impl Fn(usize, usize) -> bool) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            let failed = self.progress.failed.load(Ordering::Relaxed);
            if done(self.succeeded(), failed) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what} never happened ({} succeeded, {failed} failed)",
                self.succeeded()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the writers and returns every claim sent with its answer.
    async fn stop(self) -> Vec<(pb::Encounter, Code)> {
        self.progress.stop.store(true, Ordering::Relaxed);
        let mut answered = Vec::new();
        for writer in self.writers {
            answered.extend(writer.await.expect("a writer panicked"));
        }
        answered
    }
}

/// Asserts `answer` is UNAVAILABLE, as every store-backed call is while the
/// database is unreachable.
fn assert_unavailable<T: std::fmt::Debug>(call: &str, answer: Result<T, Status>) {
    match answer {
        Err(status) if status.code() == Code::Unavailable => {}
        other => panic!("{call} with the database away: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_and_not_serving_until_it_returns() {
    let database = TestDatabase::create().await;
    let mut a = Replica::start(&database).await;
    let load = WriteLoad::start(&a, "outage", 4);
    load.wait_until("writes before the outage", |succeeded, _| succeeded >= 20)
        .await;

    // Act: the database goes away under the load.
    database.refuse_connections().await;

    // Assert: not serving, and every store-backed call unavailable.
    a.wait_for_health(&NEEDING_THE_DATABASE, ServingStatus::NotServing)
        .await;
    for service in NEEDING_NO_DATABASE {
        assert_eq!(a.health(service).await, ServingStatus::Serving, "{service}");
    }
    let looked_up = CodeLookupClient::new(connect(a.process.address).await)
        .get_code(pb::GetCodeRequest {
            code: "99213".into(),
            as_of: String::new(),
        })
        .await;
    assert!(
        looked_up.is_ok(),
        "code look-ups need no database: {looked_up:?}"
    );
    let first_claim = workload_claim("outage", 0).encounter_id;
    let client = &mut a.quality_measures;
    assert_unavailable(
        "RecordEncounter",
        client
            .record_encounter(record(claim(
                "probe-record",
                "p",
                "2025-03-03",
                "99213",
                &[],
            )))
            .await,
    );
    let probe_import = import(claim("probe-import", "p", "2025-03-03", "99213", &[]));
    assert_unavailable(
        "ImportEncounters",
        client
            .import_encounters(tokio_stream::iter(vec![probe_import]))
            .await,
    );
    assert_unavailable(
        "GetPerformance",
        client.get_performance(performance("047")).await,
    );
    assert_unavailable(
        "GetEncounter",
        client.get_encounter(encounter_request(&first_claim)).await,
    );
    assert_unavailable(
        "VoidEncounter",
        client.void_encounter(void_request(&first_claim)).await,
    );
    assert_unavailable(
        "ListCareGaps",
        client.list_care_gaps(care_gaps_request("047")).await,
    );
    assert_unavailable(
        "ExportMeasurementSet",
        client
            .export_measurement_set(measurement_set_request())
            .await,
    );
    load.wait_until("a write failing in the outage", |_, failed| failed > 0)
        .await;

    // Act: the database returns; the same process serves again.
    database.allow_connections().await;
    a.wait_for_health(&NEEDING_THE_DATABASE, ServingStatus::Serving)
        .await;
    let succeeded_on_return = load.succeeded();
    load.wait_until("writes after the outage", |succeeded, _| {
        succeeded >= succeeded_on_return + 20
    })
    .await;
    let answered = load.stop().await;

    // Assert: failures were UNAVAILABLE and nothing else.
    let otherwise: Vec<_> = answered
        .iter()
        .filter(|(_, code)| !matches!(code, Code::Ok | Code::Unavailable))
        .map(|(encounter, code)| (&encounter.encounter_id, code))
        .collect();
    assert_eq!(otherwise, [], "writes failing otherwise than UNAVAILABLE");
    // Every claim answered OK is there whole: sent again, each is a duplicate.
    let (succeeded, failed): (Vec<_>, Vec<_>) = answered
        .into_iter()
        .partition(|(_, code)| *code == Code::Ok);
    let succeeded: Vec<pb::Encounter> = succeeded.into_iter().map(|(claim, _)| claim).collect();
    let failed: Vec<pb::Encounter> = failed.into_iter().map(|(claim, _)| claim).collect();
    let resent = import_all(
        &mut a.quality_measures,
        succeeded.iter().cloned().map(import).collect(),
    )
    .await;
    assert_eq!(
        (resent.accepted, resent.duplicates, resent.rejected),
        (0, succeeded.len() as i64, 0),
        "{:?}",
        resent.errors
    );
    // A failed claim may have been stored before its answer was lost, but
    // only whole: sent again, none conflicts.
    let resent = import_all(
        &mut a.quality_measures,
        failed.iter().cloned().map(import).collect(),
    )
    .await;
    assert_eq!(resent.rejected, 0, "{:?}", resent.errors);
    // Nothing refused while the database was away was stored.
    for probe in ["probe-record", "probe-import"] {
        let status = a
            .quality_measures
            .get_encounter(encounter_request(probe))
            .await
            .expect_err("a refused probe is not stored");
        assert_eq!(status.code(), Code::NotFound, "{probe}: {status:?}");
    }
    // Counted as a clean import of every claim counts them.
    let everything: Vec<pb::Encounter> = succeeded.into_iter().chain(failed).collect();
    assert_eq!(
        reports(&mut a.quality_measures).await,
        reports_of_a_clean_import(&everything).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_together_on_a_fresh_database_both_migrate_and_serve() {
    // A few rounds, since two migrations colliding is a matter of timing.
    for round in 0..3 {
        let database = TestDatabase::create().await;

        let mut replicas = Replica::start_together(&database, 2).await;

        let mut b = replicas.pop().expect("two replicas");
        let mut a = replicas.pop().expect("two replicas");
        a.record(claim(
            "from-a",
            "patient-a",
            "2025-03-03",
            "99213 1123F",
            &[],
        ))
        .await;
        b.record(claim("from-b", "patient-b", "2025-03-03", "99213", &[]))
            .await;
        for replica in [&mut a, &mut b] {
            let counted = counts(&replica.report("047").await);
            assert_eq!(counted, (2, 1, 0, 0, 0, 1), "round {round}");
        }
    }
}
