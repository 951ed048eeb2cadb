//! An encounter as recorded: the claim facts the measures look at, already parsed,
//! and the recording rules that need the code registry.

use jiff::civil::Date;

use super::values::{Diagnosis, Modifier, PatientId, PlaceOfService, Sex, Tin};
use crate::codes::{Category, CodeRegistry, CodeValue, LookupError, Standing};

/// Most codes on one encounter.
pub const MAX_ENCOUNTER_CODES: usize = 100;
/// Most modifiers on one reported code.
pub const MAX_CODE_MODIFIERS: usize = 4;
/// Most diagnoses on one encounter.
pub const MAX_ENCOUNTER_DIAGNOSES: usize = 50;
/// Most units of service on one reported code.
pub const MAX_UNITS: u16 = 9999;
/// Oldest age accepted, in years.
pub const MAX_PATIENT_AGE: u8 = 130;

/// A code as reported on an encounter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportedCode {
    /// The code.
    pub code: CodeValue,
    /// Its modifiers, in the order reported.
    pub modifiers: Vec<Modifier>,
    /// Units of service; 0 when not given.
    pub units: u16,
}

impl ReportedCode {
    /// The performance modifier the code carries, if any.
    pub fn performance_modifier(&self) -> Option<Modifier> {
        self.modifiers
            .iter()
            .copied()
            .find(|modifier| modifier.is_performance())
    }
}

/// One encounter, every field parsed. Building one is the edge's job; once it
/// exists it holds only well-formed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    /// The caller's id, trimmed.
    pub encounter_id: String,
    /// The patient, kept only long enough to hash.
    pub patient_id: PatientId,
    /// What the measures look at.
    pub claim: Claim,
}

/// The facts of an encounter that measures judge: everything but its ids of
/// record. It carries no patient data beyond age and sex, so the store keeps it
/// as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The rendering provider (NPI).
    pub provider_id: String,
    /// The billing TIN; with the NPI, the provider CMS reports for. Every
    /// encounter recorded now has one; those stored before TINs were kept
    /// have none.
    pub tin: Option<Tin>,
    /// Date of service.
    pub service_date: Date,
    /// Where the service was given, when known.
    pub place_of_service: Option<PlaceOfService>,
    /// Age in whole years on the service date, when known.
    pub patient_age: Option<u8>,
    /// Sex, when known.
    pub patient_sex: Option<Sex>,
    /// The codes reported.
    pub codes: Vec<ReportedCode>,
    /// The diagnoses reported.
    pub diagnoses: Vec<Diagnosis>,
}

/// What the registry says about one reported code on the service date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeFinding {
    /// In force that day.
    Known,
    /// Well-formed but not in the code set: a warning, or an error when strict.
    Unknown(String),
    /// Deleted, sunset or not yet effective that day: always an error.
    NotReportable(String),
}

/// Judges `code` as the registry stood on `service_date`.
///
/// ```
/// use cptd::{codes::{CodeRegistry, CodeValue}, measures::{CodeFinding, judge_code}};
/// use jiff::civil::date;
///
/// let registry = CodeRegistry::built_in().unwrap();
/// let code = CodeValue::parse("64483").unwrap();
/// assert_eq!(judge_code(&registry, code, date(2025, 6, 1)), CodeFinding::Known);
/// ```
pub fn judge_code(registry: &CodeRegistry, code: CodeValue, service_date: Date) -> CodeFinding {
    match registry.get(code, service_date) {
        Ok(found) => match found.standing {
            Standing::Active => CodeFinding::Known,
            Standing::Deleted { since } => {
                let mut message = format!("{code} was deleted on {since}, before the service date");
                if !found.version.replaced_by.is_empty() {
                    let replacements: Vec<&str> = found
                        .version
                        .replaced_by
                        .iter()
                        .map(CodeValue::as_str)
                        .collect();
                    message.push_str(&format!("; report {} instead", replacements.join(" or ")));
                }
                CodeFinding::NotReportable(message)
            }
            Standing::Sunset { since } => CodeFinding::NotReportable(format!(
                "{code} was archived (sunset) on {since}, before the service date"
            )),
            Standing::NotYetEffective { from } => CodeFinding::NotReportable(format!(
                "{code} takes effect on {from}, after the service date"
            )),
        },
        Err(LookupError::NotYetEffective { from, .. }) => CodeFinding::NotReportable(format!(
            "{code} takes effect on {from}, after the service date"
        )),
        Err(error @ LookupError::Unknown { .. }) => CodeFinding::Unknown(error.to_string()),
    }
}

/// Why a modifier may not be on a code: a performance modifier on a code that is
/// not Category II, or a second performance modifier. `None` when it may.
pub fn modifier_problem(code: CodeValue, modifiers: &[Modifier], index: usize) -> Option<String> {
    let modifier = modifiers[index];
    if !modifier.is_performance() {
        return None;
    }
    if code.category() != Some(Category::II) {
        return Some(format!(
            "{modifier} is a performance-measure modifier and belongs only on Category II codes; \
             {code} is {}",
            code.form().describe()
        ));
    }
    let earlier = modifiers[..index]
        .iter()
        .find(|earlier| earlier.is_performance())?;
    Some(format!(
        "{code} already carries the performance modifier {earlier}; report at most one of 1P, 2P, 3P and 8P per code"
    ))
}
