//! Where each document stands, in a few bytes: the days on which its version is
//! the one a code answers with, its own dates, and the facts the filters read.
//!
//! Ranking checks every candidate against the day searched and the filters. Doing
//! that through the code histories would chase a pointer per candidate into a
//! different allocation; with these facts packed side by side, a query matching
//! a hundred thousand codes admits them in a sequential pass. The answers agree
//! with [`CodeHistory::as_of`](crate::codes::CodeHistory::as_of) and
//! [`CodeFilter::admits`] (the property tests compare the index with the scan,
//! which uses those).

use jiff::civil::Date;

use super::{
    SearchIndex,
    weights::{self, Prior},
};
use crate::codes::{Category, CodeFilter, CodeRegistry, CodeStatus, Imaging, record::CodeVersion};

/// A day as `yyyymmdd`, which orders as the dates do.
pub(crate) fn day_number(date: Date) -> i32 {
    i32::from(date.year()) * 10_000 + i32::from(date.month()) * 100 + i32::from(date.day())
}

/// The facts of one document (one version of a code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DocFacts {
    // The version answers for days `answers_from..answers_until`: from its own
    // effective day (the first version: from always) until the next one's.
    answers_from: i32,
    answers_until: i32,
    effective: i32,
    deletion: i32,
    sunset: i32,
    category: Option<Category>,
    imaging: Imaging,
    add_on: bool,
}

impl DocFacts {
    /// The facts of `versions[at]`; `versions` is one history, oldest first.
    pub fn of(versions: &[CodeVersion], at: usize) -> DocFacts {
        let version = &versions[at];
        let effective = version.period.effective.map_or(i32::MIN, day_number);
        DocFacts {
            answers_from: if at == 0 { i32::MIN } else { effective },
            answers_until: versions
                .get(at + 1)
                .and_then(|next| next.period.effective)
                .map_or(i32::MAX, day_number),
            effective,
            deletion: version.period.deletion.map_or(i32::MAX, day_number),
            sunset: version.sunset.map_or(i32::MAX, day_number),
            category: version.code.category(),
            imaging: version.imaging,
            add_on: version.add_on,
        }
    }

    /// The document in one byte, for the common search (every active code, no
    /// filter): 0 when its version has any date, else what its prior depends
    /// on. A query matching most of a large code set admits its matches from
    /// these bytes, which stay in cache where the facts would not.
    pub fn brief(&self) -> u8 {
        let timeless = self.answers_from == i32::MIN
            && self.answers_until == i32::MAX
            && self.effective == i32::MIN
            && self.deletion == i32::MAX
            && self.sunset == i32::MAX;
        if !timeless {
            return 0;
        }
        let category = match self.category {
            None => 0,
            Some(Category::I) => 1,
            Some(Category::II) => 2,
            Some(Category::III) => 3,
        };
        1 + u8::from(self.add_on) + 2 * category
    }

    /// The document's prior when it answers for `day` and passes `filter`.
    /// Only for filters that [`reads_only_facts`] accepts.
    pub fn admit(&self, filter: &CodeFilter, day: i32) -> Option<Prior> {
        if day < self.answers_from || day >= self.answers_until || day < self.effective {
            return None;
        }
        let active = day < self.deletion && day < self.sunset;
        let status = if active {
            CodeStatus::Active
        } else {
            CodeStatus::Deleted
        };
        let status_admitted = if filter.statuses.is_empty() {
            active
        } else {
            filter.statuses.contains(&status)
        };
        let admitted = status_admitted
            && (filter.categories.is_empty()
                || self
                    .category
                    .is_some_and(|category| filter.categories.contains(&category)))
            && (filter.imaging.is_empty() || filter.imaging.contains(&self.imaging))
            && filter.add_on.is_none_or(|add_on| add_on == self.add_on);
        admitted.then(|| weights::prior_of(self.add_on, active, self.category))
    }
}

/// The prior of a timeless document from its [`DocFacts::brief`] (not 0): it is
/// active on every day.
fn timeless_prior(brief: u8) -> Prior {
    let packed = brief - 1;
    let category = match packed >> 1 {
        0 => None,
        1 => Some(Category::I),
        2 => Some(Category::II),
        _ => Some(Category::III),
    };
    weights::prior_of(packed & 1 == 1, true, category)
}

/// True when `filter` asks only what [`DocFacts`] knows (not a code range, a
/// section or anatomy text, which need the code itself).
pub(crate) fn reads_only_facts(filter: &CodeFilter) -> bool {
    filter.range_start.is_none()
        && filter.range_end.is_none()
        && filter.section.is_none()
        && filter.anatomy.is_none()
}

/// Decides whether a document answers for the day searched and passes the
/// filters, and what its prior is: from the packed facts when the filters allow,
/// else from the code history itself.
pub(crate) struct Admission<'a> {
    registry: &'a CodeRegistry,
    index: &'a SearchIndex,
    filter: &'a CodeFilter,
    as_of: Date,
    day: i32,
    from_facts: bool,
    // No filter at all: a timeless document is admitted from its brief alone.
    unfiltered: bool,
}

impl<'a> Admission<'a> {
    /// Admission to a search of `registry` with `filter` on `as_of`.
    pub fn new(registry: &'a CodeRegistry, filter: &'a CodeFilter, as_of: Date) -> Admission<'a> {
        let from_facts = reads_only_facts(filter);
        let unfiltered = from_facts
            && filter.categories.is_empty()
            && filter.imaging.is_empty()
            && filter.add_on.is_none()
            && filter.statuses.is_empty();
        Admission {
            unfiltered,
            registry,
            index: registry.search_index(),
            filter,
            as_of,
            day: day_number(as_of),
            from_facts,
        }
    }

    /// True when the document is admitted; [`Admission::prior`] without the
    /// prior, for counting.
    pub fn admits(&self, doc: u32) -> bool {
        (self.unfiltered && self.index.brief(doc) != 0) || self.prior(doc).is_some()
    }

    /// The document's prior when it is admitted.
    pub fn prior(&self, doc: u32) -> Option<Prior> {
        let index = self.index;
        if self.unfiltered {
            let brief = index.brief(doc);
            if brief != 0 {
                return Some(timeless_prior(brief));
            }
        }
        if self.from_facts {
            return index.facts(doc).admit(self.filter, self.day);
        }
        let (history, version) = index.locate(doc);
        let history = &self.registry.histories()[history];
        let found = history.as_of(self.as_of);
        let answers = std::ptr::eq(found.version, &history.versions()[version]);
        (answers && self.filter.admits(&found)).then(|| weights::prior(&found))
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn a_brief_admits_as_the_facts_do() {
        let undated = "code,descriptor,add_on\n64483,Undated primary.,false\n\
                       64484,Undated add-on.,true\n0521F,Undated measure code.,false\n\
                       0095T,Undated emerging code.,false\nJ1030,Undated drug.,false\n";
        let registry = CodeRegistry::from_sources(&[
            (
                crate::codes::BUILT_IN_SOURCE,
                include_str!("../../../data/codes.csv"),
            ),
            ("undated.csv", undated),
        ])
        .unwrap();
        let index = registry.search_index();
        let filter = CodeFilter::default();
        let mut timeless = 0;
        for day in [date(2009, 6, 1), date(2025, 6, 1)] {
            let admission = Admission::new(&registry, &filter, day);
            for doc in 0..index.documents() as u32 {
                let facts = index.facts(doc).admit(&filter, day_number(day));
                assert_eq!(admission.prior(doc), facts, "document {doc}");
                timeless += usize::from(index.brief(doc) != 0);
            }
        }
        assert!(timeless >= 2, "{timeless}");
    }
}
