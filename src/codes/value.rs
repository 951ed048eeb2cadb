//! The code value: a string known to be in one of the accepted code forms.

use std::{fmt, str::FromStr};

/// Longest input, in characters, that [`CodeValue::parse`] looks at. Real codes are
/// five characters; the slack allows surrounding white space.
pub const MAX_CODE_INPUT_CHARS: usize = 32;

/// What a malformed code string is told: every accepted form with an example.
pub const ACCEPTED_FORMS: &str = "expected five digits (Category I, e.g. 20604), \
four digits and F (Category II, e.g. 0521F), four digits and T (Category III, e.g. 0095T), \
four digits and U (proprietary laboratory analysis, e.g. 0001U), four digits and M \
(multianalyte assay, e.g. 0002M) or a letter A-V and four digits (HCPCS Level II, e.g. G0260)";

/// The form of a code, which decides its category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodeForm {
    /// Five digits.
    CategoryI,
    /// Four digits and `F`.
    CategoryII,
    /// Four digits and `T`.
    CategoryIII,
    /// Four digits and `U`.
    ProprietaryLaboratoryAnalysis,
    /// Four digits and `M`.
    MultianalyteAssay,
    /// A letter `A`-`V` and four digits.
    HcpcsLevelII,
}

/// The three CPT categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Procedures and services, billed.
    I,
    /// Performance-measure tracking, never billed for money.
    II,
    /// Temporary codes for emerging technology.
    III,
}

impl CodeForm {
    /// The CPT category of this form, if it is one of the three.
    pub fn category(self) -> Option<Category> {
        match self {
            CodeForm::CategoryI => Some(Category::I),
            CodeForm::CategoryII => Some(Category::II),
            CodeForm::CategoryIII => Some(Category::III),
            _ => None,
        }
    }

    /// A short human name, used in messages.
    pub fn describe(self) -> &'static str {
        match self {
            CodeForm::CategoryI => "a CPT Category I code",
            CodeForm::CategoryII => "a CPT Category II code",
            CodeForm::CategoryIII => "a CPT Category III code",
            CodeForm::ProprietaryLaboratoryAnalysis => "a proprietary laboratory analysis code",
            CodeForm::MultianalyteAssay => "a multianalyte assay code",
            CodeForm::HcpcsLevelII => "a HCPCS Level II code",
        }
    }
}

/// Why a string is not a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedCode {
    /// Nothing but white space.
    #[error("code is empty: {ACCEPTED_FORMS}")]
    Empty,
    /// Longer than [`MAX_CODE_INPUT_CHARS`].
    #[error("code is longer than {MAX_CODE_INPUT_CHARS} characters: {ACCEPTED_FORMS}")]
    TooLong,
    /// Some other shape.
    #[error("{shown:?} is not a code: {ACCEPTED_FORMS}")]
    WrongForm {
        /// The trimmed input, for the message.
        shown: String,
    },
}

impl MalformedCode {
    /// The problem without the list of accepted forms, for errors that name many
    /// codes and state the forms once.
    pub fn brief(&self) -> String {
        match self {
            MalformedCode::Empty => "code is empty".to_string(),
            MalformedCode::TooLong => {
                format!("code is longer than {MAX_CODE_INPUT_CHARS} characters")
            }
            MalformedCode::WrongForm { shown } => format!("{shown:?} is not a code"),
        }
    }
}

/// A normalised, well-formed code such as `64483` or `0521F`.
///
/// The only way to make one is [`CodeValue::parse`], so a `CodeValue` never needs
/// checking again. It orders as its string does, which is the registry's code order.
///
/// ```
/// use cptd::codes::{CodeForm, CodeValue};
///
/// let code = CodeValue::parse(" 0521f ").unwrap();
/// assert_eq!(code.as_str(), "0521F");
/// assert_eq!(code.form(), CodeForm::CategoryII);
/// assert!(CodeValue::parse("0521").is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeValue {
    // Every form is five ASCII characters, so the value is stored inline: no heap
    // allocation per code, cheap to copy and to compare.
    bytes: [u8; 5],
}

impl CodeValue {
    /// Trims and upper-cases `input`, then checks it against the accepted forms.
    pub fn parse(input: &str) -> Result<CodeValue, MalformedCode> {
        if input.chars().count() > MAX_CODE_INPUT_CHARS {
            return Err(MalformedCode::TooLong);
        }
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(MalformedCode::Empty);
        }
        let wrong_form = || MalformedCode::WrongForm {
            shown: trimmed.to_string(),
        };
        let bytes: [u8; 5] = trimmed.as_bytes().try_into().map_err(|_| wrong_form())?;
        let bytes = bytes.map(|byte| byte.to_ascii_uppercase());
        let value = CodeValue { bytes };
        if value.classify().is_none() {
            return Err(wrong_form());
        }
        Ok(value)
    }

    fn classify(&self) -> Option<CodeForm> {
        let [first, middle @ .., last] = self.bytes;
        let middle_digits = middle.iter().all(u8::is_ascii_digit);
        if !middle_digits {
            return None;
        }
        match (first, last) {
            (b'0'..=b'9', b'0'..=b'9') => Some(CodeForm::CategoryI),
            (b'0'..=b'9', b'F') => Some(CodeForm::CategoryII),
            (b'0'..=b'9', b'T') => Some(CodeForm::CategoryIII),
            (b'0'..=b'9', b'U') => Some(CodeForm::ProprietaryLaboratoryAnalysis),
            (b'0'..=b'9', b'M') => Some(CodeForm::MultianalyteAssay),
            (b'A'..=b'V', b'0'..=b'9') => Some(CodeForm::HcpcsLevelII),
            _ => None,
        }
    }

    /// The form of the code.
    pub fn form(&self) -> CodeForm {
        // Every constructed value passed `classify` in `parse`.
        self.classify().unwrap_or(CodeForm::CategoryI)
    }

    /// The CPT category, if the code is in one.
    pub fn category(&self) -> Option<Category> {
        self.form().category()
    }

    /// The normalised code text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes ever reach `bytes`.
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

impl CodeValue {
    /// The five bytes as one big-endian number, which orders as the text does:
    /// one integer comparison instead of a `memcmp` call on every step of the
    /// registry's binary searches.
    fn order_key(&self) -> u64 {
        let [a, b, c, d, e] = self.bytes;
        u64::from_be_bytes([0, 0, 0, a, b, c, d, e])
    }
}

impl Ord for CodeValue {
    fn cmp(&self, other: &CodeValue) -> std::cmp::Ordering {
        self.order_key().cmp(&other.order_key())
    }
}

impl PartialOrd for CodeValue {
    fn partial_cmp(&self, other: &CodeValue) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for CodeValue {
    type Err = MalformedCode;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        CodeValue::parse(input)
    }
}

impl fmt::Display for CodeValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Debug for CodeValue {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CodeValue({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_form_is_recognised() {
        let cases = [
            ("20604", CodeForm::CategoryI),
            ("0521F", CodeForm::CategoryII),
            ("0095T", CodeForm::CategoryIII),
            ("0001U", CodeForm::ProprietaryLaboratoryAnalysis),
            ("0002M", CodeForm::MultianalyteAssay),
            ("G0260", CodeForm::HcpcsLevelII),
            ("A0021", CodeForm::HcpcsLevelII),
            ("V5010", CodeForm::HcpcsLevelII),
        ];
        for (input, form) in cases {
            assert_eq!(
                CodeValue::parse(input).map(|c| c.form()),
                Ok(form),
                "{input}"
            );
        }
    }

    #[test]
    fn input_is_trimmed_and_upper_cased() {
        let code = CodeValue::parse(" \t0521f \n").unwrap();
        assert_eq!(code.as_str(), "0521F");
    }

    #[test]
    fn other_shapes_are_malformed_and_say_the_forms() {
        for input in [
            "", "   ", "2060", "206044", "W1234", "0521X", "12A45", "G026O", "é1234",
        ] {
            let error = CodeValue::parse(input).unwrap_err();
            assert!(
                error.to_string().contains("Category II, e.g. 0521F"),
                "{input}: {error}"
            );
        }
        assert_eq!(
            CodeValue::parse(&"1".repeat(40)),
            Err(MalformedCode::TooLong)
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in "\\PC{0,40}") {
            let _ = CodeValue::parse(&input);
        }

        #[test]
        fn parsed_codes_are_normal_and_reparse_to_themselves(input in "\\s{0,3}([0-9]{5}|[0-9]{4}[FfTtUuMm]|[A-Va-v][0-9]{4})\\s{0,3}") {
            let code = CodeValue::parse(&input).unwrap();
            prop_assert_eq!(code.as_str(), input.trim().to_ascii_uppercase());
            prop_assert_eq!(CodeValue::parse(code.as_str()), Ok(code));
        }

        #[test]
        fn anything_that_parses_has_five_characters_of_known_form(input in "[0-9A-Za-z ]{0,8}") {
            if let Ok(code) = CodeValue::parse(&input) {
                prop_assert_eq!(code.as_str().len(), 5);
                prop_assert!(code.as_str().chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            }
        }

        #[test]
        fn code_order_is_string_order(
            a in "[0-9]{5}|[0-9]{4}[FTUM]|[A-V][0-9]{4}",
            b in "[0-9]{5}|[0-9]{4}[FTUM]|[A-V][0-9]{4}",
        ) {
            let (x, y) = (CodeValue::parse(&a).unwrap(), CodeValue::parse(&b).unwrap());
            prop_assert_eq!(x.cmp(&y), a.as_str().cmp(b.as_str()));
            prop_assert_eq!(x.partial_cmp(&y), Some(a.as_str().cmp(b.as_str())));
            prop_assert_eq!(x == y, a == b);
        }
    }
}
