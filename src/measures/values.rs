//! The small values an encounter and a measure share: modifiers, places of
//! service, diagnoses, sex and the patient id. Each is parsed once, at the edge,
//! into a normalised form that nothing re-checks.

use std::fmt;

/// Why a string is not one of this module's values. The message never repeats
/// the input when the input may be patient data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedValue(String);

/// A two-character claim modifier such as `25`, `GT` or `8P`, upper-cased.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Modifier([u8; 2]);

/// The performance-measure modifiers, which only Category II codes take.
pub const PERFORMANCE_MODIFIERS: [&str; 4] = ["1P", "2P", "3P", "8P"];

impl Modifier {
    /// Trims and upper-cases `input`; it must then be two letters or digits.
    ///
    /// ```
    /// use cptd::measures::Modifier;
    ///
    /// assert_eq!(Modifier::parse(" 8p").unwrap().as_str(), "8P");
    /// assert!(Modifier::parse("8P1").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Modifier, MalformedValue> {
        let trimmed = input.trim();
        let bytes: [u8; 2] = trimmed
            .as_bytes()
            .try_into()
            .ok()
            .filter(|bytes: &[u8; 2]| bytes.iter().all(u8::is_ascii_alphanumeric))
            .ok_or_else(|| {
                MalformedValue(format!(
                    "{:?} is not a modifier: expected two letters or digits, e.g. 25, GT or 8P",
                    trimmed.chars().take(16).collect::<String>()
                ))
            })?;
        Ok(Modifier(bytes.map(|byte| byte.to_ascii_uppercase())))
    }

    /// True for `1P`, `2P`, `3P` and `8P`.
    pub fn is_performance(self) -> bool {
        PERFORMANCE_MODIFIERS.contains(&self.as_str())
    }

    /// The modifier text.
    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Modifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for Modifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Modifier({})", self.as_str())
    }
}

/// A two-digit CMS place-of-service code such as `11` (office).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaceOfService([u8; 2]);

impl PlaceOfService {
    /// Trims `input`; it must then be two digits.
    pub fn parse(input: &str) -> Result<PlaceOfService, MalformedValue> {
        let trimmed = input.trim();
        trimmed
            .as_bytes()
            .try_into()
            .ok()
            .filter(|bytes: &[u8; 2]| bytes.iter().all(u8::is_ascii_digit))
            .map(PlaceOfService)
            .ok_or_else(|| {
                MalformedValue(format!(
                    "{:?} is not a place of service: expected the two-digit CMS code, e.g. 11 for an office",
                    trimmed.chars().take(16).collect::<String>()
                ))
            })
    }

    /// The code text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for PlaceOfService {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for PlaceOfService {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PlaceOfService({})", self.as_str())
    }
}

/// An ICD-10-CM diagnosis code, kept upper-cased and without its dot (`C50911`),
/// so that `C50.911` and `c50911` are the same diagnosis.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Diagnosis(Box<str>);

/// Most characters of a diagnosis code without its dot.
const MAX_DIAGNOSIS_CHARS: usize = 7;

impl Diagnosis {
    /// Trims, upper-cases and drops the dot. The result must be a letter, a digit,
    /// then one to five letters or digits; a dot, if given, must follow the third
    /// character.
    ///
    /// ```
    /// use cptd::measures::Diagnosis;
    ///
    /// assert_eq!(Diagnosis::parse("c50.911").unwrap(), Diagnosis::parse("C50911").unwrap());
    /// assert_eq!(Diagnosis::parse("C50911").unwrap().to_string(), "C50.911");
    /// assert!(Diagnosis::parse("50.911").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Diagnosis, MalformedValue> {
        let trimmed = input.trim();
        let malformed = || {
            MalformedValue(format!(
                "{:?} is not an ICD-10-CM code: expected a letter, a digit and one to five more \
                 letters or digits, with or without a dot after the third, e.g. C50.911",
                trimmed.chars().take(16).collect::<String>()
            ))
        };
        // Upper-cased and without its dot in a buffer on the stack: one
        // allocation per diagnosis, for the value kept.
        let mut compact = [0u8; MAX_DIAGNOSIS_CHARS];
        let mut length = 0;
        for (position, byte) in trimmed.bytes().enumerate() {
            if byte == b'.' {
                if position != 3 || trimmed.len() <= 4 {
                    return Err(malformed());
                }
                continue;
            }
            let Some(slot) = compact.get_mut(length) else {
                return Err(malformed());
            };
            *slot = byte.to_ascii_uppercase();
            length += 1;
        }
        let bytes = &compact[..length];
        let shaped = bytes.len() >= 3
            && bytes[0].is_ascii_uppercase()
            && bytes[1].is_ascii_digit()
            && bytes[2..].iter().all(u8::is_ascii_alphanumeric);
        // Only ASCII letters and digits pass, so the bytes are text.
        let compact = match std::str::from_utf8(bytes) {
            Ok(text) if shaped => text,
            _ => return Err(malformed()),
        };
        Ok(Diagnosis(compact.into()))
    }

    /// The code without its dot.
    pub fn compact(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_at_checked(3) {
            Some((category, rest)) if !rest.is_empty() => write!(formatter, "{category}.{rest}"),
            _ => formatter.write_str(&self.0),
        }
    }
}

impl fmt::Debug for Diagnosis {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Diagnosis({self})")
    }
}

/// The patient's sex as a claim reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// `M`.
    Male,
    /// `F`.
    Female,
}

impl Sex {
    /// Reads `M` or `F`, any case, trimmed.
    pub fn parse(input: &str) -> Result<Sex, MalformedValue> {
        match input.trim() {
            "M" | "m" => Ok(Sex::Male),
            "F" | "f" => Ok(Sex::Female),
            _ => Err(MalformedValue(
                "not a sex code: expected M, F, or empty when not known".into(),
            )),
        }
    }

    /// `M` or `F`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }
}

/// A taxpayer identification number: the billing TIN of a provider, nine
/// digits. Written with or without dashes (`12-3456789`); kept as the digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tin(String);

impl Tin {
    /// Trims `input` and drops dashes; nine digits must remain.
    ///
    /// ```
    /// use cptd::measures::Tin;
    ///
    /// assert_eq!(Tin::parse(" 12-3456789 ").unwrap().as_str(), "123456789");
    /// assert!(Tin::parse("12345678").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Tin, MalformedValue> {
        let digits: String = input.trim().chars().filter(|c| *c != '-').collect();
        if digits.len() == 9 && digits.bytes().all(|byte| byte.is_ascii_digit()) {
            Ok(Tin(digits))
        } else {
            Err(MalformedValue(
                "not a TIN: expected the nine digits of the billing taxpayer identification \
                 number, e.g. 123456789 or 12-3456789"
                    .into(),
            ))
        }
    }

    /// The nine digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Tin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Tin({})", self.0)
    }
}

/// Longest id (encounter, patient, provider, measure), in characters.
pub const MAX_ID_CHARS: usize = 128;

/// A patient id: protected health information. It has no `Display`, and its
/// `Debug` hides the value, so it cannot reach a log line or an error message by
/// accident; the store turns it into a keyed hash and keeps only that.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientId(String);

impl PatientId {
    /// Trims `input`; it must then be 1 to [`MAX_ID_CHARS`] characters with
    /// no control characters (which no record system puts in an id, and
    /// which would hash apart from the same id typed cleanly). The error
    /// never contains the input.
    pub fn parse(input: &str) -> Result<PatientId, MalformedValue> {
        parse_id(input, "patient_id").map(PatientId)
    }

    /// The id itself, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PatientId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PatientId(<redacted>)")
    }
}

/// Trims an id and checks it is 1 to [`MAX_ID_CHARS`] characters with no control
/// characters. `what` names it in the error.
pub fn parse_id(input: &str, what: &str) -> Result<String, MalformedValue> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(MalformedValue(format!("{what} is required")));
    }
    if trimmed.chars().count() > MAX_ID_CHARS {
        return Err(MalformedValue(format!(
            "{what} is longer than {MAX_ID_CHARS} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(MalformedValue(format!(
            "{what} contains control characters"
        )));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn diagnoses_compare_without_the_dot() {
        for (input, compact) in [
            ("C50.911", "C50911"),
            (" c50911 ", "C50911"),
            ("E10.A2", "E10A2"),
            ("F30.2", "F302"),
            ("C61", "C61"),
            ("s72.001a", "S72001A"),
        ] {
            assert_eq!(
                Diagnosis::parse(input).unwrap().compact(),
                compact,
                "{input}"
            );
        }
        for input in [
            "",
            "C5",
            "C5.0911",
            "C50.",
            "50911",
            "C50.91123",
            "C50-911",
            "CC0911",
            "C50.9.1",
            "C50..911",
            "C5091123",
            "C50.9é",
            ".C50911",
        ] {
            assert!(Diagnosis::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn performance_modifiers_are_known() {
        for text in PERFORMANCE_MODIFIERS {
            assert!(Modifier::parse(text).unwrap().is_performance());
        }
        assert!(!Modifier::parse("25").unwrap().is_performance());
        assert!(Modifier::parse("P").is_err());
        assert!(Modifier::parse("8-").is_err());
    }

    #[test]
    fn a_patient_id_never_shows_in_debug_or_errors() {
        let id = PatientId::parse("MRN-CANARY-42").unwrap();
        assert!(!format!("{id:?}").contains("CANARY"));
        let long = "CANARY".repeat(40);
        let error = PatientId::parse(&long).unwrap_err();
        assert!(!error.to_string().contains("CANARY"));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,12}") {
            let _ = Diagnosis::parse(&text);
            let _ = Modifier::parse(&text);
            let _ = PlaceOfService::parse(&text);
            let _ = Sex::parse(&text);
        }

        #[test]
        fn a_diagnosis_with_and_without_its_dot_is_one_value(
            code in "[A-Z][0-9][0-9A-Z]",
            rest in "[0-9A-Z]{1,4}",
        ) {
            let dotted = Diagnosis::parse(&format!("{code}.{rest}")).unwrap();
            let plain = Diagnosis::parse(&format!("{code}{rest}")).unwrap();
            prop_assert_eq!(&dotted, &plain);
            prop_assert_eq!(Diagnosis::parse(&dotted.to_string()).unwrap(), plain);
        }
    }
}
