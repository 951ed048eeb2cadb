//! Conversions between domain values and their protobuf messages.

use crate::{
    codes::{
        Category, CodeAsOf, CodeForm, CodeStatus, CodeValue, ExplainedHit, Imaging, MatchKind,
        SearchMatch, Validation, ValidationReason,
    },
    pb,
};

fn text(value: &str) -> String {
    value.to_string()
}

fn code_list(codes: &[CodeValue]) -> Vec<String> {
    codes.iter().map(ToString::to_string).collect()
}

impl From<CodeAsOf<'_>> for pb::Code {
    fn from(found: CodeAsOf<'_>) -> pb::Code {
        let version = found.version;
        let status = match CodeStatus::of(found.standing) {
            Some(status) => pb::Status::from(status),
            None => pb::Status::Unspecified,
        };
        pb::Code {
            code: version.code.to_string(),
            category: version
                .code
                .category()
                .map_or(pb::Category::Unspecified, pb::Category::from)
                .into(),
            form: pb::CodeForm::from(version.code.form()).into(),
            descriptor: text(&version.descriptor),
            short_name: text(&version.short_name),
            section: text(&version.section),
            subsection: text(&version.subsection),
            heading: text(&version.heading),
            anatomy: text(&version.anatomy),
            imaging: pb::Imaging::from(version.imaging).into(),
            add_on: version.add_on,
            primary_codes: code_list(&version.primary_codes),
            synonyms: version
                .synonyms
                .iter()
                .map(|synonym| text(synonym))
                .collect(),
            status: status.into(),
            effective_date: version
                .period
                .effective
                .map(|date| date.to_string())
                .unwrap_or_default(),
            deletion_date: version
                .period
                .deletion
                .map(|date| date.to_string())
                .unwrap_or_default(),
            replaced_by: code_list(&version.replaced_by),
            sunset_date: version
                .sunset
                .map(|date| date.to_string())
                .unwrap_or_default(),
            measure_ids: version.measure_ids.iter().map(|id| text(id)).collect(),
        }
    }
}

impl From<Category> for pb::Category {
    fn from(category: Category) -> pb::Category {
        match category {
            Category::I => pb::Category::I,
            Category::II => pb::Category::Ii,
            Category::III => pb::Category::Iii,
        }
    }
}

impl From<CodeForm> for pb::CodeForm {
    fn from(form: CodeForm) -> pb::CodeForm {
        match form {
            CodeForm::CategoryI => pb::CodeForm::CategoryI,
            CodeForm::CategoryII => pb::CodeForm::CategoryIi,
            CodeForm::CategoryIII => pb::CodeForm::CategoryIii,
            CodeForm::ProprietaryLaboratoryAnalysis => pb::CodeForm::ProprietaryLaboratoryAnalysis,
            CodeForm::MultianalyteAssay => pb::CodeForm::MultianalyteAssay,
            CodeForm::HcpcsLevelII => pb::CodeForm::HcpcsLevelIi,
        }
    }
}

impl From<Imaging> for pb::Imaging {
    fn from(imaging: Imaging) -> pb::Imaging {
        match imaging {
            Imaging::Unspecified => pb::Imaging::Unspecified,
            Imaging::None => pb::Imaging::None,
            Imaging::Fluoroscopy => pb::Imaging::Fluoroscopy,
            Imaging::Ct => pb::Imaging::Ct,
            Imaging::FluoroscopyOrCt => pb::Imaging::FluoroscopyOrCt,
            Imaging::Ultrasound => pb::Imaging::Ultrasound,
            Imaging::Any => pb::Imaging::Any,
        }
    }
}

impl From<CodeStatus> for pb::Status {
    fn from(status: CodeStatus) -> pb::Status {
        match status {
            CodeStatus::Active => pb::Status::Active,
            CodeStatus::Deleted => pb::Status::Deleted,
        }
    }
}

impl From<ValidationReason> for pb::ValidationReason {
    fn from(reason: ValidationReason) -> pb::ValidationReason {
        match reason {
            ValidationReason::Valid => pb::ValidationReason::Valid,
            ValidationReason::Malformed => pb::ValidationReason::Malformed,
            ValidationReason::Unknown => pb::ValidationReason::Unknown,
            ValidationReason::Deleted => pb::ValidationReason::Deleted,
            ValidationReason::NotYetEffective => pb::ValidationReason::NotYetEffective,
            ValidationReason::Sunset => pb::ValidationReason::Sunset,
        }
    }
}

impl From<ExplainedHit<'_>> for pb::SearchResult {
    fn from(explained: ExplainedHit<'_>) -> pb::SearchResult {
        pb::SearchResult {
            code: Some(explained.hit.found.into()),
            score: explained.hit.score,
            matches: explained
                .matches
                .into_iter()
                .map(pb::SearchMatch::from)
                .collect(),
        }
    }
}

impl From<SearchMatch> for pb::SearchMatch {
    fn from(found: SearchMatch) -> pb::SearchMatch {
        pb::SearchMatch {
            query_word: found.query_word,
            field: found.field.name().to_string(),
            kind: pb::MatchKind::from(found.kind).into(),
            matched_text: found.matched_text,
        }
    }
}

impl From<MatchKind> for pb::MatchKind {
    fn from(kind: MatchKind) -> pb::MatchKind {
        match kind {
            MatchKind::Exact => pb::MatchKind::Exact,
            MatchKind::Prefix => pb::MatchKind::Prefix,
            MatchKind::Fuzzy => pb::MatchKind::Fuzzy,
            MatchKind::Code => pb::MatchKind::Code,
            MatchKind::CodePrefix => pb::MatchKind::CodePrefix,
            MatchKind::Abbreviation => pb::MatchKind::Abbreviation,
            MatchKind::Phrase => pb::MatchKind::Phrase,
            MatchKind::Quantity => pb::MatchKind::Quantity,
        }
    }
}

/// A verdict together with the input it judges, which the domain does not keep.
pub struct JudgedInput<'a> {
    /// The string exactly as sent.
    pub input: String,
    /// The verdict on it.
    pub validation: Validation<'a>,
}

impl From<JudgedInput<'_>> for pb::CodeValidation {
    fn from(judged: JudgedInput<'_>) -> pb::CodeValidation {
        let validation = judged.validation;
        pb::CodeValidation {
            input: judged.input,
            code: validation
                .code
                .map(|code| code.to_string())
                .unwrap_or_default(),
            valid: validation.is_valid(),
            reason: pb::ValidationReason::from(validation.reason).into(),
            message: validation.message,
            details: validation.found.map(pb::Code::from),
        }
    }
}

/// Reads a category filter value; `None` for values outside the enum or unset.
pub fn category_of(value: i32) -> Option<Category> {
    match pb::Category::try_from(value).ok()? {
        pb::Category::I => Some(Category::I),
        pb::Category::Ii => Some(Category::II),
        pb::Category::Iii => Some(Category::III),
        pb::Category::Unspecified => None,
    }
}

/// Reads an imaging filter value; `None` for values outside the enum.
pub fn imaging_of(value: i32) -> Option<Imaging> {
    Some(match pb::Imaging::try_from(value).ok()? {
        pb::Imaging::Unspecified => Imaging::Unspecified,
        pb::Imaging::None => Imaging::None,
        pb::Imaging::Fluoroscopy => Imaging::Fluoroscopy,
        pb::Imaging::Ct => Imaging::Ct,
        pb::Imaging::FluoroscopyOrCt => Imaging::FluoroscopyOrCt,
        pb::Imaging::Ultrasound => Imaging::Ultrasound,
        pb::Imaging::Any => Imaging::Any,
    })
}

/// Reads a status filter value; `None` for values outside the enum or unset.
pub fn status_of(value: i32) -> Option<CodeStatus> {
    match pb::Status::try_from(value).ok()? {
        pb::Status::Active => Some(CodeStatus::Active),
        pb::Status::Deleted => Some(CodeStatus::Deleted),
        pb::Status::Unspecified => None,
    }
}
