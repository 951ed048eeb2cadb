//! GetPerformance: counts, rates (absent when undefined), the inclusive period,
//! providers, and one report per stratum.

use cptd::{config::Config, pb};

use crate::{
    helpers::{assert_invalid_field, spawn_app, spawn_app_with},
    quality_fixtures::{cancer_visit, code, performance, performance_report, record},
};

async fn record_all(app: &mut crate::helpers::TestApp, encounters: Vec<pb::Encounter>) {
    for encounter in encounters {
        app.quality_measures
            .record_encounter(record(encounter))
            .await
            .expect("recorded");
    }
}

#[tokio::test]
async fn counts_and_rates_follow_the_outcomes() {
    let mut app = spawn_app().await;
    record_all(
        &mut app,
        vec![
            cancer_visit("p-1", "99213 1125F 0521F"),
            cancer_visit("p-2", "99213 1125F 0521F"),
            cancer_visit("p-3", "99213 1125F 0521F-8P"),
            cancer_visit("p-4", "99213 1125F 0521F-2P"),
            cancer_visit("p-5", "99213 1125F"),
            cancer_visit("p-6", "99213 1126F"),
        ],
    )
    .await;

    let plan = performance_report(&mut app.quality_measures, "pain-plan-of-care").await;

    assert_eq!(plan.stratum, "");
    assert!(plan.strata.is_empty());
    assert_eq!(
        (
            plan.eligible_population,
            plan.met,
            plan.not_met,
            plan.exceptions,
            plan.unreported,
            plan.exclusions
        ),
        (5, 2, 1, 1, 1, 0)
    );
    assert_eq!(plan.data_completeness, Some(4.0 / 5.0));
    assert_eq!(plan.performance_rate, Some(2.0 / 3.0));

    let intensity =
        performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!((intensity.eligible_population, intensity.met), (6, 6));
}

#[tokio::test]
async fn rates_with_a_zero_divisor_are_absent() {
    let mut app = spawn_app().await;
    let empty = performance_report(&mut app.quality_measures, "pain-plan-of-care").await;
    assert_eq!(empty.eligible_population, 0);
    assert_eq!(empty.data_completeness, None);
    assert_eq!(empty.performance_rate, None);

    record_all(&mut app, vec![cancer_visit("z-1", "99213 1125F")]).await;
    let incomplete = performance_report(&mut app.quality_measures, "pain-plan-of-care").await;
    assert_eq!(incomplete.eligible_population, 1);
    assert_eq!(incomplete.data_completeness, Some(0.0));
    assert_eq!(incomplete.performance_rate, None);
}

#[tokio::test]
async fn the_period_includes_both_ends_and_providers_are_apart() {
    let mut app = spawn_app().await;
    let on = |id: &str, date: &str, provider: &str| pb::Encounter {
        service_date: date.into(),
        provider_id: provider.into(),
        ..cancer_visit(id, "99213 1126F")
    };
    record_all(
        &mut app,
        vec![
            on("d-1", "2025-01-31", "npi-a"),
            on("d-2", "2025-02-01", "npi-a"),
            on("d-3", "2025-02-28", "npi-b"),
            on("d-4", "2025-03-01", "npi-a"),
        ],
    )
    .await;
    let february = |provider: &str| pb::GetPerformanceRequest {
        measure_id: "pain-intensity-quantified".into(),
        provider_id: provider.into(),
        period_start: "2025-02-01".into(),
        period_end: "2025-02-28".into(),
        tin: String::new(),
    };

    let all = app
        .quality_measures
        .get_performance(february(""))
        .await
        .unwrap()
        .into_inner();
    let a = app
        .quality_measures
        .get_performance(february("npi-a"))
        .await
        .unwrap()
        .into_inner();
    let nobody = app
        .quality_measures
        .get_performance(february("npi-z"))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(all.met, 2);
    assert_eq!((a.met, a.provider_id.as_str()), (1, "npi-a"));
    assert_eq!(nobody.eligible_population, 0);
}

#[tokio::test]
async fn a_multi_strata_measure_reports_each_stratum_and_the_overall_by_its_algorithm() {
    let mut config = Config::for_tests();
    config.measure_files = vec![
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/measures/cms-shaped.json"),
    ];
    let mut app = spawn_app_with(config).await;
    let visit = |id: &str, codes: &str| pb::Encounter {
        codes: codes.split_whitespace().map(code).collect(),
        patient_age: Some(40),
        ..cancer_visit(id, "")
    };
    record_all(
        &mut app,
        vec![
            visit("t-1", "99213 G9902 G9906 1036F"),
            visit("t-2", "99213 G9903"),
            visit("t-3", "99213 G9902 G9908 G0029"),
        ],
    )
    .await;

    let report = performance_report(&mut app.quality_measures, "226").await;

    let strata: Vec<(&str, i64, i64, i64)> = report
        .strata
        .iter()
        .map(|s| (s.stratum.as_str(), s.eligible_population, s.met, s.not_met))
        .collect();
    // Only the tobacco users (G9902) are in the performance stratum.
    assert_eq!(
        strata,
        [
            ("reporting", 3, 3, 0),
            ("performance", 2, 1, 1),
            ("combinedPopulations", 3, 1, 1)
        ]
    );
    // 226 is `split`: completeness of the reporting stratum, the rate of the
    // performance stratum, and no counts of its own.
    assert_eq!(report.overall_algorithm, "split");
    assert_eq!(report.stratum, "");
    assert_eq!(report.eligible_population, 0);
    assert_eq!(report.data_completeness, Some(1.0));
    assert_eq!(report.performance_rate, Some(0.5));
}

#[tokio::test]
async fn bad_requests_are_named_and_unknown_measures_not_found() {
    let mut app = spawn_app().await;
    let status = app
        .quality_measures
        .get_performance(pb::GetPerformanceRequest {
            measure_id: String::new(),
            provider_id: String::new(),
            period_start: "2025-02-30".into(),
            period_end: String::new(),
            tin: "12345".into(),
        })
        .await
        .unwrap_err();
    assert_invalid_field(&status, "measure_id");
    assert_invalid_field(&status, "period_start");
    assert_invalid_field(&status, "period_end");
    assert_invalid_field(&status, "tin");

    let backwards = app
        .quality_measures
        .get_performance(pb::GetPerformanceRequest {
            period_start: "2025-03-01".into(),
            period_end: "2025-02-01".into(),
            ..performance("pain-plan-of-care")
        })
        .await
        .unwrap_err();
    assert_invalid_field(&backwards, "period_end");

    let unknown = app
        .quality_measures
        .get_performance(performance("nope"))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}
