//! Validating codes as a claim carries them: a verdict per code, never an error.

use jiff::civil::Date;

use super::{
    record::{CodeAsOf, Standing},
    registry::{CodeRegistry, LookupError},
    value::CodeValue,
};

/// Why a code is or is not valid on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationReason {
    /// In force.
    Valid,
    /// Not in any accepted form.
    Malformed,
    /// Well-formed, but not in the registry.
    Unknown,
    /// Deleted on or before the day.
    Deleted,
    /// In force only from a later day.
    NotYetEffective,
    /// A Category III code past its sunset date.
    Sunset,
}

/// The verdict on one input string.
#[derive(Debug, Clone)]
pub struct Validation<'a> {
    /// The normalised code, when the input is well-formed.
    pub code: Option<CodeValue>,
    /// The verdict.
    pub reason: ValidationReason,
    /// A sentence for a person.
    pub message: String,
    /// The registry's entry, when it holds the code.
    pub found: Option<CodeAsOf<'a>>,
}

impl Validation<'_> {
    /// True when the code may be reported.
    pub fn is_valid(&self) -> bool {
        self.reason == ValidationReason::Valid
    }
}

impl CodeRegistry {
    /// Judges one input as of `as_of`.
    ///
    /// ```
    /// use cptd::codes::{CodeRegistry, ValidationReason};
    /// use jiff::civil::date;
    ///
    /// let registry = CodeRegistry::built_in().unwrap();
    /// let verdict = registry.validate("62310", date(2025, 6, 1));
    /// assert_eq!(verdict.reason, ValidationReason::Deleted);
    /// assert!(verdict.message.contains("62320"));
    /// ```
    pub fn validate(&self, input: &str, as_of: Date) -> Validation<'_> {
        let code = match CodeValue::parse(input) {
            Ok(code) => code,
            Err(error) => {
                return Validation {
                    code: None,
                    reason: ValidationReason::Malformed,
                    message: error.to_string(),
                    found: None,
                };
            }
        };
        let Some(history) = self.history(code) else {
            return Validation {
                code: Some(code),
                reason: ValidationReason::Unknown,
                message: LookupError::Unknown { code }.to_string(),
                found: None,
            };
        };
        let found = history.as_of(as_of);
        let (reason, message) = match found.standing {
            Standing::Active => (
                ValidationReason::Valid,
                format!("{code} is active on {as_of}"),
            ),
            Standing::Deleted { since } => (
                ValidationReason::Deleted,
                format!(
                    "{code} was deleted on {since}; {}",
                    replacement_advice(&found)
                ),
            ),
            Standing::Sunset { since } => (
                ValidationReason::Sunset,
                format!(
                    "{code} reached its Category III sunset date on {since}; {}",
                    replacement_advice(&found)
                ),
            ),
            Standing::NotYetEffective { from } => (
                ValidationReason::NotYetEffective,
                LookupError::NotYetEffective { code, from }.to_string(),
            ),
        };
        Validation {
            code: Some(code),
            reason,
            message,
            found: Some(found),
        }
    }
}

fn replacement_advice(found: &CodeAsOf<'_>) -> String {
    let replacements: Vec<&str> = found
        .version
        .replaced_by
        .iter()
        .map(CodeValue::as_str)
        .collect();
    match replacements.as_slice() {
        [] => "no replacement is recorded".to_string(),
        [only] => format!("report {only} instead"),
        [first @ .., last] => format!("report {} or {last} instead", first.join(", ")),
    }
}
