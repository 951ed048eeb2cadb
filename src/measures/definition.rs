//! Measure definitions: read in the shapes CMS publishes, checked whole, and
//! compiled into the form the engine evaluates.
//!
//! A definition comes from CMS's claims "single source" JSON (an object keyed
//! by measure id: eligibility and performance options tied by `optionGroup`).
//! What that file leaves out (title, `isInverse`, `strata`,
//! `overallAlgorithm`) comes from CMS's `measures-data.json` entry of the same
//! id, read by [`super::set`], or from the same keys written into the
//! definition itself. cptd adds a few keys of its own, all optional: `title`,
//! `reference` and `description`; `calculationType` (how CMS groups claims
//! into the units it counts, which CMS's files do not say; cptd knows it for
//! CMS's claims measures, see [`super::cms_claims`]); and, in an eligibility
//! option, `diagnosisCodePrefixes` (a diagnosis beginning with any of them
//! qualifies) and `additionalProcedureCodes` (CMS's 2018 key: codes the claim
//! must also carry, such as G9902 in measure 226's performance stratum). Keys
//! this version does not know are ignored, so a later CMS file still loads.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::Arc,
};

use serde::Deserialize;

use super::{
    cms_claims,
    values::{Diagnosis, MAX_ID_CHARS, Modifier, PlaceOfService, Sex},
};
use crate::codes::CodeValue;

/// A definition as the single-source file writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawMeasure {
    measure_id: String,
    #[serde(default)]
    eligibility_options: Vec<RawEligibility>,
    #[serde(default)]
    performance_options: Vec<RawPerformance>,
    #[serde(flatten)]
    metadata: RawMetadata,
}

/// What `measures-data.json` says of a measure, as far as counting needs it;
/// the same keys may also stand in a definition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawMetadata {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub calculation_type: Option<String>,
    #[serde(default)]
    pub is_inverse: Option<bool>,
    #[serde(default)]
    pub strata: Option<Vec<RawStratum>>,
    #[serde(default)]
    pub overall_algorithm: Option<String>,
}

impl RawMetadata {
    /// These fields, each taken from `fallback` where this has none.
    pub fn or(self, fallback: &RawMetadata) -> RawMetadata {
        RawMetadata {
            title: self.title.or_else(|| fallback.title.clone()),
            reference: self.reference.or_else(|| fallback.reference.clone()),
            description: self.description.or_else(|| fallback.description.clone()),
            calculation_type: self
                .calculation_type
                .or_else(|| fallback.calculation_type.clone()),
            is_inverse: self.is_inverse.or(fallback.is_inverse),
            strata: self.strata.or_else(|| fallback.strata.clone()),
            overall_algorithm: self
                .overall_algorithm
                .or_else(|| fallback.overall_algorithm.clone()),
        }
    }
}

/// One stratum as `measures-data.json` names it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RawStratum {
    #[serde(default)]
    name: Option<String>,
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
    #[serde(default)]
    additional_procedure_codes: Vec<RawQualityCode>,
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
    #[serde(default)]
    modifier_exclusions: Vec<String>,
}

/// One problem in a measure file, named by file, measure and JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureProblem {
    /// The file, or `built-in measures.json`.
    pub source: Arc<str>,
    /// The measure's id, when the problem is inside one.
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

/// A performance option's kind, and the marker a claim it matches carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PerformanceKind {
    /// CMS `performanceMet`.
    Met,
    /// CMS `eligiblePopulationExclusion`.
    Exclusion,
    /// CMS `eligiblePopulationException`.
    Exception,
    /// CMS `performanceNotMet`.
    NotMet,
}

impl PerformanceKind {
    /// Every kind with its CMS `optionType` name.
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

    /// The CMS name.
    pub fn name(self) -> &'static str {
        PerformanceKind::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, name)| name)
    }

    /// How advantageous a marker is, CMS's way: lower is better. Met, then
    /// exclusion, exception and not met; the other way round for an inverse
    /// measure, where a lower rate is better.
    ///
    /// ```
    /// use cptd::measures::PerformanceKind::{Exclusion, Met, NotMet};
    ///
    /// assert!(Met.rank(false) < Exclusion.rank(false));
    /// assert!(NotMet.rank(true) < Met.rank(true));
    /// ```
    pub fn rank(self, inverse: bool) -> u8 {
        let normal = match self {
            PerformanceKind::Met => 0,
            PerformanceKind::Exclusion => 1,
            PerformanceKind::Exception => 2,
            PerformanceKind::NotMet => 3,
        };
        if inverse { 3 - normal } else { normal }
    }

    /// The marker's number in the store, and back.
    pub fn number(self) -> u8 {
        match self {
            PerformanceKind::Met => 1,
            PerformanceKind::Exclusion => 2,
            PerformanceKind::Exception => 3,
            PerformanceKind::NotMet => 4,
        }
    }

    /// The marker stored as `number`, if it is one.
    pub fn from_number(number: u8) -> Option<PerformanceKind> {
        [
            PerformanceKind::Met,
            PerformanceKind::Exclusion,
            PerformanceKind::Exception,
            PerformanceKind::NotMet,
        ]
        .into_iter()
        .find(|kind| kind.number() == number)
    }
}

/// How CMS groups a measure's eligible claims into the units it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalculationType {
    /// One unit per patient per performance year; the most advantageous
    /// marker of all the patient's claims.
    PatientProcess,
    /// One unit per patient per performance year; the latest result wins.
    PatientIntermediate,
    /// One unit per patient and date of service.
    Procedure,
    /// One unit per patient and date, counted once per eligible procedure line.
    Visit,
    /// Episodes: a patient's claims of a year that share a relevant diagnosis,
    /// grouped transitively.
    IntersectingDiagnosis,
}

impl CalculationType {
    /// Every type with the name a measure file gives it in `calculationType`.
    pub const NAMES: [(CalculationType, &'static str); 5] = [
        (CalculationType::PatientProcess, "patientProcess"),
        (CalculationType::PatientIntermediate, "patientIntermediate"),
        (CalculationType::Procedure, "procedure"),
        (CalculationType::Visit, "visit"),
        (
            CalculationType::IntersectingDiagnosis,
            "intersectingDiagnosis",
        ),
    ];

    fn from_name(name: &str) -> Option<CalculationType> {
        CalculationType::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(kind, _)| *kind)
    }

    /// The name a measure file gives it.
    pub fn name(self) -> &'static str {
        CalculationType::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, name)| name)
    }

    /// True when a unit lives within one date of service; otherwise it
    /// gathers a patient's claims of a whole performance year.
    pub fn unit_is_one_date(self) -> bool {
        matches!(self, CalculationType::Procedure | CalculationType::Visit)
    }
}

/// How a multi-strata measure's overall figure comes from its strata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverallAlgorithm {
    /// The mean of the strata's performance rates.
    SimpleAverage,
    /// Σ met / Σ (met + not met).
    WeightedAverage,
    /// The strata's counts summed.
    SumNumerators,
    /// The stratum named `overall`.
    OverallStratumOnly,
    /// Data completeness from the first stratum, the rate from the second
    /// (measure 226: reporting, then performance).
    Split,
}

impl OverallAlgorithm {
    /// Every algorithm with its CMS name.
    pub const NAMES: [(OverallAlgorithm, &'static str); 5] = [
        (OverallAlgorithm::SimpleAverage, "simpleAverage"),
        (OverallAlgorithm::WeightedAverage, "weightedAverage"),
        (OverallAlgorithm::SumNumerators, "sumNumerators"),
        (OverallAlgorithm::OverallStratumOnly, "overallStratumOnly"),
        (OverallAlgorithm::Split, "split"),
    ];

    fn from_name(name: &str) -> Option<OverallAlgorithm> {
        OverallAlgorithm::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(algorithm, _)| *algorithm)
    }

    /// The CMS name.
    pub fn name(self) -> &'static str {
        OverallAlgorithm::NAMES
            .iter()
            .find(|(algorithm, _)| *algorithm == self)
            .map_or("", |(_, name)| name)
    }
}

/// A quality code as an option names it. With no `modifiers`, the line must
/// carry no performance modifier (1P, 2P, 3P, 8P); with some, at least one of
/// them; and none of `modifier_exclusions`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualityCode {
    /// The code.
    pub code: CodeValue,
    /// The line carries at least one of these, when any are named.
    pub modifiers: Vec<Modifier>,
    /// The line carries none of these.
    pub modifier_exclusions: Vec<Modifier>,
}

/// A set of quality codes that, all on one claim, give it a marker.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceOption {
    /// The marker a match gives.
    pub kind: PerformanceKind,
    /// Every one must be on the claim.
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

/// One way into a stratum's denominator; every limit it sets must hold.
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
    /// A diagnosis among these keeps the claim out.
    pub diagnosis_exclusions: BTreeSet<Diagnosis>,
    /// One of these must be reported, within its rule.
    pub procedures: BTreeMap<CodeValue, ProcedureRule>,
    /// Every one of these must also be on the claim (`additionalProcedureCodes`).
    pub required: Vec<QualityCode>,
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

/// One population of a measure with the options that sort it: the whole
/// measure, or one stratum of a multi-strata measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Stratum {
    /// The stratum's CMS name (e.g. `performance`); `None` for a measure of
    /// one rate.
    pub name: Option<Arc<str>>,
    /// The option groups it was read from.
    pub option_groups: Vec<Arc<str>>,
    /// Any one of these admits the claim.
    pub eligibility: Vec<EligibilityOption>,
    /// The options, in file order.
    pub performance: Vec<PerformanceOption>,
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
    /// How claims become units.
    pub calculation: CalculationType,
    /// A lower rate is better.
    pub inverse: bool,
    /// One stratum, or several for a multi-strata measure.
    pub strata: Vec<Stratum>,
    /// How several strata make the overall figure; `None` with one stratum.
    pub overall: Option<OverallAlgorithm>,
    /// Whether the measure can go into a QPP submission: true for measures
    /// read from files (CMS's), false for cptd's built-in ones.
    pub submittable: bool,
}

impl Measure {
    /// Whether `diagnosis` can tie the claims of an episode of `stratum`
    /// together: an eligibility option names it, or a prefix of it.
    pub fn ties_episodes(&self, stratum: usize, diagnosis: &Diagnosis) -> bool {
        self.strata[stratum].eligibility.iter().any(|option| {
            option.diagnoses.contains(diagnosis)
                || option
                    .diagnosis_prefixes
                    .iter()
                    .any(|prefix| diagnosis.compact().starts_with(prefix.as_str()))
        })
    }
}

/// Collects the problems of one measure with their paths.
pub(super) struct Problems<'a> {
    pub source: &'a Arc<str>,
    pub measure: &'a str,
    pub found: &'a mut Vec<MeasureProblem>,
}

impl Problems<'_> {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
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

    fn quality_codes(&mut self, path: &str, raw: &[RawQualityCode]) -> Vec<QualityCode> {
        let mut codes = Vec::new();
        for (index, quality) in raw.iter().enumerate() {
            let here = format!("{path}[{index}]");
            let code = self.code(format!("{here}.code"), &quality.code);
            let modifiers = self.modifiers(&format!("{here}.modifiers"), &quality.modifiers);
            let modifier_exclusions = self.modifiers(
                &format!("{here}.modifierExclusions"),
                &quality.modifier_exclusions,
            );
            codes.extend(code.map(|code| QualityCode {
                code,
                modifiers,
                modifier_exclusions,
            }));
        }
        codes
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
        required: problems.quality_codes(
            &format!("{path}.additionalProcedureCodes"),
            &raw.additional_procedure_codes,
        ),
    }
}

fn valid_measure_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The options of one `optionGroup`.
#[derive(Default)]
struct OptionGroup {
    eligibility: Vec<EligibilityOption>,
    performance: Vec<PerformanceOption>,
}

/// Reads a definition's options into its option groups, in name order.
fn option_groups(raw: &RawMeasure, problems: &mut Problems<'_>) -> BTreeMap<String, OptionGroup> {
    let mut groups: BTreeMap<String, OptionGroup> = BTreeMap::new();
    if raw.eligibility_options.is_empty() {
        problems.add(
            "eligibilityOptions",
            "a measure needs at least one eligibility option",
        );
    }
    for (index, raw_option) in raw.eligibility_options.iter().enumerate() {
        let path = format!("eligibilityOptions[{index}]");
        if raw_option.option_group.trim().is_empty() {
            problems.add(format!("{path}.optionGroup"), "optionGroup is empty");
        }
        let option = compile_eligibility(raw_option, &path, problems);
        groups
            .entry(raw_option.option_group.clone())
            .or_default()
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
        let codes =
            problems.quality_codes(&format!("{path}.qualityCodes"), &raw_option.quality_codes);
        match groups.get_mut(&raw_option.option_group) {
            Some(group) => group
                .performance
                .extend(kind.map(|kind| PerformanceOption { kind, codes })),
            None => problems.add(
                format!("{path}.optionGroup"),
                format!(
                    "option group {:?} has no eligibility option",
                    raw_option.option_group
                ),
            ),
        }
    }
    for (name, group) in &groups {
        if group.performance.is_empty() {
            problems.add(
                "performanceOptions",
                format!("option group {name:?} has no performance option"),
            );
        }
    }
    groups
}

/// The strata of a measure: one per stratum its metadata names, tied to the
/// option groups in order, when there are several; otherwise one holding
/// every group's options, as CMS counts a measure of one rate.
fn strata(
    groups: BTreeMap<String, OptionGroup>,
    names: Option<Vec<Option<String>>>,
    problems: &mut Problems<'_>,
) -> Vec<Stratum> {
    let names = names.filter(|names| names.len() > 1);
    let Some(names) = names else {
        let mut whole = Stratum {
            name: None,
            option_groups: Vec::new(),
            eligibility: Vec::new(),
            performance: Vec::new(),
        };
        for (name, group) in groups {
            whole.option_groups.push(name.into());
            whole.eligibility.extend(group.eligibility);
            // Groups of one rate often repeat the same options (024, 418).
            for option in group.performance {
                if !whole.performance.contains(&option) {
                    whole.performance.push(option);
                }
            }
        }
        return vec![whole];
    };
    if names.len() != groups.len() {
        problems.add(
            "strata",
            format!(
                "{} strata are named but the definition has {} option groups; each stratum takes \
                 the option group at its place, in order",
                names.len(),
                groups.len()
            ),
        );
    }
    groups
        .into_iter()
        .zip(names)
        .enumerate()
        .map(|(index, ((group_name, group), name))| Stratum {
            name: Some(
                name.unwrap_or_else(|| format!("stratum {}", index + 1))
                    .into(),
            ),
            option_groups: vec![group_name.into()],
            eligibility: group.eligibility,
            performance: group.performance,
        })
        .collect()
}

/// Compiles the definition filed under `key`, with `metadata` (its own keys
/// before those of `measures-data.json`). `submittable` as
/// [`Measure::submittable`].
pub(super) fn compile(
    key: &str,
    raw: RawMeasure,
    metadata: RawMetadata,
    submittable: bool,
    problems: &mut Problems<'_>,
) -> Option<Measure> {
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
    let metadata = raw.metadata.clone().or(&metadata);
    let known = cms_claims::known(key);
    let calculation = match (&metadata.calculation_type, known) {
        (Some(name), _) => CalculationType::from_name(name).or_else(|| {
            problems.add(
                "calculationType",
                format!(
                    "{name:?} is not a calculation type: expected patientProcess, \
                 patientIntermediate, procedure, visit or intersectingDiagnosis"
                ),
            );
            None
        }),
        (None, Some(known)) => Some(known.calculation),
        (None, None) => {
            problems.add(
                "",
                "cptd cannot tell how CMS counts this measure (patients, \
                procedures, visits or episodes); add \"calculationType\": one of patientProcess, \
                patientIntermediate, procedure, visit or intersectingDiagnosis",
            );
            None
        }
    };
    let overall = match metadata.overall_algorithm.as_deref() {
        Some(name) => OverallAlgorithm::from_name(name).or_else(|| {
            problems.add("overallAlgorithm", format!(
                "{name:?} is not an overall algorithm: expected simpleAverage, weightedAverage, \
                 sumNumerators, overallStratumOnly or split"
            ));
            None
        }),
        None => known.and_then(|known| known.overall),
    };
    let names = metadata
        .strata
        .as_ref()
        .map(|strata| strata.iter().map(|stratum| stratum.name.clone()).collect())
        .or_else(|| {
            known
                .and_then(|known| known.strata)
                .map(|names| names.iter().map(|name| Some(name.to_string())).collect())
        });
    let mut strata = strata(option_groups(&raw, problems), names, problems);
    if let Some(known) = known {
        known.add_required_codes(&mut strata);
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
    let several = strata.len() > 1;
    Some(Measure {
        id: key.into(),
        title: text(metadata.title, format!("Measure {key}")),
        reference: text(metadata.reference, format!("CMS quality measure {key}")),
        description: text(metadata.description, String::new()),
        calculation: calculation?,
        inverse: metadata
            .is_inverse
            .or(known.map(|known| known.inverse))
            .unwrap_or(false),
        overall: several.then(|| overall.unwrap_or(OverallAlgorithm::WeightedAverage)),
        strata,
        submittable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::measures::MeasureSet;

    fn read(text: &str) -> Result<Vec<std::sync::Arc<Measure>>, Vec<MeasureProblem>> {
        MeasureSet::from_sources(&[("test.json", text)])
            .map(|set| set.measures().to_vec())
            .map_err(|error| error.problems)
    }

    #[test]
    fn every_problem_of_a_file_is_named_with_its_path() {
        let problems = read(
            r#"{
              "m1": {"measureId": "m2",
                     "calculationType": "visit",
                     "eligibilityOptions": [{"optionGroup": "00", "minAge": 40, "maxAge": 20,
                        "sexCode": "X", "diagnosisCodes": ["C50.911", "5"],
                        "procedureCodes": [{"code": "9921", "modifierExclusions": ["GTX"],
                                            "placesOfServiceExclusions": ["2"]}]}],
                     "performanceOptions": [
                        {"optionGroup": "00", "optionType": "performanceSomething", "qualityCodes": [{"code": "0521F"}]},
                        {"optionGroup": "01", "optionType": "performanceMet", "qualityCodes": [{"code": "0521F", "modifiers": ["8PP"]}]}]},
              "m3": {"measureId": "m3", "calculationType": "visit"},
              "m4": {"measureId": "m4",
                     "eligibilityOptions": [{"optionGroup": "00", "procedureCodes": [{"code": "99213"}]}],
                     "performanceOptions": [{"optionGroup": "00", "optionType": "performanceMet", "qualityCodes": [{"code": "0521F"}]}]}
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
            "m4:",
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
        assert!(
            read("7").unwrap_err()[0]
                .message
                .contains("neither an object")
        );
    }

    #[test]
    fn option_groups_of_one_rate_are_merged_without_repeating_an_option() {
        let measures = read(
            r#"{"024": {"measureId": "024",
                "eligibilityOptions": [
                  {"optionGroup": "00", "minAge": 50, "diagnosisCodes": ["S22.000A"], "procedureCodes": [{"code": "99213"}]},
                  {"optionGroup": "01", "minAge": 50, "diagnosisCodePrefixes": ["S72"], "procedureCodes": [{"code": "22310"}]}],
                "performanceOptions": [
                  {"optionGroup": "00", "optionType": "performanceMet", "qualityCodes": [{"code": "5015F"}]},
                  {"optionGroup": "01", "optionType": "performanceMet", "qualityCodes": [{"code": "5015F"}]},
                  {"optionGroup": "01", "optionType": "performanceNotMet", "qualityCodes": [{"code": "5015F", "modifiers": ["8P"]}]}]}}"#,
        )
        .unwrap();
        let fracture = &measures[0];
        assert_eq!(fracture.strata.len(), 1);
        assert_eq!(fracture.strata[0].eligibility.len(), 2);
        assert_eq!(fracture.strata[0].performance.len(), 2);
        // Listed codes and prefixes both tie an episode together.
        let tie = |code: &str| fracture.ties_episodes(0, &Diagnosis::parse(code).unwrap());
        assert!(tie("S22.000A") && tie("S72.001A"));
        assert!(!tie("M54.50"));
    }

    #[test]
    fn a_measure_whose_counting_cptd_cannot_tell_is_refused_naming_it() {
        let problems = read(
            r#"{"999": {"measureId": "999",
                "eligibilityOptions": [{"optionGroup": "00", "procedureCodes": [{"code": "99213"}]}],
                "performanceOptions": [{"optionGroup": "00", "optionType": "performanceMet", "qualityCodes": [{"code": "G8730"}]}]}}"#,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].measure.as_deref(), Some("999"));
        assert!(
            problems[0].message.contains("calculationType"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn known_claims_measures_get_their_type_and_226_its_strata() {
        let measures = read(
            r#"{"226": {"measureId": "226",
                "eligibilityOptions": [
                  {"optionGroup": "00", "minAge": 12, "procedureCodes": [{"code": "99213"}]},
                  {"optionGroup": "01", "minAge": 12, "procedureCodes": [{"code": "99213"}]},
                  {"optionGroup": "02", "minAge": 12, "procedureCodes": [{"code": "99213"}]}],
                "performanceOptions": [
                  {"optionGroup": "00", "optionType": "performanceMet", "qualityCodes": [{"code": "G9903"}]},
                  {"optionGroup": "01", "optionType": "performanceMet", "qualityCodes": [{"code": "G9902"}, {"code": "G9906"}]},
                  {"optionGroup": "02", "optionType": "performanceMet", "qualityCodes": [{"code": "1036F"}]}]},
              "406": {"measureId": "406",
                "eligibilityOptions": [{"optionGroup": "00", "procedureCodes": [{"code": "70486"}]}],
                "performanceOptions": [{"optionGroup": "00", "optionType": "performanceMet", "qualityCodes": [{"code": "G9552"}, {"code": "G9554"}]}]}}"#,
        )
        .unwrap();
        let tobacco = measures.iter().find(|m| &*m.id == "226").unwrap();
        assert_eq!(tobacco.calculation, CalculationType::PatientProcess);
        assert_eq!(tobacco.overall, Some(OverallAlgorithm::Split));
        let names: Vec<_> = tobacco.strata.iter().map(|s| s.name.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("reporting"),
                Some("performance"),
                Some("combinedPopulations")
            ]
        );
        let required: Vec<String> = tobacco.strata[1].eligibility[0]
            .required
            .iter()
            .map(|code| code.code.to_string())
            .collect();
        assert_eq!(required, ["G9902"]);
        assert!(tobacco.strata[0].eligibility[0].required.is_empty());
        let thyroid = measures.iter().find(|m| &*m.id == "406").unwrap();
        assert_eq!(
            (thyroid.calculation, thyroid.inverse),
            (CalculationType::Procedure, true)
        );
        assert!(
            thyroid.strata[0].eligibility[0].required.is_empty(),
            "no code is inferred"
        );
    }

    #[test]
    fn measures_data_completes_the_definitions_of_its_ids_and_its_other_entries_are_passed_over() {
        let definition = r#"{"047": {"measureId": "047",
            "eligibilityOptions": [{"optionGroup": "00", "procedureCodes": [{"code": "99213"}]}],
            "performanceOptions": [{"optionGroup": "00", "optionType": "performanceMet", "qualityCodes": [{"code": "1123F"}]}]}}"#;
        let metadata = r#"[
            {"measureId": "047", "title": "Advance care plan", "isInverse": true, "strata": null, "overallAlgorithm": null},
            {"measureId": "999", "title": "A measure with no definition here"}]"#;
        let set = MeasureSet::from_sources(&[("single.json", definition), ("data.json", metadata)])
            .unwrap();
        let measure = set.get("047").unwrap();
        assert_eq!(measure.title, "Advance care plan");
        assert!(
            measure.inverse,
            "the file's isInverse wins over what cptd knows"
        );
        assert!(set.get("999").is_none());
        assert!(measure.submittable);
        assert!(!MeasureSet::built_in().unwrap().measures()[0].submittable);
    }
}
