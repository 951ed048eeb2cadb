//! The measure engine: sorts an encounter into exactly one outcome for each option
//! group of a measure.
//!
//! For each group: an encounter that no eligibility option admits is not in the
//! denominator (and when an option failed only for want of a field, the verdict
//! names the field). An admitted encounter that lacks the group's qualifying codes
//! is not in the denominator either. Otherwise every performance option whose
//! quality codes are all reported matches, and the strongest match wins:
//! exclusion, then exception, then met, then not met. No match is
//! `DataIncomplete`.

use std::{fmt, sync::Arc};

use super::{
    definition::{EligibilityOption, Measure, OptionGroup, PerformanceKind, QualityCode},
    encounter::{Claim, ReportedCode},
};

/// Where an encounter falls under one option group of a measure.
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
    /// Admitted, but a qualifying quality code was not reported.
    QualifyingCodeMissing(QualityCode),
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
            Reason::QualifyingCodeMissing(quality) => write!(
                formatter,
                "the measure's population is identified by {}, which the encounter does not report",
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
    if quality.modifiers.is_empty() {
        format!("{} (without a performance modifier)", quality.code)
    } else {
        let modifiers: Vec<&str> = quality.modifiers.iter().map(|m| m.as_str()).collect();
        format!("{} with {}", quality.code, modifiers.join(" and "))
    }
}

/// One encounter's verdict under one option group of one measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The measure.
    pub measure_id: Arc<str>,
    /// The option group.
    pub option_group: Arc<str>,
    /// The outcome.
    pub outcome: Outcome,
    /// Why.
    pub reason: Reason,
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
    Refused,
}

/// True when `reported` satisfies `quality`: the same code, every modifier the
/// option names, and, when the option names none, no performance modifier.
fn reports(reported: &ReportedCode, quality: &QualityCode) -> bool {
    reported.code == quality.code
        && quality
            .modifiers
            .iter()
            .all(|modifier| reported.modifiers.contains(modifier))
        && (!quality.modifiers.is_empty() || reported.performance_modifier().is_none())
}

fn reported(encounter: &Claim, quality: &QualityCode) -> bool {
    encounter.codes.iter().any(|code| reports(code, quality))
}

fn admit(option: &EligibilityOption, encounter: &Claim) -> Admission {
    let mut missing = None;

    // A procedure code qualifies unless it carries an excluded modifier or was
    // given at an excluded place; with the place unknown, it might qualify.
    let mut procedure_unsure = false;
    let procedure_found = encounter.codes.iter().any(|reported| {
        let Some(rule) = option.procedures.get(&reported.code) else {
            return false;
        };
        if reported
            .modifiers
            .iter()
            .any(|modifier| rule.modifier_exclusions.contains(modifier))
        {
            return false;
        }
        match encounter.place_of_service {
            Some(place) => !rule.place_exclusions.contains(&place),
            None if rule.place_exclusions.is_empty() => true,
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
        None => Admission::Admitted,
    }
}

/// The outcome and reason of `encounter` under `group`.
pub fn evaluate_group(group: &OptionGroup, encounter: &Claim) -> (Outcome, Reason) {
    let mut missing = None;
    let admitted = group
        .eligibility
        .iter()
        .any(|option| match admit(option, encounter) {
            Admission::Admitted => true,
            Admission::Missing(field) => {
                missing.get_or_insert(field);
                false
            }
            Admission::Refused => false,
        });
    if !admitted {
        let reason = missing.map_or(Reason::NotEligible, Reason::Missing);
        return (Outcome::NotInDenominator, reason);
    }
    if let Some(absent) = group
        .qualifying
        .iter()
        .find(|quality| !reported(encounter, quality))
    {
        return (
            Outcome::NotInDenominator,
            Reason::QualifyingCodeMissing(absent.clone()),
        );
    }
    let strongest = group
        .performance
        .iter()
        .filter(|option| {
            option
                .codes
                .iter()
                .all(|quality| reported(encounter, quality))
        })
        .map(|option| option.kind)
        .max();
    match strongest {
        None => (Outcome::DataIncomplete, Reason::NoPerformanceData),
        Some(kind) => {
            let outcome = match kind {
                PerformanceKind::Exclusion => Outcome::DenominatorExclusion,
                PerformanceKind::Exception => Outcome::DenominatorException,
                PerformanceKind::Met => Outcome::PerformanceMet,
                PerformanceKind::NotMet => Outcome::PerformanceNotMet,
            };
            (outcome, Reason::Matched(kind))
        }
    }
}

/// One verdict per option group of `measure`, in group order.
pub fn evaluate(measure: &Measure, encounter: &Claim) -> Vec<Verdict> {
    measure
        .groups
        .iter()
        .map(|group| {
            let (outcome, reason) = evaluate_group(group, encounter);
            verdict(measure, group, outcome, reason)
        })
        .collect()
}

/// The verdict of `measure`'s `group`.
pub(super) fn verdict(
    measure: &Measure,
    group: &OptionGroup,
    outcome: Outcome,
    reason: Reason,
) -> Verdict {
    Verdict {
        measure_id: measure.id.clone(),
        option_group: group.name.clone(),
        outcome,
        reason,
    }
}
