//! One version of a code: what it means and the days it is valid.

use jiff::civil::Date;

use super::value::CodeValue;

/// The imaging guidance a code includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Imaging {
    /// Not recorded.
    #[default]
    Unspecified,
    /// No guidance included; guidance is reported separately.
    None,
    /// Fluoroscopic guidance included.
    Fluoroscopy,
    /// CT guidance included.
    Ct,
    /// Fluoroscopic or CT guidance included.
    FluoroscopyOrCt,
    /// Ultrasound guidance included.
    Ultrasound,
    /// Guidance of any modality included when performed.
    Any,
}

impl Imaging {
    /// Every value with the name code-set files use for it.
    pub const NAMES: [(Imaging, &'static str); 7] = [
        (Imaging::Unspecified, ""),
        (Imaging::None, "none"),
        (Imaging::Fluoroscopy, "fluoroscopy"),
        (Imaging::Ct, "ct"),
        (Imaging::FluoroscopyOrCt, "fluoroscopy_or_ct"),
        (Imaging::Ultrasound, "ultrasound"),
        (Imaging::Any, "any"),
    ];

    /// Reads the file name of a value, ignoring case.
    pub fn from_name(name: &str) -> Option<Imaging> {
        Imaging::NAMES
            .iter()
            .find(|(_, known)| known.eq_ignore_ascii_case(name))
            .map(|(imaging, _)| *imaging)
    }
}

/// The days a version of a code is valid: from `effective` (inclusive; `None` means
/// since before the records) until `deletion` (exclusive; `None` means still valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    /// First valid day.
    pub effective: Option<Date>,
    /// First day no longer valid.
    pub deletion: Option<Date>,
}

impl Period {
    /// True when `date` lies in the period.
    pub fn contains(&self, date: Date) -> bool {
        !self.starts_after(date) && !self.ended_by(date)
    }

    /// True when the period has not begun on `date`.
    pub fn starts_after(&self, date: Date) -> bool {
        self.effective.is_some_and(|effective| date < effective)
    }

    /// True when the period is over on `date`.
    pub fn ended_by(&self, date: Date) -> bool {
        self.deletion.is_some_and(|deletion| date >= deletion)
    }

    /// True when some day lies in both periods.
    pub fn overlaps(&self, other: &Period) -> bool {
        let starts_before_other_ends = match (self.effective, other.deletion) {
            (Some(start), Some(end)) => start < end,
            _ => true,
        };
        let other_starts_before_self_ends = match (other.effective, self.deletion) {
            (Some(start), Some(end)) => start < end,
            _ => true,
        };
        starts_before_other_ends && other_starts_before_self_ends
    }
}

/// One version of a code, as a code-set file row describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeVersion {
    /// The code.
    pub code: CodeValue,
    /// One sentence saying what the code reports.
    pub descriptor: Box<str>,
    /// At most [`MAX_SHORT_NAME_CHARS`] characters.
    pub short_name: Box<str>,
    /// Top level of the hierarchy.
    pub section: Box<str>,
    /// Second level of the hierarchy.
    pub subsection: Box<str>,
    /// Third level of the hierarchy.
    pub heading: Box<str>,
    /// Body part, free text.
    pub anatomy: Box<str>,
    /// Imaging guidance included.
    pub imaging: Imaging,
    /// Reported only with a primary code.
    pub add_on: bool,
    /// The primary codes of an add-on.
    pub primary_codes: Box<[CodeValue]>,
    /// Lay terms and abbreviations.
    pub synonyms: Box<[Box<str>]>,
    /// The days this version is valid.
    pub period: Period,
    /// What to report instead once the code is deleted.
    pub replaced_by: Box<[CodeValue]>,
    /// Archive day of a Category III code.
    pub sunset: Option<Date>,
    /// Ids of the quality measures that use the code.
    pub measure_ids: Box<[Box<str>]>,
}

/// Longest short name, in characters.
pub const MAX_SHORT_NAME_CHARS: usize = 28;

/// Where a code stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// In force.
    Active,
    /// Deleted on `since` (inclusive).
    Deleted {
        /// First day the code was no longer valid.
        since: Date,
    },
    /// A Category III code archived on `since`.
    Sunset {
        /// The sunset date.
        since: Date,
    },
    /// First valid on `from`, after the day asked about.
    NotYetEffective {
        /// First valid day.
        from: Date,
    },
}

impl Standing {
    /// True when the code may be reported on the day asked about.
    pub fn is_active(&self) -> bool {
        matches!(self, Standing::Active)
    }
}

/// A code version together with where it stands on the day asked about.
#[derive(Debug, Clone, Copy)]
pub struct CodeAsOf<'a> {
    /// The version that answers for the day: the one in force, else the one that
    /// ended last, else the first to come.
    pub version: &'a CodeVersion,
    /// Where the code stands that day.
    pub standing: Standing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn period(effective: Option<Date>, deletion: Option<Date>) -> Period {
        Period {
            effective,
            deletion,
        }
    }

    #[test]
    fn deletion_day_is_the_first_day_not_covered() {
        let p = period(Some(date(2017, 1, 1)), Some(date(2020, 1, 1)));
        assert!(!p.contains(date(2016, 12, 31)));
        assert!(p.contains(date(2017, 1, 1)));
        assert!(p.contains(date(2019, 12, 31)));
        assert!(!p.contains(date(2020, 1, 1)));
    }

    #[test]
    fn a_revision_that_starts_where_the_last_ended_does_not_overlap() {
        let first = period(None, Some(date(2020, 1, 1)));
        let second = period(Some(date(2020, 1, 1)), None);
        let third = period(Some(date(2019, 6, 1)), None);
        assert!(!first.overlaps(&second));
        assert!(first.overlaps(&third));
        assert!(second.overlaps(&third));
    }
}
