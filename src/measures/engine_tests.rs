//! The measure rules, table-driven: both built-in measures, and CMS-shaped
//! fixture measures modelled on MIPS 001, 039, 047, 226 and 418 (diagnosis lists,
//! diagnosis exclusions, age and sex limits, modifier and place-of-service
//! exclusions, multi-code options, several option groups).

use jiff::civil::date;

use super::*;
use crate::codes::CodeValue;

const FIXTURE: &str = include_str!("../../tests/fixtures/measures/cms-shaped.json");

fn fixtures() -> MeasureSet {
    MeasureSet::from_sources(&[("cms-shaped.json", FIXTURE)]).expect("the fixture loads")
}

/// One case: a claim written compactly and the outcome expected per group.
struct Case {
    name: &'static str,
    /// Codes separated by spaces, modifiers after dashes: `99213-GT 1125F-8P`.
    codes: &'static str,
    diagnoses: &'static [&'static str],
    age: Option<u8>,
    sex: Option<Sex>,
    place: Option<&'static str>,
    expected: &'static [(Outcome, Option<EncounterField>)],
}

const IN: Option<EncounterField> = None;

fn claim(case: &Case) -> Claim {
    Claim {
        provider_id: "npi-1".into(),
        tin: None,
        service_date: date(2025, 3, 4),
        place_of_service: case
            .place
            .map(|place| super::PlaceOfService::parse(place).unwrap()),
        patient_age: case.age,
        patient_sex: case.sex,
        codes: case
            .codes
            .split_whitespace()
            .map(|text| {
                let mut parts = text.split('-');
                ReportedCode {
                    code: CodeValue::parse(parts.next().unwrap()).unwrap(),
                    modifiers: parts.map(|m| Modifier::parse(m).unwrap()).collect(),
                    units: 1,
                }
            })
            .collect(),
        diagnoses: case
            .diagnoses
            .iter()
            .map(|d| Diagnosis::parse(d).unwrap())
            .collect(),
    }
}

fn check(measures: &MeasureSet, measure_id: &str, cases: &[Case]) {
    let measure = measures.get(measure_id).expect("the measure is loaded");
    for case in cases {
        let verdicts = evaluate(measure, &claim(case));
        let got: Vec<(Outcome, Option<EncounterField>)> = verdicts
            .iter()
            .map(|verdict| (verdict.outcome, verdict.missing_field()))
            .collect();
        assert_eq!(
            got, case.expected,
            "{measure_id}: {}: {verdicts:#?}",
            case.name
        );
    }
}

fn case(
    name: &'static str,
    codes: &'static str,
    diagnoses: &'static [&'static str],
    expected: &'static [(Outcome, Option<EncounterField>)],
) -> Case {
    Case {
        name,
        codes,
        diagnoses,
        age: None,
        sex: None,
        place: None,
        expected,
    }
}

use EncounterField::{Diagnoses, PatientAge, PatientSex, PlaceOfService};
use Outcome::*;

#[test]
fn pain_intensity_quantified() {
    let cases = [
        case(
            "1125F is met",
            "99213 1125F",
            &["C50.911"],
            &[(PerformanceMet, IN)],
        ),
        case(
            "1126F is met",
            "99205 1126F",
            &["C61"],
            &[(PerformanceMet, IN)],
        ),
        case(
            "8P is not met",
            "99213 1125F-8P",
            &["C50911"],
            &[(PerformanceNotMet, IN)],
        ),
        case(
            "1126F with 8P is not met",
            "99211 1126F-8P",
            &["C50.911"],
            &[(PerformanceNotMet, IN)],
        ),
        case(
            "1P is an exception",
            "99213 1125F-1P",
            &["C50.911"],
            &[(DenominatorException, IN)],
        ),
        case(
            "2P is an exception",
            "99213 1126F-2P",
            &["C50.911"],
            &[(DenominatorException, IN)],
        ),
        case(
            "3P is an exception",
            "99215 1125F-3P",
            &["C50.911"],
            &[(DenominatorException, IN)],
        ),
        case(
            "no quality code is incomplete",
            "99213",
            &["C50.911"],
            &[(DataIncomplete, IN)],
        ),
        case(
            "met wins over an exception, as CMS ranks them",
            "99213 1125F 1126F-2P",
            &["C50.911"],
            &[(PerformanceMet, IN)],
        ),
        case(
            "met wins over not met",
            "99213 1125F 1126F-8P",
            &["C50.911"],
            &[(PerformanceMet, IN)],
        ),
        case(
            "a non-performance modifier still matches",
            "99213 1125F-GT",
            &["C50.911"],
            &[(PerformanceMet, IN)],
        ),
        case(
            "no cancer diagnosis",
            "99213 1125F",
            &["M54.50"],
            &[(NotInDenominator, IN)],
        ),
        case(
            "one cancer diagnosis among others",
            "99213 1125F",
            &["M54.50", "C34.90"],
            &[(PerformanceMet, IN)],
        ),
        case(
            "no visit code",
            "20610 1125F",
            &["C50.911"],
            &[(NotInDenominator, IN)],
        ),
        case(
            "99201 is not an eligible visit",
            "99201 1125F",
            &["C50.911"],
            &[(NotInDenominator, IN)],
        ),
        case(
            "no diagnoses given",
            "99213 1125F",
            &[],
            &[(NotInDenominator, Some(Diagnoses))],
        ),
    ];
    check(
        &MeasureSet::built_in().unwrap(),
        "pain-intensity-quantified",
        &cases,
    );
}

#[test]
fn pain_plan_of_care() {
    let cases = [
        case(
            "plan documented",
            "99213 1125F 0521F",
            &["C50.911"],
            &[(PerformanceMet, IN)],
        ),
        case(
            "plan with 8P",
            "99213 1125F 0521F-8P",
            &["C50.911"],
            &[(PerformanceNotMet, IN)],
        ),
        case(
            "plan with 1P",
            "99213 1125F 0521F-1P",
            &["C50.911"],
            &[(DenominatorException, IN)],
        ),
        case(
            "plan with 2P",
            "99213 1125F 0521F-2P",
            &["C50.911"],
            &[(DenominatorException, IN)],
        ),
        case(
            "plan with 3P",
            "99213 1125F 0521F-3P",
            &["C50.911"],
            &[(DenominatorException, IN)],
        ),
        case(
            "pain present, no plan code",
            "99213 1125F",
            &["C50.911"],
            &[(DataIncomplete, IN)],
        ),
        case(
            "no pain (1126F) is not eligible",
            "99213 1126F 0521F",
            &["C50.911"],
            &[(NotInDenominator, IN)],
        ),
        case(
            "1125F with a modifier is not eligible",
            "99213 1125F-8P 0521F",
            &["C50.911"],
            &[(NotInDenominator, IN)],
        ),
        case(
            "no cancer",
            "99213 1125F 0521F",
            &["G89.29"],
            &[(NotInDenominator, IN)],
        ),
        case(
            "no visit",
            "1125F 0521F",
            &["C50.911"],
            &[(NotInDenominator, IN)],
        ),
    ];
    check(
        &MeasureSet::built_in().unwrap(),
        "pain-plan-of-care",
        &cases,
    );
}

#[test]
fn diabetes_list_age_window_and_telehealth_exclusions() {
    let base = |name, codes, diagnoses, age, place, expected| Case {
        name,
        codes,
        diagnoses,
        age,
        sex: None,
        place,
        expected,
    };
    let cases = [
        base(
            "met",
            "99213 M1211",
            &["E11.9"],
            Some(50),
            Some("11"),
            &[(PerformanceMet, IN)],
        ),
        base(
            "diagnosis without its dot",
            "99213 M1211",
            &["E119"],
            Some(50),
            Some("11"),
            &[(PerformanceMet, IN)],
        ),
        base(
            "not met",
            "99214 M1371",
            &["E10.10"],
            Some(18),
            Some("11"),
            &[(PerformanceNotMet, IN)],
        ),
        base(
            "an inverse measure ranks exclusion over met",
            "99213 M1211 G9687",
            &["E11.9"],
            Some(75),
            Some("11"),
            &[(DenominatorExclusion, IN)],
        ),
        base(
            "too old",
            "99213 M1211",
            &["E11.9"],
            Some(76),
            Some("11"),
            &[(NotInDenominator, IN)],
        ),
        base(
            "too young",
            "99213 M1211",
            &["E11.9"],
            Some(17),
            Some("11"),
            &[(NotInDenominator, IN)],
        ),
        base(
            "age unknown",
            "99213 M1211",
            &["E11.9"],
            None,
            Some("11"),
            &[(NotInDenominator, Some(PatientAge))],
        ),
        base(
            "telehealth modifier excludes the visit",
            "99213-GT M1211",
            &["E11.9"],
            Some(50),
            Some("11"),
            &[(NotInDenominator, IN)],
        ),
        base(
            "telehealth place excludes the visit",
            "99213 M1211",
            &["E11.9"],
            Some(50),
            Some("02"),
            &[(NotInDenominator, IN)],
        ),
        base(
            "place unknown",
            "99213 M1211",
            &["E11.9"],
            Some(50),
            None,
            &[(NotInDenominator, Some(PlaceOfService))],
        ),
        base(
            "another visit line qualifies",
            "99213-GT 99214 M1211",
            &["E11.9"],
            Some(50),
            Some("11"),
            &[(PerformanceMet, IN)],
        ),
        base(
            "not diabetic",
            "99213 M1211",
            &["I10"],
            Some(50),
            Some("11"),
            &[(NotInDenominator, IN)],
        ),
        base(
            "a known refusal beats a missing field",
            "99213 M1211",
            &["I10"],
            None,
            None,
            &[(NotInDenominator, IN)],
        ),
    ];
    check(&fixtures(), "001", &cases);
}

#[test]
fn age_floor_and_category_ii_with_8p() {
    let base = |name, codes, age, expected| Case {
        name,
        codes,
        diagnoses: &[],
        age,
        sex: None,
        place: None,
        expected,
    };
    let cases = [
        base(
            "1123F met",
            "99214 1123F",
            Some(70),
            &[(PerformanceMet, IN)],
        ),
        base(
            "1124F met",
            "99214 1124F",
            Some(65),
            &[(PerformanceMet, IN)],
        ),
        base(
            "1123F with 8P not met",
            "99214 1123F-8P",
            Some(90),
            &[(PerformanceNotMet, IN)],
        ),
        base(
            "1124F with 8P matches nothing",
            "99214 1124F-8P",
            Some(70),
            &[(DataIncomplete, IN)],
        ),
        base(
            "GQ excludes 99213",
            "99213-GQ 1123F",
            Some(70),
            &[(NotInDenominator, IN)],
        ),
        base(
            "under 65",
            "99214 1123F",
            Some(64),
            &[(NotInDenominator, IN)],
        ),
        base(
            "exclusion",
            "99214 G9692 1123F-8P",
            Some(70),
            &[(DenominatorExclusion, IN)],
        ),
    ];
    check(&fixtures(), "047", &cases);
}

#[test]
fn sex_limit_and_diagnosis_exclusions() {
    let base = |name, diagnoses, sex, place, expected| Case {
        name,
        codes: "99213 G8399",
        diagnoses,
        age: Some(70),
        sex,
        place,
        expected,
    };
    let cases = [
        base(
            "woman, no diagnosis needed",
            &[],
            Some(Sex::Female),
            Some("11"),
            &[(PerformanceMet, IN)],
        ),
        base("man", &[], Some(Sex::Male), None, &[(NotInDenominator, IN)]),
        base(
            "sex unknown",
            &[],
            None,
            Some("11"),
            &[(NotInDenominator, Some(PatientSex))],
        ),
        base(
            "excluded diagnosis",
            &["M81.0"],
            Some(Sex::Female),
            Some("11"),
            &[(NotInDenominator, IN)],
        ),
        base(
            "other diagnosis",
            &["I10"],
            Some(Sex::Female),
            Some("11"),
            &[(PerformanceMet, IN)],
        ),
        base(
            "place unknown",
            &[],
            Some(Sex::Female),
            None,
            &[(NotInDenominator, Some(PlaceOfService))],
        ),
        base(
            "excluded place",
            &[],
            Some(Sex::Female),
            Some("21"),
            &[(NotInDenominator, IN)],
        ),
    ];
    check(&fixtures(), "039", &cases);
}

#[test]
fn three_option_groups_with_multi_code_options() {
    let base = |name, codes, expected| Case {
        name,
        codes,
        diagnoses: &[],
        age: Some(30),
        sex: None,
        place: None,
        expected,
    };
    let cases = [
        base(
            "tobacco user who got help",
            "99213 G9902 G9906",
            &[
                (PerformanceMet, IN),
                (PerformanceMet, IN),
                (DataIncomplete, IN),
            ],
        ),
        base(
            "non-user is outside group 01",
            "99213 G9903",
            &[
                (PerformanceMet, IN),
                (NotInDenominator, IN),
                (DataIncomplete, IN),
            ],
        ),
        base(
            "user without help, screened",
            "99214 G9902 G9908 1036F",
            &[
                (PerformanceMet, IN),
                (PerformanceNotMet, IN),
                (PerformanceMet, IN),
            ],
        ),
        base(
            "one code of a pair is not enough",
            "99213 G9906",
            &[
                (DataIncomplete, IN),
                (NotInDenominator, IN),
                (DataIncomplete, IN),
            ],
        ),
        base(
            "met beats an exclusion; alone the exclusion stands",
            "99213 M1159 G9902 G9906",
            &[
                (PerformanceMet, IN),
                (PerformanceMet, IN),
                (DenominatorExclusion, IN),
            ],
        ),
    ];
    check(&fixtures(), "226", &cases);
}

#[test]
fn two_option_groups_feed_one_rate() {
    let base = |name, codes, sex, expected| Case {
        name,
        codes,
        diagnoses: &["S22.000A"],
        age: Some(60),
        sex,
        place: None,
        expected,
    };
    let woman = Some(Sex::Female);
    let cases = [
        base("visit, met", "99213 3095F", woman, &[(PerformanceMet, IN)]),
        base(
            "procedure, not met",
            "22310 3095F-8P",
            woman,
            &[(PerformanceNotMet, IN)],
        ),
        base(
            "procedure, exception",
            "22315 3095F-1P",
            woman,
            &[(DenominatorException, IN)],
        ),
        base(
            "both, G-code met",
            "99214 22310 G8633",
            woman,
            &[(PerformanceMet, IN)],
        ),
        base(
            "man",
            "99213 3095F",
            Some(Sex::Male),
            &[(NotInDenominator, IN)],
        ),
    ];
    check(&fixtures(), "418", &cases);
}

#[test]
fn every_verdict_of_a_set_comes_in_measure_and_stratum_order() {
    let measures = fixtures();
    let verdicts = measures.evaluate(&claim(&case("any", "99213", &[], &[])));
    let order: Vec<String> = verdicts.iter().map(|v| v.measure_id.to_string()).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    // 226 has three strata; a measure of one rate, one verdict.
    assert_eq!(order.len(), 1 + 1 + 1 + 3 + 1);
    let strata: Vec<Option<&str>> = verdicts
        .iter()
        .filter(|v| &*v.measure_id == "226")
        .map(|v| v.stratum.as_deref())
        .collect();
    assert_eq!(
        strata,
        [
            Some("reporting"),
            Some("performance"),
            Some("combinedPopulations")
        ]
    );
}

#[test]
fn quality_codes_name_the_measures_that_use_them() {
    let ids = MeasureSet::built_in().unwrap().measure_ids_by_code();
    let of = |code: &str| {
        ids.get(&CodeValue::parse(code).unwrap())
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        of("1125F"),
        ["pain-intensity-quantified", "pain-plan-of-care"]
    );
    assert_eq!(of("1126F"), ["pain-intensity-quantified"]);
    assert_eq!(of("0521F"), ["pain-plan-of-care"]);
    assert!(of("99213").is_empty());
}

#[test]
fn a_file_with_errors_is_refused_whole_naming_each() {
    let refused = include_str!("../../tests/fixtures/measures/refused.json");
    let error =
        MeasureSet::from_sources(&[("refused.json", refused), ("cms-shaped.json", FIXTURE)])
            .unwrap_err();
    let text = error.to_string();
    for expected in [
        "measure \"bad-1\"",
        "measure \"bad-2\": measureId",
        "diagnosisCodes[0]",
        "procedureCodes[0].code",
        "performanceOptions[0].optionType",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
}

#[test]
fn an_id_defined_twice_is_refused() {
    let error = MeasureSet::from_sources(&[("a.json", FIXTURE), ("b.json", FIXTURE)]).unwrap_err();
    assert!(
        error
            .problems
            .iter()
            .all(|p| p.message.contains("already defined in a.json"))
    );
}

#[test]
fn rules_read_in_plain_terms() {
    let measures = MeasureSet::built_in().unwrap();
    let plan = measures.get("pain-plan-of-care").unwrap();
    let text = rules(plan).join("\n");
    assert!(text.contains("any code beginning C"), "{text}");
    assert!(
        text.contains("1125F (without a performance modifier)"),
        "{text}"
    );
    assert!(text.contains("0521F with 8P"), "{text}");
    assert!(text.contains("met wins over exclusion"), "{text}");
    assert!(text.contains("once for each"), "{text}");
}

mod the_set_s_shortcut {
    use proptest::prelude::*;

    use super::*;

    /// The built-in measures and the CMS-shaped fixtures together, with the
    /// codes and diagnoses encounters are built from: loaded once, not for
    /// every generated case.
    struct Material {
        measures: MeasureSet,
        codes: Vec<CodeValue>,
        diagnoses: Vec<Diagnosis>,
    }

    static MATERIAL: std::sync::LazyLock<Material> = std::sync::LazyLock::new(|| {
        let measures = MeasureSet::from_sources(&[
            ("measures.json", include_str!("../../data/measures.json")),
            ("cms-shaped.json", FIXTURE),
        ])
        .unwrap();
        Material {
            codes: codes(&measures),
            diagnoses: diagnoses(&measures),
            measures,
        }
    });

    /// Every procedure and quality code the measures name, and two they do not.
    fn codes(measures: &MeasureSet) -> Vec<CodeValue> {
        let mut codes: Vec<CodeValue> = measures
            .measures()
            .iter()
            .flat_map(|measure| &measure.strata)
            .flat_map(|stratum| {
                let procedures = stratum
                    .eligibility
                    .iter()
                    .flat_map(|option| option.procedures.keys().copied());
                let quality = stratum
                    .performance
                    .iter()
                    .flat_map(|option| option.codes.iter().map(|quality| quality.code));
                procedures.chain(quality).collect::<Vec<_>>()
            })
            .collect();
        codes.extend(["27447", "J1100"].map(|code| CodeValue::parse(code).unwrap()));
        codes.sort();
        codes.dedup();
        codes
    }

    /// Every diagnosis the measures name, and one they do not.
    fn diagnoses(measures: &MeasureSet) -> Vec<Diagnosis> {
        let mut diagnoses: Vec<Diagnosis> = measures
            .measures()
            .iter()
            .flat_map(|measure| &measure.strata)
            .flat_map(|stratum| &stratum.eligibility)
            .flat_map(|option| option.diagnoses.iter().chain(&option.diagnosis_exclusions))
            .cloned()
            .collect();
        diagnoses.push(Diagnosis::parse("Z00.00").unwrap());
        diagnoses
    }

    proptest! {
        #[test]
        fn a_set_judges_each_encounter_as_its_measures_do_one_by_one(
            picked_codes in prop::collection::vec((any::<prop::sample::Index>(), 0..4usize), 0..5),
            picked_diagnoses in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            age in prop::option::of(0u8..100),
            sex in prop::option::of(prop::bool::ANY),
            place in prop::option::of(prop::sample::select(vec!["11", "02", "10", "21"])),
        ) {
            let Material { measures, codes, diagnoses } = &*MATERIAL;
            let modifiers = [None, Some("8P"), Some("GT"), Some("25")];
            let claim = Claim {
                provider_id: "npi-1".into(),
                tin: None,
                service_date: date(2025, 3, 4),
                place_of_service: place.map(|place| super::super::PlaceOfService::parse(place).unwrap()),
                patient_age: age,
                patient_sex: sex.map(|female| if female { Sex::Female } else { Sex::Male }),
                codes: picked_codes
                    .iter()
                    .map(|(code, modifier)| ReportedCode {
                        code: *code.get(codes),
                        modifiers: modifiers[*modifier]
                            .map(|text| Modifier::parse(text).unwrap())
                            .into_iter()
                            .collect(),
                        units: 1,
                    })
                    .collect(),
                diagnoses: picked_diagnoses.iter().map(|index| index.get(diagnoses).clone()).collect(),
            };

            let one_by_one: Vec<Verdict> = measures
                .measures()
                .iter()
                .flat_map(|measure| evaluate(measure, &claim))
                .collect();
            prop_assert_eq!(measures.evaluate(&claim), one_by_one);
        }
    }
}
