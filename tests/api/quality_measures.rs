//! ListMeasures and GetMeasure.

use cptd::{config::Config, pb};

use crate::helpers::{assert_invalid_field, spawn_app, spawn_app_with};

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/measures")
        .join(name)
}

#[tokio::test]
async fn the_built_in_measures_are_listed_with_their_rules() {
    let mut app = spawn_app().await;

    let listed = app
        .quality_measures
        .list_measures(pb::ListMeasuresRequest::default())
        .await
        .expect("ListMeasures answers")
        .into_inner();

    let ids: Vec<&str> = listed.measures.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["pain-intensity-quantified", "pain-plan-of-care"]);
    assert_eq!(listed.total_size, 2);
    assert!(listed.next_page_token.is_empty());
    let plan = &listed.measures[1];
    assert!(plan.reference.contains("#144"), "{}", plan.reference);
    assert_eq!(plan.strata.len(), 1);
    assert_eq!(plan.calculation_type, "visit");
    let stratum = &plan.strata[0];
    assert_eq!(stratum.name, "");
    assert!(
        stratum.eligibility.contains("99202-99205, 99211-99215")
            && stratum
                .eligibility
                .contains("also reporting 1125F (without a performance modifier)"),
        "{}",
        stratum.eligibility
    );
    assert!(plan.rules.iter().any(|rule| rule.contains("0521F with 8P")));
}

#[tokio::test]
async fn pages_follow_tokens() {
    let mut config = Config::for_tests();
    config.measure_files = vec![fixture("cms-shaped.json")];
    let mut app = spawn_app_with(config).await;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .quality_measures
            .list_measures(pb::ListMeasuresRequest {
                page_size: 3,
                page_token: token.clone(),
            })
            .await
            .expect("a page")
            .into_inner();
        assert_eq!(page.total_size, 7);
        seen.extend(page.measures.into_iter().map(|m| m.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "001",
            "039",
            "047",
            "226",
            "418",
            "pain-intensity-quantified",
            "pain-plan-of-care"
        ]
    );
}

#[tokio::test]
async fn get_measure_answers_one_or_not_found() {
    let mut app = spawn_app().await;

    let measure = app
        .quality_measures
        .get_measure(pb::GetMeasureRequest {
            measure_id: "pain-intensity-quantified".into(),
        })
        .await
        .expect("a built-in measure")
        .into_inner();
    assert_eq!(measure.title, "Pain intensity quantified (cancer visits)");
    let types: Vec<pb::PerformanceOptionType> = measure.strata[0]
        .performance_options
        .iter()
        .map(|option| option.option_type())
        .collect();
    assert!(types.contains(&pb::PerformanceOptionType::DenominatorException));

    let missing = app
        .quality_measures
        .get_measure(pb::GetMeasureRequest {
            measure_id: "no-such-measure".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let empty = app
        .quality_measures
        .get_measure(pb::GetMeasureRequest::default())
        .await
        .unwrap_err();
    assert_invalid_field(&empty, "measure_id");
}

#[tokio::test]
async fn a_bad_measure_file_stops_the_server_naming_every_problem() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config::for_tests();
    config.measure_files = vec![fixture("refused.json")];

    let error = cptd::server::run(listener, config, std::future::pending())
        .await
        .expect_err("the server refuses to start");

    let text = error.to_string();
    assert!(text.contains("bad-1") && text.contains("bad-2"), "{text}");
    assert!(text.contains("procedureCodes[0].code"), "{text}");
}

#[test]
fn check_loads_measure_files_offline_as_the_server_would() {
    let good = fixture("cms-shaped.json");
    let bad = fixture("refused.json");

    let (good_status, good_out, _) =
        crate::binary::run_to_end(&["check", "--measures", good.to_str().unwrap()]);
    let (bad_status, _, bad_err) =
        crate::binary::run_to_end(&["check", "--measures", bad.to_str().unwrap()]);
    let (both_status, _, both_err) = crate::binary::run_to_end(&[
        "check",
        "--measures",
        good.to_str().unwrap(),
        "--measures",
        bad.to_str().unwrap(),
    ]);

    assert!(good_status.success());
    // The fixture's five measures and the two built in.
    assert!(good_out.starts_with("ok: 7 measures"), "{good_out}");
    assert!(!bad_status.success());
    // The same problems the server refuses to start with, every one named
    // (bad-2 also lacks a calculation type cptd could know).
    assert!(bad_err.contains("7 problem(s)"), "{bad_err}");
    assert!(bad_err.contains("calculationType"), "{bad_err}");
    assert!(
        bad_err.contains("bad-1") && bad_err.contains("bad-2"),
        "{bad_err}"
    );
    assert!(bad_err.contains("procedureCodes[0].code"), "{bad_err}");
    // One bad file refuses the load, whatever else is good.
    assert!(!both_status.success());
    assert!(both_err.contains("7 problem(s)"), "{both_err}");
}

#[tokio::test]
async fn category_ii_codes_name_their_measures() {
    let mut app = spawn_app().await;

    let code = app
        .code_lookup
        .get_code(pb::GetCodeRequest {
            code: "1125F".into(),
            as_of: "2025-06-01".into(),
        })
        .await
        .expect("1125F is built in")
        .into_inner();

    assert_eq!(
        code.measure_ids,
        ["pain-intensity-quantified", "pain-plan-of-care"]
    );
}
