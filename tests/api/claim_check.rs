//! `ClaimCheck/CheckClaim` over the built-in CMS extracts: every edit kind,
//! each bypass rule, each MUE adjudication, date-bounded pairs, a clean claim,
//! quality gaps and bad input.

use cptd::pb::{
    CheckClaimRequest, CheckClaimResponse, Claim, ClaimLine, Finding, FindingKind, Severity,
    claim_check_client::ClaimCheckClient,
};
use proptest::prelude::*;
use tonic::transport::Channel;

use crate::helpers::{assert_invalid_field, spawn_app};

/// A line of `code` with `modifiers`, one unit, pointing at the first diagnosis.
pub fn line(code: &str, modifiers: &[&str]) -> ClaimLine {
    ClaimLine {
        code: code.to_string(),
        modifiers: modifiers
            .iter()
            .map(|modifier| modifier.to_string())
            .collect(),
        units: 1,
        diagnosis_pointers: vec![1],
    }
}

/// The same line with `units`.
pub fn units(mut line: ClaimLine, units: i32) -> ClaimLine {
    line.units = units;
    line
}

/// A claim on `date` with `lines` and a lumbar radiculopathy diagnosis.
pub fn claim_on(date: &str, lines: Vec<ClaimLine>) -> Claim {
    Claim {
        service_date: date.to_string(),
        place_of_service: "11".to_string(),
        provider_id: "1234567893".to_string(),
        tin: "12-3456789".to_string(),
        patient_age: Some(58),
        patient_sex: "F".to_string(),
        diagnoses: vec!["M54.16".to_string()],
        lines,
    }
}

/// The same, on a day in the built-in extracts' quarter.
pub fn claim(lines: Vec<ClaimLine>) -> Claim {
    claim_on("2024-08-01", lines)
}

pub async fn check(client: &mut ClaimCheckClient<Channel>, claim: Claim) -> CheckClaimResponse {
    client
        .check_claim(CheckClaimRequest { claim: Some(claim) })
        .await
        .expect("CheckClaim answers")
        .into_inner()
}

/// The findings of `kind`.
pub fn of_kind(response: &CheckClaimResponse, kind: FindingKind) -> Vec<Finding> {
    response
        .findings
        .iter()
        .filter(|finding| finding.kind() == kind)
        .cloned()
        .collect()
}

/// The one finding of `kind`; panics, listing them all, otherwise.
pub fn only(response: &CheckClaimResponse, kind: FindingKind) -> Finding {
    let found = of_kind(response, kind);
    assert_eq!(
        found.len(),
        1,
        "expected one {kind:?}: {:#?}",
        response.findings
    );
    found.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_clean_claim_has_no_findings_and_no_gaps() {
    // Arrange: a transforaminal injection with its add-on level.
    let mut app = spawn_app().await;
    let clean = claim(vec![line("64483", &[]), line("64484", &[])]);

    // Act
    let response = app
        .claim_check
        .check_claim(CheckClaimRequest { claim: Some(clean) })
        .await
        .unwrap();

    // Assert
    let version = response
        .metadata()
        .get("cptd-claim-edits-version")
        .expect("the editions are named")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        version.contains("ptp=2024Q3 pain-management extract"),
        "{version}"
    );
    assert!(response.metadata().get("cptd-registry-version").is_some());
    let response = response.into_inner();
    assert!(response.findings.is_empty(), "{:#?}", response.findings);
    assert!(response.quality_gaps.is_empty());
}

#[tokio::test]
async fn a_pair_with_indicator_0_is_denied_and_no_modifier_bypasses_it() {
    let mut app = spawn_app().await;

    let response = check(
        &mut app.claim_check,
        claim(vec![line("20610", &[]), line("64463", &["59"])]),
    )
    .await;

    let finding = only(&response, FindingKind::PtpPair);
    assert_eq!(finding.severity(), Severity::Deny);
    assert_eq!(finding.lines, [1, 0], "the denied column-2 line first");
    assert!(!finding.bypassable);
    assert!(finding.bypass_modifiers.is_empty());
    assert!(!finding.anatomic_modifiers_bypass);
    assert_eq!(finding.bypassed_by, "");
    assert_eq!(finding.rule, "NCCI PTP 20610/64463, modifier indicator 0");
    let source = finding.source.expect("the row is named");
    assert_eq!(
        source.file,
        "built-in ncci-ptp-practitioner-2024q3-pain.csv"
    );
    assert_eq!(source.edition, "2024Q3 pain-management extract");
    let row = std::fs::read_to_string("data/cms/ncci-ptp-practitioner-2024q3-pain.csv")
        .unwrap()
        .lines()
        .nth(source.row as usize - 1)
        .unwrap()
        .to_string();
    assert!(row.starts_with("20610,64463,99991231,0,"), "{row}");
}

#[tokio::test]
async fn a_pair_with_indicator_1_is_denied_without_a_modifier_and_says_which_bypass() {
    let mut app = spawn_app().await;

    let response = check(
        &mut app.claim_check,
        claim(vec![line("64483", &[]), line("77003", &[])]),
    )
    .await;

    let finding = only(&response, FindingKind::PtpPair);
    assert_eq!(finding.severity(), Severity::Deny);
    assert!(finding.bypassable);
    assert_eq!(
        finding.bypass_modifiers,
        ["59", "XE", "XS", "XP", "XU"],
        "25 bypasses only pairs with a visit"
    );
    assert!(finding.anatomic_modifiers_bypass);
}

#[tokio::test]
async fn each_distinct_service_modifier_turns_the_denial_into_a_review() {
    let mut app = spawn_app().await;
    for modifier in ["59", "XE", "XS", "XP", "XU"] {
        let response = check(
            &mut app.claim_check,
            claim(vec![line("64483", &[]), line("77003", &[modifier])]),
        )
        .await;

        let finding = only(&response, FindingKind::PtpPair);
        assert_eq!(finding.severity(), Severity::Review, "{modifier}");
        assert_eq!(finding.bypassed_by, modifier);
        assert!(finding.message.contains("record"), "{}", finding.message);
    }
}

#[tokio::test]
async fn different_anatomic_sites_bypass_a_pair_and_the_same_site_does_not() {
    let mut app = spawn_app().await;

    let sides = check(
        &mut app.claim_check,
        claim(vec![line("20610", &["RT"]), line("64483", &["LT"])]),
    )
    .await;
    let same_side = check(
        &mut app.claim_check,
        claim(vec![line("20610", &["RT"]), line("64483", &["RT"])]),
    )
    .await;

    // CMS lists this pair in both orders; the lines get one finding.
    let finding = only(&sides, FindingKind::PtpPair);
    assert_eq!(finding.rule, "NCCI PTP 20610/64483, modifier indicator 1");
    assert_eq!(finding.severity(), Severity::Review);
    assert_eq!(finding.bypassed_by, "LT");
    assert_eq!(
        only(&same_side, FindingKind::PtpPair).severity(),
        Severity::Deny
    );
}

#[tokio::test]
async fn modifier_25_on_the_visit_bypasses_a_visit_pair_for_review() {
    let mut app = spawn_app().await;

    let without = check(
        &mut app.claim_check,
        claim(vec![line("64483", &[]), line("99213", &[])]),
    )
    .await;
    let with = check(
        &mut app.claim_check,
        claim(vec![line("64483", &[]), line("99213", &["25"])]),
    )
    .await;

    let pair = only(&without, FindingKind::PtpPair);
    assert_eq!(pair.severity(), Severity::Deny);
    assert!(pair.bypass_modifiers.contains(&"25".to_string()));
    let global = only(&without, FindingKind::Modifier25);
    assert_eq!(global.severity(), Severity::Deny);
    assert_eq!(global.lines, [1, 0]);
    assert_eq!(global.bypass_modifiers, ["25"]);
    assert!(!global.anatomic_modifiers_bypass);
    assert!(global.rule.contains("global period 000"), "{}", global.rule);

    let pair = only(&with, FindingKind::PtpPair);
    assert_eq!(pair.severity(), Severity::Review);
    assert_eq!(pair.bypassed_by, "25");
    let global = only(&with, FindingKind::Modifier25);
    assert_eq!(global.severity(), Severity::Review);
    assert_eq!(global.bypassed_by, "25");
}

#[tokio::test]
async fn a_pair_is_checked_only_within_its_dates() {
    // 0228T/62323 was deleted at the end of 2020; 0228T itself in 2023.
    let mut app = spawn_app().await;
    let lines = || vec![line("0228T", &[]), line("62323", &[])];

    let in_force = check(&mut app.claim_check, claim_on("2020-12-31", lines())).await;
    let deleted = check(&mut app.claim_check, claim_on("2021-01-01", lines())).await;

    let finding = only(&in_force, FindingKind::PtpPair);
    assert_eq!(finding.rule, "NCCI PTP 0228T/62323, modifier indicator 0");
    assert!(
        of_kind(&deleted, FindingKind::PtpPair).is_empty(),
        "{deleted:#?}"
    );
}

#[tokio::test]
async fn mai_2_is_absolute_over_the_date_and_mai_3_asks_for_review() {
    let mut app = spawn_app().await;

    // 64483: 1 unit per date, MAI 2, split over two lines.
    let policy = check(
        &mut app.claim_check,
        claim(vec![line("64483", &[]), line("64483", &["XS"])]),
    )
    .await;
    // 64484: 4 units per date, MAI 3.
    let clinical = check(
        &mut app.claim_check,
        claim(vec![
            line("64483", &[]),
            units(line("64484", &[]), 3),
            units(line("64484", &["LT"]), 2),
        ]),
    )
    .await;

    let finding = only(&policy, FindingKind::Mue);
    assert_eq!(finding.severity(), Severity::Deny);
    assert_eq!(finding.lines, [0, 1]);
    assert!(!finding.bypassable);
    assert_eq!(finding.rule, "MUE 64483: 1 unit(s), MAI 2");
    let finding = only(&clinical, FindingKind::Mue);
    assert_eq!(finding.severity(), Severity::Review);
    assert_eq!(finding.lines, [1, 2]);
    assert!(
        finding.message.contains("5 units of 64484"),
        "{}",
        finding.message
    );
    assert!(
        finding
            .source
            .unwrap()
            .file
            .contains("mue-practitioner-2024q3-pain.csv")
    );
}

#[tokio::test]
async fn an_add_on_without_its_primary_is_denied() {
    let mut app = spawn_app().await;

    let alone = check(&mut app.claim_check, claim(vec![line("64494", &[])])).await;
    let with_primary = check(
        &mut app.claim_check,
        claim(vec![line("64493", &[]), line("64494", &[])]),
    )
    .await;
    // G2211 is ZZZ in the fee schedule and absent from the add-on edits.
    let global_only = check(&mut app.claim_check, claim(vec![line("G2211", &[])])).await;

    let finding = only(&alone, FindingKind::AddOnWithoutPrimary);
    assert_eq!(finding.severity(), Severity::Deny);
    assert!(
        finding.message.contains("64490, 64493"),
        "{}",
        finding.message
    );
    assert!(finding.rule.contains("type 1"));
    assert!(of_kind(&with_primary, FindingKind::AddOnWithoutPrimary).is_empty());
    let finding = only(&global_only, FindingKind::AddOnWithoutPrimary);
    assert!(finding.rule.contains("ZZZ"), "{}", finding.rule);
}

#[tokio::test]
async fn modifier_50_against_the_bilateral_indicator_is_denied() {
    let mut app = spawn_app().await;

    // 64615 is already bilateral (indicator 2); 62323's indicator is 9.
    let already = check(&mut app.claim_check, claim(vec![line("64615", &["50"])])).await;
    let never = check(&mut app.claim_check, claim(vec![line("62323", &["50"])])).await;
    let allowed = check(&mut app.claim_check, claim(vec![line("20610", &["50"])])).await;

    assert!(
        only(&already, FindingKind::Bilateral)
            .rule
            .contains("indicator 2")
    );
    assert!(
        only(&never, FindingKind::Bilateral)
            .rule
            .contains("indicator 9")
    );
    assert!(of_kind(&allowed, FindingKind::Bilateral).is_empty());
}

#[tokio::test]
async fn right_and_left_lines_of_an_indicator_1_code_want_one_line_with_50() {
    let mut app = spawn_app().await;

    let response = check(
        &mut app.claim_check,
        claim(vec![line("20610", &["RT"]), line("20610", &["LT"])]),
    )
    .await;

    let finding = only(&response, FindingKind::Bilateral);
    assert_eq!(finding.severity(), Severity::Deny);
    assert_eq!(finding.lines, [1, 0]);
    assert!(
        finding.message.contains("modifier 50"),
        "{}",
        finding.message
    );
}

#[tokio::test]
async fn a_category_ii_code_with_two_units_is_denied() {
    let mut app = spawn_app().await;

    let response = check(
        &mut app.claim_check,
        claim(vec![line("64483", &[]), units(line("1125F", &[]), 2)]),
    )
    .await;

    let finding = only(&response, FindingKind::CategoryIiUnits);
    assert_eq!(finding.lines, [1]);
}

#[tokio::test]
async fn code_status_on_the_date_of_service_is_checked() {
    let mut app = spawn_app().await;

    let response = check(
        &mut app.claim_check,
        claim(vec![
            line("62311", &[]),
            line("64483", &["8P"]),
            line("99417", &[]),
            line("27447", &[]),
        ]),
    )
    .await;

    let status = of_kind(&response, FindingKind::CodeStatus);
    let deleted = status.iter().find(|finding| finding.lines == [0]).unwrap();
    assert_eq!(deleted.severity(), Severity::Deny);
    assert!(
        deleted.message.contains("62322 or 62323"),
        "{}",
        deleted.message
    );
    let not_medicare = status.iter().find(|finding| finding.lines == [2]).unwrap();
    assert!(
        not_medicare.rule.contains("PFS status I"),
        "{not_medicare:?}"
    );
    let unknown = status.iter().find(|finding| finding.lines == [3]).unwrap();
    assert_eq!(unknown.severity(), Severity::Info);
    let modifier = only(&response, FindingKind::PerformanceModifier);
    assert_eq!(modifier.lines, [1]);
    assert!(modifier.message.contains("Category II"));
}

#[tokio::test]
async fn diagnoses_must_be_billable_codes_and_every_line_must_point_at_one() {
    let mut app = spawn_app().await;
    let mut lines = vec![
        line("64483", &[]),
        line("64484", &[]),
        line("77003", &["XU"]),
    ];
    lines[1].diagnosis_pointers = vec![];
    lines[2].diagnosis_pointers = vec![3];
    let mut sent = claim(lines);
    sent.diagnoses = vec!["M54.5".to_string(), "Z99.999".to_string()];

    let response = check(&mut app.claim_check, sent).await;

    let diagnoses = of_kind(&response, FindingKind::Diagnosis);
    assert_eq!(diagnoses.len(), 2, "{diagnoses:#?}");
    let header = diagnoses
        .iter()
        .find(|finding| finding.diagnosis_index == 0)
        .unwrap();
    assert_eq!(header.severity(), Severity::Deny);
    assert_eq!(header.lines, [0]);
    assert!(header.message.contains("M54.50"), "{}", header.message);
    assert!(header.source.as_ref().unwrap().row > 0);
    let unknown = diagnoses
        .iter()
        .find(|finding| finding.diagnosis_index == 1)
        .unwrap();
    assert!(unknown.message.contains("not an ICD-10-CM code"));
    let pointers = of_kind(&response, FindingKind::DiagnosisPointer);
    assert_eq!(pointers.len(), 2, "{pointers:#?}");
    assert!(pointers.iter().any(|finding| finding.lines == [1]));
    assert!(
        pointers
            .iter()
            .any(|finding| finding.lines == [2] && finding.message.contains("diagnosis 3"))
    );
}

#[tokio::test]
async fn a_measure_the_claim_enters_without_a_quality_code_is_a_gap() {
    let mut app = spawn_app().await;
    let mut visit = claim(vec![line("99213", &[])]);
    visit.diagnoses = vec!["C50.911".to_string()];
    let mut reported = claim(vec![line("99213", &[]), line("1125F", &[])]);
    reported.diagnoses = vec!["C50.911".to_string()];

    let unreported = check(&mut app.claim_check, visit).await;
    let half = check(&mut app.claim_check, reported).await;

    let ids: Vec<&str> = unreported
        .quality_gaps
        .iter()
        .map(|gap| gap.measure_id.as_str())
        .collect();
    assert_eq!(ids, ["pain-intensity-quantified"]);
    let gap = &unreported.quality_gaps[0];
    let codes: Vec<(String, Vec<String>)> = gap
        .reporting_options
        .iter()
        .flat_map(|option| &option.quality_codes)
        .map(|code| (code.code.clone(), code.modifiers.clone()))
        .collect();
    assert!(codes.contains(&("1125F".to_string(), vec![])), "{codes:?}");
    assert!(
        codes.contains(&("1125F".to_string(), vec!["8P".to_string()])),
        "{codes:?}"
    );
    assert!(gap.message.contains("1125F"), "{}", gap.message);
    let ids: Vec<&str> = half
        .quality_gaps
        .iter()
        .map(|gap| gap.measure_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["pain-plan-of-care"],
        "1125F reports the first and opens the second"
    );
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_each_field() {
    let mut app = spawn_app().await;
    let mut bad = claim(vec![line("6448", &[]), line("64484", &["toolong"])]);
    bad.lines[1].units = -1;
    bad.lines[1].diagnosis_pointers = vec![13];
    bad.service_date = "2024-02-30".to_string();
    bad.diagnoses = vec!["not a code".to_string()];

    let status = app
        .claim_check
        .check_claim(CheckClaimRequest { claim: Some(bad) })
        .await
        .unwrap_err();
    let no_claim = app
        .claim_check
        .check_claim(CheckClaimRequest { claim: None })
        .await
        .unwrap_err();
    let too_many = app
        .claim_check
        .check_claim(CheckClaimRequest {
            claim: Some(claim(vec![line("64483", &[]); 51])),
        })
        .await
        .unwrap_err();
    let empty = app
        .claim_check
        .check_claim(CheckClaimRequest {
            claim: Some(claim(vec![])),
        })
        .await
        .unwrap_err();

    assert_invalid_field(&status, "claim.lines[0].code");
    assert_invalid_field(&status, "claim.lines[1].modifiers[0]");
    assert!(assert_invalid_field(&status, "claim.lines[1].units").contains("0 to 9999"));
    assert_invalid_field(&status, "claim.lines[1].diagnosis_pointers[0]");
    assert_invalid_field(&status, "claim.service_date");
    assert_invalid_field(&status, "claim.diagnoses[0]");
    assert_invalid_field(&no_claim, "claim");
    assert!(assert_invalid_field(&too_many, "claim.lines").contains("limit of 50"));
    assert_invalid_field(&empty, "claim.lines");
}

fn any_line() -> impl Strategy<Value = ClaimLine> {
    let codes = prop::sample::select(vec![
        "64483", "64484", "64493", "64494", "20610", "62323", "77003", "99213", "1125F", "0521F",
        "0228T", "62311", "G2211", "64615", "27447",
    ]);
    let modifiers = prop::collection::vec(
        prop::sample::select(vec!["25", "50", "59", "XS", "RT", "LT", "8P", "1P", "76"]),
        0..4,
    );
    (
        codes,
        modifiers,
        0i32..6,
        prop::collection::vec(1i32..13, 0..4),
    )
        .prop_map(|(code, modifiers, units, pointers)| ClaimLine {
            code: code.to_string(),
            modifiers: modifiers.into_iter().map(str::to_string).collect(),
            units,
            diagnosis_pointers: pointers,
        })
}

fn any_claim() -> impl Strategy<Value = Claim> {
    let diagnoses = prop::collection::vec(
        prop::sample::select(vec![
            "M54.16", "M54.5", "C50.911", "Z99.999", "M47.816", "A00",
        ]),
        0..5,
    );
    let dates = prop::sample::select(vec!["2019-06-01", "2020-12-31", "2024-08-01", "2026-01-15"]);
    (prop::collection::vec(any_line(), 1..12), diagnoses, dates).prop_map(
        |(lines, diagnoses, date)| Claim {
            diagnoses: diagnoses.into_iter().map(str::to_string).collect(),
            ..claim_on(date, lines)
        },
    )
}

#[test]
fn no_claim_panics_the_check() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(spawn_app());
    proptest!(ProptestConfig::with_cases(64), |(sent in any_claim())| {
        let mut client = app.claim_check.clone();
        let answer = runtime.block_on(
            client.check_claim(CheckClaimRequest { claim: Some(sent) }),
        );
        prop_assert!(answer.is_ok(), "{answer:?}");
        let response = answer.unwrap().into_inner();
        for finding in &response.findings {
            prop_assert!(finding.kind() != FindingKind::Unspecified);
            prop_assert!(finding.severity() != Severity::Unspecified);
            prop_assert!(!finding.message.is_empty());
        }
    });
}

#[tokio::test]
async fn a_category_iii_code_past_its_sunset_is_denied() {
    // Arrange: a practice's code file with a Category III code archived in 2023.
    let directory = tempfile::tempdir().unwrap();
    let codes = directory.path().join("codes.csv");
    std::fs::write(
        &codes,
        "code,descriptor,sunset_date\n0999T,A practice's emerging-technology procedure.,2023-07-01\n",
    )
    .unwrap();
    let mut config = cptd::config::Config::for_tests();
    config.code_files = vec![codes];
    let mut app = crate::helpers::spawn_app_with(config).await;

    // Act
    let before = check(
        &mut app.claim_check,
        claim_on("2023-06-30", vec![line("0999T", &[])]),
    )
    .await;
    let after = check(&mut app.claim_check, claim(vec![line("0999T", &[])])).await;

    // Assert
    assert!(
        of_kind(&before, FindingKind::CodeStatus).is_empty(),
        "{before:#?}"
    );
    let finding = only(&after, FindingKind::CodeStatus);
    assert_eq!(finding.severity(), Severity::Deny);
    assert!(finding.message.contains("sunset"), "{}", finding.message);
}
