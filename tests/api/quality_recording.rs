//! RecordEncounter: outcomes, validation with field paths, warnings, strict
//! codes, idempotency (also under a race), conflicts and replacement.

use cptd::{config::Config, pb};

use crate::{
    helpers::{assert_invalid_field, spawn_app, spawn_app_with, violated_fields},
    quality_fixtures::{cancer_visit, code, outcome_of, performance_report, record},
};

#[tokio::test]
async fn an_encounter_is_judged_under_every_measure() {
    let mut app = spawn_app().await;

    let response = app
        .quality_measures
        .record_encounter(record(cancer_visit("enc-1", "99213 1125F 0521F")))
        .await
        .expect("a good encounter is recorded")
        .into_inner();

    assert_eq!(response.encounter_id, "enc-1");
    assert!(!response.duplicate);
    assert!(response.warnings.is_empty(), "{:?}", response.warnings);
    assert_eq!(response.outcomes.len(), 2);
    assert_eq!(
        outcome_of(&response, "pain-intensity-quantified"),
        pb::Outcome::PerformanceMet
    );
    assert_eq!(
        outcome_of(&response, "pain-plan-of-care"),
        pb::Outcome::PerformanceMet
    );
    assert!(response.outcomes.iter().all(|o| o.stratum.is_empty()));
}

#[tokio::test]
async fn a_missing_field_is_named_in_the_outcome() {
    let mut app = spawn_app().await;
    let mut encounter = cancer_visit("enc-no-dx", "99213 1125F");
    encounter.diagnoses.clear();

    let response = app
        .quality_measures
        .record_encounter(record(encounter))
        .await
        .unwrap()
        .into_inner();

    let outcome = &response.outcomes[0];
    assert_eq!(outcome.outcome(), pb::Outcome::NotInDenominator);
    assert_eq!(outcome.missing_field, "diagnoses");
    assert!(outcome.reason.contains("diagnoses"), "{}", outcome.reason);
}

#[tokio::test]
async fn every_problem_is_named_by_its_field_path_and_nothing_is_stored() {
    let mut app = spawn_app().await;
    let mut encounter = cancer_visit("", "99213 1125F 0521F");
    encounter.patient_id = "  ".into();
    encounter.service_date = "2025-02-30".into();
    encounter.place_of_service = "office".into();
    encounter.patient_age = Some(-3);
    encounter.patient_sex = "X".into();
    encounter.codes = vec![
        code("99213-8P"),
        code("0521F-8P-1P"),
        code("12345678"),
        code("1125F-ZZZ"),
    ];
    encounter.diagnoses = vec!["C50.911".into(), "not a dx".into()];

    let status = app
        .quality_measures
        .record_encounter(record(encounter))
        .await
        .unwrap_err();

    let fields = violated_fields(&status);
    for field in [
        "encounter.encounter_id",
        "encounter.patient_id",
        "encounter.service_date",
        "encounter.place_of_service",
        "encounter.patient_age",
        "encounter.patient_sex",
        "encounter.codes[0].modifiers[0]",
        "encounter.codes[1].modifiers[1]",
        "encounter.codes[2].code",
        "encounter.codes[3].modifiers[0]",
        "encounter.diagnoses[1]",
    ] {
        assert!(
            fields.contains(&field.to_string()),
            "{field} not in {fields:?}"
        );
    }
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let description = assert_invalid_field(&status, "encounter.codes[0].modifiers[0]");
    assert!(description.contains("Category II"), "{description}");

    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!(report.eligible_population, 0);
}

#[tokio::test]
async fn deleted_future_and_unknown_codes_are_judged_on_the_service_date() {
    let mut app = spawn_app().await;
    let mut encounter = cancer_visit("enc-dates", "99213 1125F");
    encounter.service_date = "2099-01-01".into();
    let future = app
        .quality_measures
        .record_encounter(record(encounter))
        .await
        .unwrap_err();
    assert!(assert_invalid_field(&future, "encounter.service_date").contains("future"));

    // 62311 was deleted in 2017 (replaced by 62321-62323); 64466 began in 2025.
    let encounter = pb::Encounter {
        service_date: "2024-06-01".into(),
        ..cancer_visit("enc-old", "99213 62311 64466 1125F")
    };
    let refused = app
        .quality_measures
        .record_encounter(record(encounter))
        .await
        .unwrap_err();
    let deleted = assert_invalid_field(&refused, "encounter.codes[1].code");
    assert!(deleted.contains("deleted"), "{deleted}");
    let early = assert_invalid_field(&refused, "encounter.codes[2].code");
    assert!(early.contains("takes effect"), "{early}");

    let unknown = app
        .quality_measures
        .record_encounter(record(cancer_visit("enc-unknown", "99213 1125F 99999")))
        .await
        .expect("an unknown but well-formed code is accepted");
    let judged_by = unknown
        .metadata()
        .get("cptd-registry-version")
        .expect("the answer names the code set that judged the codes")
        .to_str()
        .unwrap()
        .to_string();
    let looked_up = app
        .code_lookup
        .get_code(pb::GetCodeRequest {
            code: "99213".into(),
            as_of: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        looked_up.metadata().get("cptd-registry-version").unwrap(),
        judged_by.as_str()
    );
    let unknown = unknown.into_inner();
    assert_eq!(unknown.warnings.len(), 1);
    assert!(
        unknown.warnings[0].starts_with("encounter.codes[2].code"),
        "{:?}",
        unknown.warnings
    );
}

#[tokio::test]
async fn strict_codes_refuses_unknown_codes() {
    let mut config = Config::for_tests();
    config.strict_codes = true;
    let mut app = spawn_app_with(config).await;

    let status = app
        .quality_measures
        .record_encounter(record(cancer_visit("enc-strict", "99213 1125F 99999")))
        .await
        .unwrap_err();

    let description = assert_invalid_field(&status, "encounter.codes[2].code");
    assert!(description.contains("--strict-codes"), "{description}");
}

#[tokio::test]
async fn the_same_encounter_twice_is_a_duplicate_counted_once() {
    let mut app = spawn_app().await;
    let encounter = cancer_visit("enc-dup", "99213 1125F-8P");

    let first = app
        .quality_measures
        .record_encounter(record(encounter.clone()))
        .await
        .unwrap()
        .into_inner();
    // The same content written differently: case and white space normalise.
    let mut again = encounter;
    again.codes[1].code = " 1125f ".into();
    again.diagnoses = vec!["c50911".into()];
    let second = app
        .quality_measures
        .record_encounter(record(again))
        .await
        .unwrap()
        .into_inner();

    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.outcomes, second.outcomes);
    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!((report.eligible_population, report.not_met), (1, 1));
}

#[tokio::test]
async fn racing_identical_sends_store_and_count_once() {
    let app = spawn_app().await;
    let encounter = cancer_visit("enc-race", "99213 1126F");

    let calls = (0..16).map(|_| {
        let mut client = app.quality_measures.clone();
        let request = record(encounter.clone());
        tokio::spawn(async move { client.record_encounter(request).await })
    });
    let mut duplicates = 0;
    let mut firsts = 0;
    for call in calls {
        let response = call
            .await
            .unwrap()
            .expect("every send succeeds")
            .into_inner();
        if response.duplicate {
            duplicates += 1;
        } else {
            firsts += 1;
        }
    }

    assert_eq!((firsts, duplicates), (1, 15));
    let report = performance_report(
        &mut app.quality_measures.clone(),
        "pain-intensity-quantified",
    )
    .await;
    assert_eq!((report.eligible_population, report.met), (1, 1));
}

#[tokio::test]
async fn different_content_under_a_taken_id_is_already_exists_unless_replaced() {
    let mut app = spawn_app().await;
    app.quality_measures
        .record_encounter(record(cancer_visit("enc-fix", "99213 1125F-8P")))
        .await
        .unwrap();

    let conflict = app
        .quality_measures
        .record_encounter(record(cancer_visit("enc-fix", "99213 1125F")))
        .await
        .unwrap_err();
    assert_eq!(conflict.code(), tonic::Code::AlreadyExists);
    assert!(
        conflict.message().contains("replace"),
        "{}",
        conflict.message()
    );

    let mut corrected = record(cancer_visit("enc-fix", "99213 1125F"));
    corrected.replace = true;
    let replaced = app
        .quality_measures
        .record_encounter(corrected.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(!replaced.duplicate);
    // Sending the correction again changes nothing.
    let again = app
        .quality_measures
        .record_encounter(corrected)
        .await
        .unwrap()
        .into_inner();
    assert!(again.duplicate);

    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!(
        (report.eligible_population, report.met, report.not_met),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn limits_are_named() {
    let mut app = spawn_app().await;
    let mut encounter = cancer_visit(&"x".repeat(129), "99213");
    encounter.codes = (0..101).map(|_| code("99213")).collect();
    encounter.diagnoses = (0..51).map(|_| "C50.911".to_string()).collect();

    let status = app
        .quality_measures
        .record_encounter(record(encounter))
        .await
        .unwrap_err();

    assert!(assert_invalid_field(&status, "encounter.encounter_id").contains("128"));
    assert!(assert_invalid_field(&status, "encounter.codes").contains("100"));
    assert!(assert_invalid_field(&status, "encounter.diagnoses").contains("50"));
}

#[tokio::test]
async fn a_missing_encounter_is_named() {
    let mut app = spawn_app().await;
    let status = app
        .quality_measures
        .record_encounter(pb::RecordEncounterRequest::default())
        .await
        .unwrap_err();
    assert_invalid_field(&status, "encounter");
}
