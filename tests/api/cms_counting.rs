//! Counting as CMS counts, through the real server with CMS-shaped measure
//! files (a single-source definition file and a measures-data file, both in
//! the shapes CMS publishes): worked examples of each calculation type, modelled
//! on the scenarios of CMS's public claims engine.

use cptd::{
    config::Config,
    pb::{self, quality_measures_client::QualityMeasuresClient},
};
use tonic::{Code, transport::Channel};

use crate::{
    helpers::{TestApp, spawn_app_with},
    quality_fixtures::performance,
};

/// The provider of every claim unless a test says otherwise.
pub const TIN: &str = "123456789";
pub const NPI: &str = "1234567890";

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/measures")
        .join(name)
}

/// A server with CMS's claims measures 024, 047, 145, 226, 236 and 406 (as the
/// fixtures define them) besides the built-in ones.
pub async fn spawn_cms_app() -> TestApp {
    spawn_app_with(cms_config()).await
}

pub fn cms_config() -> Config {
    let mut config = Config::for_tests();
    config.measure_files = vec![
        fixture("claims-2025.json"),
        fixture("claims-2025-measures-data.json"),
    ];
    config
}

/// A claim of `patient` on `date` with `codes` (space separated, modifiers
/// after dashes) and `diagnoses`, aged 70, female, at an office.
pub fn claim(
    id: &str,
    patient: &str,
    date: &str,
    codes: &str,
    diagnoses: &[&str],
) -> pb::Encounter {
    pb::Encounter {
        encounter_id: id.into(),
        patient_id: patient.into(),
        provider_id: NPI.into(),
        tin: TIN.into(),
        service_date: date.into(),
        place_of_service: "11".into(),
        patient_age: Some(70),
        patient_sex: "F".into(),
        codes: codes
            .split_whitespace()
            .map(crate::quality_fixtures::code)
            .collect(),
        diagnoses: diagnoses.iter().map(|d| d.to_string()).collect(),
    }
}

pub async fn record(app: &mut TestApp, claims: Vec<pb::Encounter>) {
    for claim in claims {
        app.quality_measures
            .record_encounter(crate::quality_fixtures::record(claim))
            .await
            .expect("recorded");
    }
}

/// `GetPerformance` of `measure_id` over 2025 for `tin` and `npi` (empty:
/// any).
pub async fn report_for(
    app: &mut TestApp,
    measure_id: &str,
    tin: &str,
    npi: &str,
) -> pb::PerformanceReport {
    app.quality_measures
        .get_performance(pb::GetPerformanceRequest {
            measure_id: measure_id.into(),
            provider_id: npi.into(),
            tin: tin.into(),
            period_start: "2025-01-01".into(),
            period_end: "2025-12-31".into(),
        })
        .await
        .expect("a report")
        .into_inner()
}

pub async fn report(app: &mut TestApp, measure_id: &str) -> pb::PerformanceReport {
    report_for(app, measure_id, "", "").await
}

/// (eligible population, met, not met, exclusions, exceptions, unreported).
pub type Counts = (i64, i64, i64, i64, i64, i64);

/// The counts of `report`.
pub fn counts(report: &pb::PerformanceReport) -> Counts {
    (
        report.eligible_population,
        report.met,
        report.not_met,
        report.exclusions,
        report.exceptions,
        report.unreported,
    )
}

/// The measures whose reports are compared: episodes (024), patient units
/// (047), date units (145) and strata (226).
const COMPARED_MEASURES: [&str; 4] = ["024", "047", "145", "226"];

/// Claim `index` of a workload named `prefix`: four claims a patient, on
/// three dates and two diagnoses, each patient with a different result, so
/// that episodes, patient units, date units and strata all count.
pub fn workload_claim(prefix: &str, index: usize) -> pb::Encounter {
    let patient = index / 4;
    let who = format!("{prefix}-patient-{patient}");
    let id = format!("{prefix}-{index}");
    let result = ["1123F", "1123F-8P", "", "G9692"][patient % 4];
    match index % 4 {
        0 => claim(
            &id,
            &who,
            "2025-02-01",
            &format!("99213 {result} G9902 G9906"),
            &[],
        ),
        1 => claim(&id, &who, "2025-05-01", "99214 G9903", &["S22.000A"]),
        2 => claim(
            &id,
            &who,
            "2025-05-01",
            "22526 G9500 22310 5015F",
            &["S22.000A"],
        ),
        _ => claim(&id, &who, "2025-08-01", "25606", &["S72.001A"]),
    }
}

/// The first `count` claims of the workload named `prefix`.
pub fn workload(prefix: &str, count: usize) -> Vec<pb::Encounter> {
    (0..count)
        .map(|index| workload_claim(prefix, index))
        .collect()
}

/// The 2025 reports of [`COMPARED_MEASURES`].
pub async fn reports(client: &mut QualityMeasuresClient<Channel>) -> Vec<pb::PerformanceReport> {
    let mut reports = Vec::with_capacity(COMPARED_MEASURES.len());
    for measure_id in COMPARED_MEASURES {
        let report = client
            .get_performance(performance(measure_id))
            .await
            .expect("a report")
            .into_inner();
        reports.push(report);
    }
    reports
}

async fn stored(app: &mut TestApp, id: &str) -> pb::StoredEncounter {
    app.quality_measures
        .get_encounter(pb::GetEncounterRequest {
            encounter_id: id.into(),
        })
        .await
        .expect("stored")
        .into_inner()
}

#[tokio::test]
async fn a_patients_claims_of_a_year_are_one_unit_keeping_the_best_marker() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("a-1", "patient-a", "2025-02-03", "99213 1123F-8P", &[]),
            claim("a-2", "patient-a", "2025-05-06", "99214", &[]),
            claim("a-3", "patient-a", "2025-09-01", "99213 1123F", &[]),
            claim("b-1", "patient-b", "2025-03-01", "99213", &[]),
        ],
    )
    .await;

    let advance_care = report(&mut app, "047").await;

    assert_eq!(counts(&advance_care), (2, 1, 0, 0, 0, 1));
    assert_eq!(advance_care.data_completeness, Some(0.5));
    assert_eq!(advance_care.performance_rate, Some(1.0));
    assert_eq!(advance_care.calculation_type, "patientProcess");
    // The not-met claim joined the unit its later claim decided.
    let first = stored(&mut app, "a-1").await;
    let unit = first
        .units
        .iter()
        .find(|unit| unit.measure_id == "047")
        .expect("a unit of 047");
    assert_eq!(unit.encounter_outcome(), pb::Outcome::PerformanceNotMet);
    assert_eq!(unit.unit_outcome(), pb::Outcome::PerformanceMet);
    let ids: Vec<&str> = unit
        .encounters
        .iter()
        .map(|e| e.encounter_id.as_str())
        .collect();
    assert_eq!(ids, ["a-1", "a-2", "a-3"]);
    assert!(
        first.encounter.unwrap().patient_id.is_empty(),
        "never the patient id"
    );
}

#[tokio::test]
async fn a_provider_is_a_tin_and_an_npi_and_reports_filter_by_either() {
    let mut app = spawn_cms_app().await;
    let under = |id: &str, tin: &str, npi: &str, codes: &str| pb::Encounter {
        tin: tin.into(),
        provider_id: npi.into(),
        ..claim(id, "patient-shared", "2025-04-01", codes, &[])
    };
    record(
        &mut app,
        vec![
            under("p-1", "111111111", "1000000001", "99213 1123F"),
            under("p-2", "111111111", "1000000002", "99213 1123F-8P"),
            under("p-3", "222222222", "1000000001", "99213"),
        ],
    )
    .await;

    // One patient, three providers: a unit for each.
    assert_eq!(counts(&report(&mut app, "047").await), (3, 1, 1, 0, 0, 1));
    let tin = report_for(&mut app, "047", "111111111", "").await;
    assert_eq!(counts(&tin), (2, 1, 1, 0, 0, 0));
    assert_eq!(tin.tin, "111111111");
    let npi = report_for(&mut app, "047", "", "1000000001").await;
    assert_eq!(counts(&npi), (2, 1, 0, 0, 0, 1));
    let one = report_for(&mut app, "047", "222222222", "1000000001").await;
    assert_eq!(counts(&one), (1, 0, 0, 0, 0, 1));
}

#[tokio::test]
async fn the_latest_result_decides_an_intermediate_measure_even_when_worse() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim(
                "bp-1",
                "patient-bp",
                "2025-02-01",
                "99213 G8752 G8754",
                &["I10"],
            ),
            claim(
                "bp-2",
                "patient-bp",
                "2025-06-01",
                "99213 G8753 G8755",
                &["I10"],
            ),
            // Later, but without a result: it does not decide.
            claim("bp-3", "patient-bp", "2025-09-01", "99214", &["I10"]),
        ],
    )
    .await;

    let blood_pressure = report(&mut app, "236").await;

    assert_eq!(counts(&blood_pressure), (1, 0, 1, 0, 0, 0));
    assert_eq!(blood_pressure.calculation_type, "patientIntermediate");
}

#[tokio::test]
async fn claims_on_one_date_are_one_procedure_unit() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("f-1", "patient-f", "2025-03-03", "22526", &[]),
            claim("f-2", "patient-f", "2025-03-03", "22526 G9500", &[]),
            claim("f-3", "patient-f", "2025-04-04", "25606 G9501", &[]),
        ],
    )
    .await;

    assert_eq!(counts(&report(&mut app, "145").await), (2, 1, 1, 0, 0, 0));
}

#[tokio::test]
async fn a_quality_code_on_a_claim_without_an_eligible_encounter_code_is_ignored() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("q-1", "patient-q", "2025-03-03", "99213", &[]),
            // 1123F alone: no encounter code, so the claim is not eligible
            // and its quality code counts for nothing.
            claim("q-2", "patient-q", "2025-03-04", "1123F", &[]),
        ],
    )
    .await;

    assert_eq!(counts(&report(&mut app, "047").await), (1, 0, 0, 0, 0, 1));
}

#[tokio::test]
async fn claims_sharing_a_diagnosis_are_one_episode_transitively() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("e-1", "patient-e", "2025-01-10", "99213", &["S22.000A"]),
            claim(
                "e-2",
                "patient-e",
                "2025-01-20",
                "22310 5015F",
                &["S32.009A"],
            ),
            // Shares a fracture with each: all three are one episode.
            claim(
                "e-3",
                "patient-e",
                "2025-02-01",
                "99214",
                &["S22.000A", "S32.009A"],
            ),
            // Another fracture: an episode of its own.
            claim(
                "e-4",
                "patient-e",
                "2025-05-01",
                "99213 5015F-8P",
                &["S72.001A"],
            ),
        ],
    )
    .await;

    let fracture = report(&mut app, "024").await;

    assert_eq!(counts(&fracture), (2, 1, 1, 0, 0, 0));
    assert_eq!(fracture.calculation_type, "intersectingDiagnosis");
}

#[tokio::test]
async fn an_inverse_measure_keeps_the_not_met_marker_on_a_tie() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("t-1", "patient-t", "2025-03-03", "70486 G9552 G9554", &[]),
            claim("t-2", "patient-t", "2025-03-03", "70486 G9552 G9556", &[]),
        ],
    )
    .await;

    let thyroid = report(&mut app, "406").await;

    // Lower is better: on one date, not met is the most advantageous.
    assert_eq!(counts(&thyroid), (1, 0, 1, 0, 0, 0));
    assert_eq!(thyroid.performance_rate, Some(0.0));
}

#[tokio::test]
async fn a_voided_claim_leaves_the_counts_and_its_id_stays_taken() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("v-1", "patient-v", "2025-03-03", "99213 1123F", &[]),
            claim("v-2", "patient-v", "2025-06-03", "99213", &[]),
        ],
    )
    .await;
    assert_eq!(counts(&report(&mut app, "047").await), (1, 1, 0, 0, 0, 0));

    let void = |id: &str| pb::VoidEncounterRequest {
        encounter_id: id.into(),
    };
    let voided = app
        .quality_measures
        .void_encounter(void("v-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!voided.already_voided);

    // The unit is decided again from the claim that is left.
    assert_eq!(counts(&report(&mut app, "047").await), (1, 0, 0, 0, 0, 1));
    let again = app
        .quality_measures
        .void_encounter(void("v-1"))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_voided, "voiding is idempotent");
    let unknown = app
        .quality_measures
        .void_encounter(void("nope"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let stored = stored(&mut app, "v-1").await;
    assert!(stored.voided && stored.units.is_empty());
    assert_eq!(stored.revision, 2);

    // Sent again, the voided claim is refused unless it replaces.
    let resent = claim("v-1", "patient-v", "2025-03-03", "99213 1123F", &[]);
    let refused = app
        .quality_measures
        .record_encounter(crate::quality_fixtures::record(resent.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists);
    assert!(
        refused.message().contains("voided"),
        "{}",
        refused.message()
    );
    app.quality_measures
        .record_encounter(pb::RecordEncounterRequest {
            encounter: Some(resent),
            replace: true,
        })
        .await
        .expect("restored");
    assert_eq!(counts(&report(&mut app, "047").await), (1, 1, 0, 0, 0, 0));
}

#[tokio::test]
async fn a_replacement_moves_a_patient_from_met_to_not_met() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![claim("r-1", "patient-r", "2025-03-03", "99213 1123F", &[])],
    )
    .await;
    assert_eq!(counts(&report(&mut app, "047").await), (1, 1, 0, 0, 0, 0));

    app.quality_measures
        .record_encounter(pb::RecordEncounterRequest {
            encounter: Some(claim(
                "r-1",
                "patient-r",
                "2025-03-03",
                "99213 1123F-8P",
                &[],
            )),
            replace: true,
        })
        .await
        .expect("replaced");

    assert_eq!(counts(&report(&mut app, "047").await), (1, 0, 1, 0, 0, 0));
}

#[tokio::test]
async fn measure_226_counts_each_stratum_and_needs_g9902_in_its_performance_stratum() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim(
                "s-1",
                "patient-s1",
                "2025-03-03",
                "99213 G9902 G9906 1036F",
                &[],
            ),
            claim("s-2", "patient-s2", "2025-03-03", "99213 G9903", &[]),
            // G9906 without G9902: not a tobacco user's claim, so not in the
            // performance stratum.
            claim("s-3", "patient-s3", "2025-03-03", "99213 G9906 G0029", &[]),
        ],
    )
    .await;

    let tobacco = report(&mut app, "226").await;

    let strata: Vec<(&str, Counts)> = tobacco
        .strata
        .iter()
        .map(|stratum| (stratum.stratum.as_str(), counts(stratum)))
        .collect();
    assert_eq!(
        strata,
        [
            ("reporting", (3, 2, 0, 0, 0, 1)),
            ("performance", (1, 1, 0, 0, 0, 0)),
            ("combinedPopulations", (3, 1, 1, 0, 0, 1)),
        ]
    );
    assert_eq!(tobacco.overall_algorithm, "split");
    assert_eq!(tobacco.data_completeness, Some(2.0 / 3.0));
    assert_eq!(tobacco.performance_rate, Some(1.0));
}

#[tokio::test]
async fn a_period_counts_the_units_whose_claims_all_lie_in_it() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("y-1", "patient-y1", "2025-01-10", "99213 1123F", &[]),
            claim("y-2", "patient-y1", "2025-06-10", "99213", &[]),
            claim("y-3", "patient-y2", "2025-02-10", "99213 1123F-8P", &[]),
        ],
    )
    .await;
    let period = |start: &str, end: &str| pb::GetPerformanceRequest {
        measure_id: "047".into(),
        period_start: start.into(),
        period_end: end.into(),
        ..Default::default()
    };

    let first_quarter = app
        .quality_measures
        .get_performance(period("2025-01-01", "2025-03-31"))
        .await
        .unwrap()
        .into_inner();
    let default_year = app
        .quality_measures
        .get_performance(pb::GetPerformanceRequest {
            measure_id: "047".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // patient-y1's unit runs into June: not wholly in the first quarter.
    assert_eq!(counts(&first_quarter), (1, 0, 1, 0, 0, 0));
    assert_eq!(counts(&report(&mut app, "047").await), (2, 1, 1, 0, 0, 0));
    // Without a period, the server's current calendar year.
    let year = jiff::ZonedDateTime::now().date().year();
    assert_eq!(default_year.period_start, format!("{year}-01-01"));
}

#[tokio::test]
async fn care_gaps_list_the_units_to_close_with_their_encounters_and_codes() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim("g-1", "patient-g1", "2025-03-03", "99213", &[]),
            claim("g-2", "patient-g1", "2025-04-03", "99214", &[]),
            claim("g-3", "patient-g2", "2025-03-03", "99213 1123F-8P", &[]),
            claim("g-4", "patient-g3", "2025-03-03", "99213 1123F", &[]),
        ],
    )
    .await;
    let page = |token: String| pb::ListCareGapsRequest {
        measure_id: "047".into(),
        tin: TIN.into(),
        period_start: "2025-01-01".into(),
        period_end: "2025-12-31".into(),
        page_size: 1,
        page_token: token,
        ..Default::default()
    };

    let mut gaps = Vec::new();
    let mut token = String::new();
    loop {
        let answer = app
            .quality_measures
            .list_care_gaps(page(token))
            .await
            .expect("a page")
            .into_inner();
        assert_eq!(answer.total_size, 2);
        gaps.extend(answer.gaps);
        token = answer.next_page_token;
        if token.is_empty() {
            break;
        }
    }

    let mut found: Vec<(pb::GapKind, Vec<String>)> = gaps
        .iter()
        .map(|gap| {
            let ids = gap
                .encounters
                .iter()
                .map(|e| e.encounter_id.clone())
                .collect();
            (gap.kind(), ids)
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                pb::GapKind::Unreported,
                vec!["g-1".to_string(), "g-2".to_string()]
            ),
            (pb::GapKind::PoorResult, vec!["g-3".to_string()]),
        ]
    );
    let closing: Vec<&str> = gaps[0]
        .closing_options
        .iter()
        .flat_map(|option| option.quality_codes.iter().map(|code| code.code.as_str()))
        .collect();
    for code in ["1123F", "1124F", "G9692"] {
        assert!(closing.contains(&code), "{code} not in {closing:?}");
    }
    let bad = app
        .quality_measures
        .list_care_gaps(page("not-a-token".into()))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_measurement_set_is_the_qpp_submission_of_one_provider_and_year() {
    let mut app = spawn_cms_app().await;
    record(
        &mut app,
        vec![
            claim(
                "m-1",
                "patient-m1",
                "2025-03-03",
                "99213 1123F G9903 1036F",
                &[],
            ),
            claim("m-2", "patient-m2", "2025-03-03", "99213 1123F-8P", &[]),
            // The built-in measures are not QPP measures.
            pb::Encounter {
                diagnoses: vec!["C50.911".into()],
                ..claim("m-3", "patient-m3", "2025-03-03", "99213 1125F", &[])
            },
        ],
    )
    .await;

    let answer = app
        .quality_measures
        .export_measurement_set(pb::ExportMeasurementSetRequest {
            tin: TIN.into(),
            npi: NPI.into(),
            performance_year: 2025,
        })
        .await
        .expect("a measurement set")
        .into_inner();

    let set: serde_json::Value = serde_json::from_str(&answer.measurement_set_json).unwrap();
    assert_eq!(set["category"], "quality");
    assert_eq!(set["submissionMethod"], "claims");
    assert_eq!(set["performanceStart"], "2025-01-01");
    assert_eq!(set["submission"]["taxpayerIdentificationNumber"], TIN);
    assert_eq!(set["submission"]["nationalProviderIdentifier"], NPI);
    let measurements = set["measurements"].as_array().unwrap();
    let ids: Vec<&str> = measurements
        .iter()
        .map(|m| m["measureId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["047", "226"]);
    assert_eq!(answer.measurements, 2);
    let advance_care = &measurements[0]["value"];
    assert_eq!(advance_care["performanceMet"], 1);
    assert_eq!(advance_care["performanceNotMet"], 1);
    // m-3 is a visit of a patient of 70 too, unreported.
    assert_eq!(advance_care["eligiblePopulation"], 3);
    assert_eq!(advance_care["isEndToEndReported"], false);
    // Every visit of a patient aged 12 or more is in 226's reporting stratum.
    let strata = measurements[1]["value"]["strata"].as_array().unwrap();
    assert_eq!(strata[0]["stratum"], "reporting");
    assert_eq!(strata[0]["eligiblePopulation"], 3);
    assert_eq!(strata[0]["performanceMet"], 1);

    let bad = app
        .quality_measures
        .export_measurement_set(pb::ExportMeasurementSetRequest {
            tin: "12".into(),
            npi: String::new(),
            performance_year: 0,
        })
        .await
        .unwrap_err();
    crate::helpers::assert_invalid_field(&bad, "tin");
    crate::helpers::assert_invalid_field(&bad, "npi");
    crate::helpers::assert_invalid_field(&bad, "performance_year");
}

#[tokio::test]
async fn a_tin_is_required_and_checked() {
    let mut app = spawn_cms_app().await;
    for (tin, what) in [("", "required"), ("12-34", "nine digits")] {
        let refused = app
            .quality_measures
            .record_encounter(crate::quality_fixtures::record(pb::Encounter {
                tin: tin.into(),
                ..claim("x-1", "patient-x", "2025-03-03", "99213", &[])
            }))
            .await
            .unwrap_err();
        let violation = crate::helpers::assert_invalid_field(&refused, "encounter.tin");
        assert!(violation.contains(what), "{violation}");
    }
}

#[tokio::test]
async fn cptd_export_writes_the_same_measurement_set_from_a_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let mut config = cms_config();
    config.in_memory = false;
    config.data_dir = data.path().to_path_buf();
    let mut app = spawn_app_with(config.clone()).await;
    record(
        &mut app,
        vec![
            claim("c-1", "patient-c1", "2025-03-03", "99213 1123F", &[]),
            claim("c-2", "patient-c2", "2025-03-03", "99213 G9903", &[]),
        ],
    )
    .await;
    let served = app
        .quality_measures
        .export_measurement_set(pb::ExportMeasurementSetRequest {
            tin: TIN.into(),
            npi: NPI.into(),
            performance_year: 2025,
        })
        .await
        .unwrap()
        .into_inner();
    app.stop().await.expect("stopped");

    let mut arguments = vec![
        "export".to_string(),
        "--tin".into(),
        TIN.into(),
        "--npi".into(),
        NPI.into(),
        "--year".into(),
        "2025".into(),
        "--data-dir".into(),
        data.path().display().to_string(),
    ];
    for file in &config.measure_files {
        arguments.push("--measures".into());
        arguments.push(file.display().to_string());
    }
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    let (status, stdout, stderr) = crate::binary::run_to_end(&arguments);

    assert!(status.success(), "{stderr}");
    let offline: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    let online: serde_json::Value = serde_json::from_str(&served.measurement_set_json).unwrap();
    assert_eq!(offline, online);
    assert_eq!(offline["measurements"].as_array().unwrap().len(), 2);

    // Without the server's measure files the export is refused, and the data
    // directory keeps what it counted.
    let counted = || {
        let database = rusqlite::Connection::open(data.path().join("encounters.sqlite3")).unwrap();
        database
            .query_row("SELECT count(*) FROM measure_versions", [], |row| {
                row.get::<_, i64>(0)
            })
            .unwrap()
    };
    let before = counted();
    let (status, _, stderr) = crate::binary::run_to_end(&arguments[..9]);
    assert!(!status.success());
    assert!(
        stderr.contains("024, 047, 145, 226, 236, 406") && stderr.contains("--measures"),
        "{stderr}"
    );
    assert_eq!(counted(), before);
}
