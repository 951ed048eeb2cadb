//! Measure definitions: read in the shape of CMS's claims "single source" JSON
//! (an object keyed by measure id), checked whole, and compiled into the form the
//! engine evaluates.
//!
//! The file shape is CMS's as published, so CMS's yearly file loads unchanged.
//! cptd adds `title`, `reference` and `description` to a measure and one rule to
//! eligibility options, `diagnosisCodePrefixes` (a diagnosis beginning with any of
//! them qualifies, e.g. `C` for any malignant neoplasm). Keys this version does not
//! know are ignored, so a later CMS file with extra keys still loads.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Arc,
};

use serde::Deserialize;

use super::values::{Diagnosis, MAX_ID_CHARS, Modifier, PlaceOfService, Sex};
use crate::codes::CodeValue;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeasure {
    measure_id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    eligibility_options: Vec<RawEligibility>,
    #[serde(default)]
    performance_options: Vec<RawPerformance>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEligibility {
    option_group: String,
    #[serde(default)]
    min_age: Option<f64>,
    #[serde(default)]
    max_age: Option<f64>,
    #[serde(default)]
    sex_code: Option<String>,
    #[serde(default)]
    diagnosis_codes: Vec<String>,
    #[serde(default)]
    diagnosis_code_prefixes: Vec<String>,
    #[serde(default)]
    diagnosis_exclusion_codes: Vec<String>,
    #[serde(default)]
    procedure_codes: Vec<RawProcedure>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProcedure {
    code: String,
    #[serde(default)]
    modifier_exclusions: Vec<String>,
    #[serde(default)]
    places_of_service_exclusions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPerformance {
    option_group: String,
    option_type: String,
    #[serde(default)]
    quality_codes: Vec<RawQualityCode>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawQualityCode {
    code: String,
    #[serde(default)]
    modifiers: Vec<String>,
}

/// One problem in a measure file, named by file, measure and JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureProblem {
    /// The file, or `built-in measures.json`.
    pub source: Arc<str>,
    /// The measure's key in the file, when the problem is inside one.
    pub measure: Option<String>,
    /// Where in the measure, e.g. `eligibilityOptions[0].procedureCodes[3].code`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for MeasureProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.source)?;
        if let Some(measure) = &self.measure {
            write!(formatter, ": measure {measure:?}")?;
        }
        if !self.path.is_empty() {
            write!(formatter, ": {}", self.path)?;
        }
        write!(formatter, ": {}", self.message)
    }
}

/// What a performance option means for an encounter that matches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PerformanceKind {
    /// CMS `performanceNotMet`.
    NotMet,
    /// CMS `performanceMet`.
    Met,
    /// CMS `eligiblePopulationException`.
    Exception,
    /// CMS `eligiblePopulationExclusion`.
    Exclusion,
}

impl PerformanceKind {
    /// Every kind with its CMS `optionType` name. The derived order is the
    /// precedence when several options match: exclusion over exception over met
    /// over not met.
    pub const NAMES: [(PerformanceKind, &'static str); 4] = [
        (PerformanceKind::Met, "performanceMet"),
        (PerformanceKind::NotMet, "performanceNotMet"),
        (PerformanceKind::Exclusion, "eligiblePopulationExclusion"),
        (PerformanceKind::Exception, "eligiblePopulationException"),
    ];

    fn from_name(name: &str) -> Option<PerformanceKind> {
        PerformanceKind::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(kind, _)| *kind)
    }
}

/// A quality code as an option names it: the code and the modifiers it must
/// carry. With no modifiers, it must be reported without a performance modifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualityCode {
    /// The code.
    pub code: CodeValue,
    /// Modifiers the reported code must carry.
    pub modifiers: Vec<Modifier>,
}

/// A set of quality codes that, all reported, sort the encounter one way.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceOption {
    /// What a match means.
    pub kind: PerformanceKind,
    /// Every one must be reported.
    pub codes: Vec<QualityCode>,
}

/// What a procedure code of an eligibility option excludes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcedureRule {
    /// Reported with any of these modifiers, the code does not qualify.
    pub modifier_exclusions: Vec<Modifier>,
    /// Reported at any of these places, the code does not qualify.
    pub place_exclusions: Vec<PlaceOfService>,
}

/// One way into a group's denominator; every limit it sets must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EligibilityOption {
    /// Youngest age, in whole years, included.
    pub min_age: Option<f64>,
    /// Oldest age, in whole years, included.
    pub max_age: Option<f64>,
    /// The only sex included.
    pub sex: Option<Sex>,
    /// A diagnosis among these, or beginning with a prefix, is required when
    /// either is non-empty.
    pub diagnoses: BTreeSet<Diagnosis>,
    /// Prefixes (without dots) of qualifying diagnoses; cptd's extension.
    pub diagnosis_prefixes: Vec<String>,
    /// A diagnosis among these keeps the encounter out.
    pub diagnosis_exclusions: BTreeSet<Diagnosis>,
    /// One of these must be reported, within its rule.
    pub procedures: BTreeMap<CodeValue, ProcedureRule>,
}

impl EligibilityOption {
    /// True when the option asks for a diagnosis.
    pub fn needs_diagnosis(&self) -> bool {
        !self.diagnoses.is_empty() || !self.diagnosis_prefixes.is_empty()
    }

    /// True when the option sets an age limit. A minimum of 0 with no maximum
    /// admits every age, so it needs none.
    pub fn needs_age(&self) -> bool {
        self.min_age.is_some_and(|age| age > 0.0) || self.max_age.is_some()
    }
}

/// An eligible population with the options that sort it.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionGroup {
    /// The group's name, e.g. `00`.
    pub name: Arc<str>,
    /// Any one of these admits the encounter.
    pub eligibility: Vec<EligibilityOption>,
    /// The options, in file order.
    pub performance: Vec<PerformanceOption>,
    /// Quality codes named by every met, not-met and exception option (when there
    /// are at least two): the definition uses them to identify the population,
    /// so an encounter without them is not in the denominator.
    pub qualifying: Vec<QualityCode>,
}

/// A compiled measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// The id, e.g. `pain-plan-of-care` or `047`.
    pub id: Arc<str>,
    /// Short human title.
    pub title: String,
    /// The published measure followed.
    pub reference: String,
    /// What the measure is for.
    pub description: String,
    /// Option groups in name order.
    pub groups: Vec<OptionGroup>,
}

/// Collects the problems of one measure with their paths.
struct Problems<'a> {
    source: &'a Arc<str>,
    measure: &'a str,
    found: &'a mut Vec<MeasureProblem>,
}

impl Problems<'_> {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.found.push(MeasureProblem {
            source: self.source.clone(),
            measure: Some(self.measure.to_string()),
            path: path.into(),
            message: message.into(),
        });
    }

    fn code(&mut self, path: String, text: &str) -> Option<CodeValue> {
        CodeValue::parse(text)
            .map_err(|error| self.add(path, error.to_string()))
            .ok()
    }

    fn modifiers(&mut self, path: &str, texts: &[String]) -> Vec<Modifier> {
        texts
            .iter()
            .enumerate()
            .filter_map(|(index, text)| {
                Modifier::parse(text)
                    .map_err(|error| self.add(format!("{path}[{index}]"), error.to_string()))
                    .ok()
            })
            .collect()
    }

    fn diagnoses(&mut self, path: &str, texts: &[String]) -> BTreeSet<Diagnosis> {
        texts
            .iter()
            .enumerate()
            .filter_map(|(index, text)| {
                Diagnosis::parse(text)
                    .map_err(|error| self.add(format!("{path}[{index}]"), error.to_string()))
                    .ok()
            })
            .collect()
    }
}

fn valid_measure_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn compile_eligibility(
    raw: &RawEligibility,
    path: &str,
    problems: &mut Problems<'_>,
) -> EligibilityOption {
    let age = |value: Option<f64>, field: &str, problems: &mut Problems<'_>| {
        value.filter(|age| {
            let ok = age.is_finite() && (0.0..=130.0).contains(age);
            if !ok {
                problems.add(
                    format!("{path}.{field}"),
                    "an age must be between 0 and 130",
                );
            }
            ok
        })
    };
    let min_age = age(raw.min_age, "minAge", problems);
    let max_age = age(raw.max_age, "maxAge", problems);
    if let (Some(min), Some(max)) = (min_age, max_age)
        && max < min
    {
        problems.add(format!("{path}.maxAge"), "maxAge is below minAge");
    }
    let sex = raw.sex_code.as_deref().and_then(|text| {
        Sex::parse(text)
            .map_err(|error| problems.add(format!("{path}.sexCode"), error.to_string()))
            .ok()
    });
    let mut diagnosis_prefixes = Vec::new();
    for (index, prefix) in raw.diagnosis_code_prefixes.iter().enumerate() {
        let compact = prefix.trim().replace('.', "").to_ascii_uppercase();
        let shaped = !compact.is_empty()
            && compact.len() <= 7
            && compact.as_bytes()[0].is_ascii_uppercase()
            && compact.bytes().all(|byte| byte.is_ascii_alphanumeric());
        if shaped {
            diagnosis_prefixes.push(compact);
        } else {
            problems.add(
                format!("{path}.diagnosisCodePrefixes[{index}]"),
                format!("{prefix:?} is not the start of an ICD-10-CM code, e.g. C or C50"),
            );
        }
    }
    let mut procedures = BTreeMap::new();
    if raw.procedure_codes.is_empty() {
        problems.add(
            format!("{path}.procedureCodes"),
            "an eligibility option must list at least one procedure code",
        );
    }
    for (index, procedure) in raw.procedure_codes.iter().enumerate() {
        let here = format!("{path}.procedureCodes[{index}]");
        let code = problems.code(format!("{here}.code"), &procedure.code);
        let modifier_exclusions = problems.modifiers(
            &format!("{here}.modifierExclusions"),
            &procedure.modifier_exclusions,
        );
        let place_exclusions = procedure
            .places_of_service_exclusions
            .iter()
            .enumerate()
            .filter_map(|(place_index, text)| {
                PlaceOfService::parse(text)
                    .map_err(|error| {
                        problems.add(
                            format!("{here}.placesOfServiceExclusions[{place_index}]"),
                            error.to_string(),
                        )
                    })
                    .ok()
            })
            .collect();
        if let Some(code) = code {
            procedures.insert(
                code,
                ProcedureRule {
                    modifier_exclusions,
                    place_exclusions,
                },
            );
        }
    }
    EligibilityOption {
        min_age,
        max_age,
        sex,
        diagnoses: problems.diagnoses(&format!("{path}.diagnosisCodes"), &raw.diagnosis_codes),
        diagnosis_prefixes,
        diagnosis_exclusions: problems.diagnoses(
            &format!("{path}.diagnosisExclusionCodes"),
            &raw.diagnosis_exclusion_codes,
        ),
        procedures,
    }
}

/// The quality codes every met, not-met and exception option of a group names,
/// when there are at least two such options.
fn qualifying_codes(options: &[PerformanceOption]) -> Vec<QualityCode> {
    let mut scored = options
        .iter()
        .filter(|option| option.kind != PerformanceKind::Exclusion);
    let Some(first) = scored.next() else {
        return Vec::new();
    };
    let rest: Vec<&PerformanceOption> = scored.collect();
    if rest.is_empty() {
        return Vec::new();
    }
    first
        .codes
        .iter()
        .filter(|code| rest.iter().all(|option| option.codes.contains(code)))
        .cloned()
        .collect()
}

fn compile(key: &str, raw: RawMeasure, problems: &mut Problems<'_>) -> Option<Measure> {
    let before = problems.found.len();
    if raw.measure_id != key {
        problems.add(
            "measureId",
            format!(
                "measureId {:?} differs from the key it is filed under",
                raw.measure_id
            ),
        );
    }
    if !valid_measure_id(key) {
        problems.add(
            "",
            format!("a measure id is 1 to {MAX_ID_CHARS} letters, digits, '-', '_' or '.'"),
        );
    }
    if raw.eligibility_options.is_empty() {
        problems.add(
            "eligibilityOptions",
            "a measure needs at least one eligibility option",
        );
    }
    let mut groups: BTreeMap<String, OptionGroup> = BTreeMap::new();
    for (index, raw_option) in raw.eligibility_options.iter().enumerate() {
        let path = format!("eligibilityOptions[{index}]");
        if raw_option.option_group.trim().is_empty() {
            problems.add(format!("{path}.optionGroup"), "optionGroup is empty");
        }
        let option = compile_eligibility(raw_option, &path, problems);
        groups
            .entry(raw_option.option_group.clone())
            .or_insert_with(|| OptionGroup {
                name: raw_option.option_group.as_str().into(),
                eligibility: Vec::new(),
                performance: Vec::new(),
                qualifying: Vec::new(),
            })
            .eligibility
            .push(option);
    }
    for (index, raw_option) in raw.performance_options.iter().enumerate() {
        let path = format!("performanceOptions[{index}]");
        let kind = PerformanceKind::from_name(&raw_option.option_type);
        if kind.is_none() {
            problems.add(
                format!("{path}.optionType"),
                format!(
                    "{:?} is not an option type: expected performanceMet, performanceNotMet, \
                     eligiblePopulationExclusion or eligiblePopulationException",
                    raw_option.option_type
                ),
            );
        }
        if raw_option.quality_codes.is_empty() {
            problems.add(
                format!("{path}.qualityCodes"),
                "an option must list at least one quality code",
            );
        }
        let mut codes = Vec::new();
        for (code_index, quality) in raw_option.quality_codes.iter().enumerate() {
            let here = format!("{path}.qualityCodes[{code_index}]");
            let code = problems.code(format!("{here}.code"), &quality.code);
            let modifiers = problems.modifiers(&format!("{here}.modifiers"), &quality.modifiers);
            if let Some(code) = code {
                codes.push(QualityCode { code, modifiers });
            }
        }
        match groups.get_mut(&raw_option.option_group) {
            Some(group) => {
                if let Some(kind) = kind {
                    group.performance.push(PerformanceOption { kind, codes });
                }
            }
            None => problems.add(
                format!("{path}.optionGroup"),
                format!(
                    "option group {:?} has no eligibility option",
                    raw_option.option_group
                ),
            ),
        }
    }
    for group in groups.values_mut() {
        if group.performance.is_empty() {
            problems.add(
                "performanceOptions",
                format!("option group {:?} has no performance option", &*group.name),
            );
        }
        group.qualifying = qualifying_codes(&group.performance);
    }
    if problems.found.len() > before {
        return None;
    }
    let text = |value: Option<String>, default: String| {
        value
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
            .unwrap_or(default)
    };
    Some(Measure {
        id: key.into(),
        title: text(raw.title, format!("Measure {key}")),
        reference: text(raw.reference, format!("CMS quality measure {key}")),
        description: text(raw.description, String::new()),
        groups: groups.into_values().collect(),
    })
}

/// Reads one measure file. Every problem in it is returned, none ignored.
pub fn read_measure_file(source: &str, text: &str) -> Result<Vec<Measure>, Vec<MeasureProblem>> {
    let source: Arc<str> = source.into();
    let file_problem = |message: String| MeasureProblem {
        source: source.clone(),
        measure: None,
        path: String::new(),
        message,
    };
    let entries: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|error| {
            vec![file_problem(format!(
                "not a JSON object of measures keyed by id ({error})"
            ))]
        })?;
    let mut found = Vec::new();
    let mut measures = Vec::new();
    for (key, value) in entries {
        let mut problems = Problems {
            source: &source,
            measure: &key,
            found: &mut found,
        };
        match serde_json::from_value::<RawMeasure>(value) {
            Ok(raw) => measures.extend(compile(&key, raw, &mut problems)),
            Err(error) => problems.add("", format!("does not have the measure shape: {error}")),
        }
    }
    if found.is_empty() {
        Ok(measures)
    } else {
        Err(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<Measure>, Vec<MeasureProblem>> {
        read_measure_file("test.json", text)
    }

    #[test]
    fn every_problem_of_a_file_is_named_with_its_path() {
        let problems = read(
            r#"{
              "m1": {"measureId": "m2",
                     "eligibilityOptions": [{"optionGroup": "00", "minAge": 40, "maxAge": 20,
                        "sexCode": "X", "diagnosisCodes": ["C50.911", "5"],
                        "procedureCodes": [{"code": "9921", "modifierExclusions": ["GTX"],
                                            "placesOfServiceExclusions": ["2"]}]}],
                     "performanceOptions": [
                        {"optionGroup": "00", "optionType": "performanceSomething", "qualityCodes": [{"code": "0521F"}]},
                        {"optionGroup": "01", "optionType": "performanceMet", "qualityCodes": [{"code": "0521F", "modifiers": ["8PP"]}]}]},
              "m3": {"measureId": "m3"}
            }"#,
        )
        .unwrap_err();
        let paths: Vec<String> = problems
            .iter()
            .map(|problem| {
                format!(
                    "{}:{}",
                    problem.measure.as_deref().unwrap_or(""),
                    problem.path
                )
            })
            .collect();
        for expected in [
            "m1:measureId",
            "m1:eligibilityOptions[0].maxAge",
            "m1:eligibilityOptions[0].sexCode",
            "m1:eligibilityOptions[0].diagnosisCodes[1]",
            "m1:eligibilityOptions[0].procedureCodes[0].code",
            "m1:eligibilityOptions[0].procedureCodes[0].modifierExclusions[0]",
            "m1:eligibilityOptions[0].procedureCodes[0].placesOfServiceExclusions[0]",
            "m1:performanceOptions[0].optionType",
            "m1:performanceOptions[1].qualityCodes[0].modifiers[0]",
            "m1:performanceOptions[1].optionGroup",
            "m3:eligibilityOptions",
        ] {
            assert!(
                paths.contains(&expected.to_string()),
                "{expected} not in {paths:#?}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_json_says_where() {
        let problems = read("{\"m1\": [").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("line 1"), "{}", problems[0]);
    }

    #[test]
    fn a_code_common_to_every_scored_option_qualifies_the_population() {
        let measures = read(
            r#"{"405": {"measureId": "405",
                "eligibilityOptions": [{"optionGroup": "00", "minAge": 18, "procedureCodes": [{"code": "74150"}]}],
                "performanceOptions": [
                  {"optionGroup": "00", "optionType": "eligiblePopulationExclusion", "qualityCodes": [{"code": "G9551"}]},
                  {"optionGroup": "00", "optionType": "performanceMet", "qualityCodes": [{"code": "G9547"}, {"code": "G9548"}]},
                  {"optionGroup": "00", "optionType": "performanceNotMet", "qualityCodes": [{"code": "G9547"}, {"code": "G9550"}]}]}}"#,
        )
        .unwrap();
        let qualifying: Vec<String> = measures[0].groups[0]
            .qualifying
            .iter()
            .map(|code| code.code.to_string())
            .collect();
        assert_eq!(qualifying, ["G9547"]);
    }
}
