//! Narrowing the code set: the filters that listing and search share.

use super::{
    record::{CodeAsOf, Imaging, Standing},
    value::{Category, CodeValue},
};

/// Whether a code is active or deleted on the day asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeStatus {
    /// In force.
    Active,
    /// Deleted, or a Category III code past its sunset date.
    Deleted,
}

impl CodeStatus {
    /// The status a standing shows as; `None` for a code not yet in effect, which
    /// no listing shows.
    pub fn of(standing: Standing) -> Option<CodeStatus> {
        match standing {
            Standing::Active => Some(CodeStatus::Active),
            Standing::Deleted { .. } | Standing::Sunset { .. } => Some(CodeStatus::Deleted),
            Standing::NotYetEffective { .. } => None,
        }
    }
}

/// What a code must be to be listed or found. Empty lists and `None` admit all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CodeFilter {
    /// First code of an inclusive range.
    pub range_start: Option<CodeValue>,
    /// Last code of an inclusive range.
    pub range_end: Option<CodeValue>,
    /// Admitted categories.
    pub categories: Vec<Category>,
    /// Section, compared ignoring case.
    pub section: Option<String>,
    /// Text the anatomy must contain, compared ignoring case.
    pub anatomy: Option<String>,
    /// Admitted imaging values.
    pub imaging: Vec<Imaging>,
    /// Add-on codes only (`true`) or primary codes only (`false`).
    pub add_on: Option<bool>,
    /// Admitted statuses; empty admits active codes only.
    pub statuses: Vec<CodeStatus>,
}

impl CodeFilter {
    /// True when `code` sorts before the range.
    pub fn before_range(&self, code: CodeValue) -> bool {
        self.range_start.is_some_and(|start| code < start)
    }

    /// True when `code` sorts after the range.
    pub fn after_range(&self, code: CodeValue) -> bool {
        self.range_end.is_some_and(|end| code > end)
    }

    /// True when the code, as it stands, passes every filter.
    pub fn admits(&self, found: &CodeAsOf<'_>) -> bool {
        let version = found.version;
        let Some(status) = CodeStatus::of(found.standing) else {
            return false;
        };
        let status_admitted = if self.statuses.is_empty() {
            status == CodeStatus::Active
        } else {
            self.statuses.contains(&status)
        };
        status_admitted
            && !self.before_range(version.code)
            && !self.after_range(version.code)
            && (self.categories.is_empty()
                || version
                    .code
                    .category()
                    .is_some_and(|category| self.categories.contains(&category)))
            && self
                .section
                .as_ref()
                .is_none_or(|section| version.section.eq_ignore_ascii_case(section))
            && self
                .anatomy
                .as_ref()
                .is_none_or(|anatomy| contains_ignoring_case(&version.anatomy, anatomy))
            && (self.imaging.is_empty() || self.imaging.contains(&version.imaging))
            && self.add_on.is_none_or(|add_on| version.add_on == add_on)
    }
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}
