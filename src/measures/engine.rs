//! The measure engine: judges one claim under one stratum of a measure, as
//! CMS's engine does before it groups claims into units.
//!
//! A claim that no eligibility option admits is not in the denominator (and
//! when an option failed only for want of a field, the verdict names the
//! field). An admitted claim gets the marker of the most advantageous
//! performance option whose quality codes are all on it (met, then exclusion,
//! exception and not met; reversed for an inverse measure), or none: it is in
//! the denominator, unreported. How many of its lines are eligible procedure
//! lines is its weight, which visit measures count.

use std::{fmt, sync::Arc};

use super::{
    definition::{EligibilityOption, Measure, PerformanceKind, QualityCode, Stratum},
    encounter::{Claim, ReportedCode},
};

/// Where one encounter falls under one stratum of a measure, judged alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Outside the denominator.
    NotInDenominator,
    /// An exclusion option matched.
    DenominatorExclusion,
    /// An exception option matched.
    DenominatorException,
    /// A met option matched.
    PerformanceMet,
    /// A not-met option matched.
    PerformanceNotMet,
    /// Eligible, but no option matched.
    DataIncomplete,
}

/// An encounter field a measure may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncounterField {
    /// `patient_age`.
    PatientAge,
    /// `patient_sex`.
    PatientSex,
    /// `place_of_service`.
    PlaceOfService,
    /// `diagnoses`.
    Diagnoses,
}

impl EncounterField {
    /// The field's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            EncounterField::PatientAge => "patient_age",
            EncounterField::PatientSex => "patient_sex",
            EncounterField::PlaceOfService => "place_of_service",
            EncounterField::Diagnoses => "diagnoses",
        }
    }
}

/// Why the verdict is what it is. Kept as a small value so that counting a
/// million encounters allocates no text; `Display` writes the explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// No eligibility option admitted the encounter.
    NotEligible,
    /// An option would have admitted it, but a field it needs was missing.
    Missing(EncounterField),
    /// An option would have admitted it, but a code it requires besides the
    /// procedure was not reported.
    RequiredCodeMissing(QualityCode),
    /// The option of this kind matched (the strongest match).
    Matched(PerformanceKind),
    /// Admitted, but no performance option matched.
    NoPerformanceData,
}

impl fmt::Display for Reason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotEligible => formatter.write_str(
                "no eligibility option matched the encounter's codes, diagnoses, age, sex and place of service",
            ),
            Reason::Missing(field) => write!(
                formatter,
                "the measure needs {} to decide eligibility, and the encounter does not give it",
                field.name()
            ),
            Reason::RequiredCodeMissing(quality) => write!(
                formatter,
                "the population is identified by {}, which the encounter does not report",
                describe_quality_code(quality)
            ),
            Reason::Matched(kind) => write!(
                formatter,
                "eligible, and the reported quality codes match a {} option",
                kind_name(*kind)
            ),
            Reason::NoPerformanceData => formatter.write_str(
                "eligible, but the reported quality codes match none of the measure's performance options",
            ),
        }
    }
}

fn kind_name(kind: PerformanceKind) -> &'static str {
    match kind {
        PerformanceKind::Met => "performance-met",
        PerformanceKind::NotMet => "performance-not-met",
        PerformanceKind::Exclusion => "denominator-exclusion",
        PerformanceKind::Exception => "denominator-exception",
    }
}

/// A quality code as people write it: `0521F`, `0521F with 8P`.
pub fn describe_quality_code(quality: &QualityCode) -> String {
    let mut text = if quality.modifiers.is_empty() {
        format!("{} (without a performance modifier)", quality.code)
    } else {
        let modifiers: Vec<&str> = quality.modifiers.iter().map(|m| m.as_str()).collect();
        format!("{} with {}", quality.code, modifiers.join(" or "))
    };
    if !quality.modifier_exclusions.is_empty() {
        let excluded: Vec<&str> = quality
            .modifier_exclusions
            .iter()
            .map(|m| m.as_str())
            .collect();
        text.push_str(&format!(", not with {}", excluded.join(" or ")));
    }
    text
}

/// One encounter's verdict under one stratum of one measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The measure.
    pub measure_id: Arc<str>,
    /// The stratum's name, for a multi-strata measure.
    pub stratum: Option<Arc<str>>,
    /// The outcome.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
}

/// What one claim brings to the units of one stratum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Where the claim falls on its own.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
    /// Its most advantageous marker, when it is eligible and has one.
    pub marker: Option<PerformanceKind>,
    /// Its eligible procedure lines; 0 when it is not eligible.
    pub weight: u32,
}

impl Judgement {
    /// The judgement of a claim no eligibility option admits.
    pub fn not_eligible() -> Judgement {
        Judgement {
            outcome: Outcome::NotInDenominator,
            reason: Reason::NotEligible,
            marker: None,
            weight: 0,
        }
    }

    /// True when the claim is in the stratum's denominator.
    pub fn is_eligible(&self) -> bool {
        self.outcome != Outcome::NotInDenominator
    }
}

impl Verdict {
    /// The field whose absence kept the encounter out, if that is why.
    pub fn missing_field(&self) -> Option<EncounterField> {
        match self.reason {
            Reason::Missing(field) => Some(field),
            _ => None,
        }
    }
}

enum Admission {
    Admitted,
    Missing(EncounterField),
    RequiredCodeMissing(QualityCode),
    Refused,
}

/// True when the line `reported` satisfies `quality`: the same code; one of
/// the modifiers the option names, or, when it names none, no performance
/// modifier; and none of the modifiers it excludes.
fn reports(reported: &ReportedCode, quality: &QualityCode) -> bool {
    let modifiers_fit = if quality.modifiers.is_empty() {
        reported.performance_modifier().is_none()
    } else {
        quality
            .modifiers
            .iter()
            .any(|modifier| reported.modifiers.contains(modifier))
    };
    reported.code == quality.code
        && modifiers_fit
        && !quality
            .modifier_exclusions
            .iter()
            .any(|modifier| reported.modifiers.contains(modifier))
}

fn reported(encounter: &Claim, quality: &QualityCode) -> bool {
    encounter.codes.iter().any(|code| reports(code, quality))
}

/// Whether `reported` is one of the option's procedures within its rule:
/// `Some(true)` or `Some(false)`, or `None` when only the unknown place of
/// service could tell.
fn is_eligible_procedure(
    option: &EligibilityOption,
    reported: &ReportedCode,
    encounter: &Claim,
) -> Option<bool> {
    let Some(rule) = option.procedures.get(&reported.code) else {
        return Some(false);
    };
    if reported
        .modifiers
        .iter()
        .any(|modifier| rule.modifier_exclusions.contains(modifier))
    {
        return Some(false);
    }
    match encounter.place_of_service {
        Some(place) => Some(!rule.place_exclusions.contains(&place)),
        None if rule.place_exclusions.is_empty() => Some(true),
        None => None,
    }
}

fn admit(option: &EligibilityOption, encounter: &Claim) -> Admission {
    let mut missing = None;

    let mut procedure_unsure = false;
    let procedure_found = encounter.codes.iter().any(|reported| {
        match is_eligible_procedure(option, reported, encounter) {
            Some(eligible) => eligible,
            None => {
                procedure_unsure = true;
                false
            }
        }
    });
    if !procedure_found {
        if !procedure_unsure {
            return Admission::Refused;
        }
        missing.get_or_insert(EncounterField::PlaceOfService);
    }

    if encounter
        .diagnoses
        .iter()
        .any(|diagnosis| option.diagnosis_exclusions.contains(diagnosis))
    {
        return Admission::Refused;
    }
    if option.needs_diagnosis() {
        if encounter.diagnoses.is_empty() {
            missing.get_or_insert(EncounterField::Diagnoses);
        } else {
            let qualifies = encounter.diagnoses.iter().any(|diagnosis| {
                option.diagnoses.contains(diagnosis)
                    || option
                        .diagnosis_prefixes
                        .iter()
                        .any(|prefix| diagnosis.compact().starts_with(prefix.as_str()))
            });
            if !qualifies {
                return Admission::Refused;
            }
        }
    }

    if option.needs_age() {
        match encounter.patient_age {
            None => {
                missing.get_or_insert(EncounterField::PatientAge);
            }
            Some(age) => {
                let age = f64::from(age);
                let too_young = option.min_age.is_some_and(|min| age < min);
                let too_old = option.max_age.is_some_and(|max| age > max);
                if too_young || too_old {
                    return Admission::Refused;
                }
            }
        }
    }

    if let Some(sex) = option.sex {
        match encounter.patient_sex {
            None => {
                missing.get_or_insert(EncounterField::PatientSex);
            }
            Some(reported) if reported != sex => return Admission::Refused,
            Some(_) => {}
        }
    }

    match missing {
        Some(field) => Admission::Missing(field),
        None => match option
            .required
            .iter()
            .find(|quality| !reported(encounter, quality))
        {
            Some(absent) => Admission::RequiredCodeMissing(absent.clone()),
            None => Admission::Admitted,
        },
    }
}

/// `encounter` judged under `stratum` of `measure`.
pub fn judge(measure: &Measure, stratum: &Stratum, encounter: &Claim) -> Judgement {
    let mut refusal = None;
    let admitted = stratum
        .eligibility
        .iter()
        .any(|option| match admit(option, encounter) {
            Admission::Admitted => true,
            Admission::Missing(field) => {
                refusal.get_or_insert(Reason::Missing(field));
                false
            }
            Admission::RequiredCodeMissing(quality) => {
                refusal.get_or_insert(Reason::RequiredCodeMissing(quality));
                false
            }
            Admission::Refused => false,
        });
    if !admitted {
        return Judgement {
            reason: refusal.unwrap_or(Reason::NotEligible),
            ..Judgement::not_eligible()
        };
    }
    let weight = encounter
        .codes
        .iter()
        .filter(|reported| {
            stratum
                .eligibility
                .iter()
                .any(|option| is_eligible_procedure(option, reported, encounter) == Some(true))
        })
        .count();
    let marker = stratum
        .performance
        .iter()
        .filter(|option| {
            option
                .codes
                .iter()
                .all(|quality| reported(encounter, quality))
        })
        .map(|option| option.kind)
        .min_by_key(|kind| kind.rank(measure.inverse));
    let (outcome, reason) = match marker {
        None => (Outcome::DataIncomplete, Reason::NoPerformanceData),
        Some(kind) => (Outcome::from(kind), Reason::Matched(kind)),
    };
    Judgement {
        outcome,
        reason,
        marker,
        weight: u32::try_from(weight).unwrap_or(u32::MAX),
    }
}

impl From<PerformanceKind> for Outcome {
    fn from(kind: PerformanceKind) -> Outcome {
        match kind {
            PerformanceKind::Exclusion => Outcome::DenominatorExclusion,
            PerformanceKind::Exception => Outcome::DenominatorException,
            PerformanceKind::Met => Outcome::PerformanceMet,
            PerformanceKind::NotMet => Outcome::PerformanceNotMet,
        }
    }
}

/// One verdict per stratum of `measure`, in stratum order.
pub fn evaluate(measure: &Measure, encounter: &Claim) -> Vec<Verdict> {
    measure
        .strata
        .iter()
        .map(|stratum| {
            let judgement = judge(measure, stratum, encounter);
            Verdict {
                measure_id: measure.id.clone(),
                stratum: stratum.name.clone(),
                outcome: judgement.outcome,
                reason: judgement.reason,
            }
        })
        .collect()
}
