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

/// How much of each code an answer carries: the edge's reading of
/// `pb::CodeView` (AIP-157), with the method's default already applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeView {
    /// What a typeahead shows: `code`, `category`, `short_name`, `descriptor`
    /// and `status`.
    Basic,
    /// Every field.
    Full,
}

/// Reads a requested view, `default` when unset; `None` for a value outside
/// the enum.
pub fn view_of(value: i32, default: CodeView) -> Option<CodeView> {
    match pb::CodeView::try_from(value).ok()? {
        pb::CodeView::Unspecified => Some(default),
        pb::CodeView::Basic => Some(CodeView::Basic),
        pb::CodeView::Full => Some(CodeView::Full),
    }
}

/// The `Code` message of `found` with the fields of `view`: the basic ones,
/// and for the full view every other one on top of them.
pub fn code_message(found: CodeAsOf<'_>, view: CodeView) -> pb::Code {
    let version = found.version;
    let status = match CodeStatus::of(found.standing) {
        Some(status) => pb::Status::from(status),
        None => pb::Status::Unspecified,
    };
    let basic = pb::Code {
        code: version.code.to_string(),
        category: version
            .code
            .category()
            .map_or(pb::Category::Unspecified, pb::Category::from)
            .into(),
        descriptor: text(&version.descriptor),
        short_name: text(&version.short_name),
        status: status.into(),
        ..pb::Code::default()
    };
    if view == CodeView::Basic {
        return basic;
    }
    pb::Code {
        form: pb::CodeForm::from(version.code.form()).into(),
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
        ..basic
    }
}

/// The full view, as `GetCode` and `ValidateCodes` answer.
impl From<CodeAsOf<'_>> for pb::Code {
    fn from(found: CodeAsOf<'_>) -> pb::Code {
        code_message(found, CodeView::Full)
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

/// The `SearchResult` of `explained`, its code with the fields of `view`, and
/// the matches the search was asked to explain (in the full view only).
pub fn search_result(explained: ExplainedHit<'_>, view: CodeView) -> pb::SearchResult {
    pb::SearchResult {
        code: Some(code_message(explained.hit.found, view)),
        score: explained.hit.score,
        matches: explained
            .matches
            .into_iter()
            .map(pb::SearchMatch::from)
            .collect(),
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

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use proptest::prelude::*;

    use super::*;
    use crate::codes::CodeRegistry;

    #[test]
    fn the_basic_view_is_the_full_view_cut_to_its_five_fields_for_every_code() {
        let registry = CodeRegistry::built_in().unwrap();
        let mut statuses = std::collections::HashSet::new();
        for day in [date(2009, 6, 1), date(2025, 6, 1)] {
            for history in registry.histories() {
                let found = history.as_of(day);
                let full = code_message(found, CodeView::Full);
                let basic = code_message(found, CodeView::Basic);
                assert_eq!(full, pb::Code::from(found));
                let cut = pb::Code {
                    code: full.code.clone(),
                    category: full.category,
                    short_name: full.short_name.clone(),
                    descriptor: full.descriptor.clone(),
                    status: full.status,
                    ..pb::Code::default()
                };
                assert_eq!(basic, cut);
                statuses.insert(basic.status());
            }
        }
        assert!(statuses.contains(&pb::Status::Deleted), "{statuses:?}");
        assert!(statuses.contains(&pb::Status::Active), "{statuses:?}");
    }

    #[test]
    fn an_unset_view_is_the_default_and_the_others_are_read() {
        for default in [CodeView::Basic, CodeView::Full] {
            assert_eq!(view_of(0, default), Some(default));
            assert_eq!(view_of(1, default), Some(CodeView::Basic));
            assert_eq!(view_of(2, default), Some(CodeView::Full));
        }
    }

    proptest! {
        #[test]
        fn a_view_outside_the_enum_is_not_read(value in any::<i32>()) {
            prop_assume!(!(0..=2).contains(&value));
            prop_assert_eq!(view_of(value, CodeView::Full), None);
        }
    }
}
