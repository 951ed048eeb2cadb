//! The code registry: an immutable snapshot of every known code and its history.

use std::{
    collections::{BTreeMap, HashSet},
    hash::{DefaultHasher, Hash, Hasher},
    path::PathBuf,
    sync::Arc,
};

use jiff::civil::Date;

use crate::source_files;

use super::{
    code_file::{CodeRow, LoadProblem, MAX_REPORTED_PROBLEMS, read_code_file},
    filter::CodeFilter,
    record::{CodeAsOf, CodeVersion, Standing},
    search::SearchIndex,
    value::CodeValue,
};

/// The built-in code set, embedded so that the binary needs no files.
const BUILT_IN_CODES: &str = include_str!("../../data/codes.csv");

/// The name the built-in set goes by in messages.
pub const BUILT_IN_SOURCE: &str = "built-in codes.csv";

/// Every version of one code, oldest first; periods never overlap.
#[derive(Debug, Clone)]
pub struct CodeHistory {
    // A boxed slice, not the `Vec` the rows were gathered in: that one's spare
    // capacity (room for four rows) would outlive the build for every code.
    versions: Box<[CodeVersion]>,
}

impl CodeHistory {
    /// The code the history is of.
    pub fn code(&self) -> CodeValue {
        self.versions[0].code
    }

    /// All versions, oldest first.
    pub fn versions(&self) -> &[CodeVersion] {
        &self.versions
    }

    /// Where the code stands on `date`, with the version that answers for it.
    pub fn as_of(&self, date: Date) -> CodeAsOf<'_> {
        let mut last_ended: Option<&CodeVersion> = None;
        for version in &self.versions {
            if version.period.starts_after(date) {
                break;
            }
            if version.period.contains(date) {
                let standing = match version.sunset {
                    Some(sunset) if date >= sunset => Standing::Sunset { since: sunset },
                    _ => Standing::Active,
                };
                return CodeAsOf { version, standing };
            }
            last_ended = Some(version);
        }
        match last_ended {
            Some(version) => CodeAsOf {
                version,
                standing: Standing::Deleted {
                    // A version that ended has a deletion date by construction.
                    since: version.period.deletion.unwrap_or(date),
                },
            },
            None => {
                let version = &self.versions[0];
                CodeAsOf {
                    version,
                    standing: Standing::NotYetEffective {
                        from: version.period.effective.unwrap_or(date),
                    },
                }
            }
        }
    }
}

/// Why a well-formed code has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The registry holds no such code.
    #[error("{code} is well-formed ({form}) but not in the code set", form = code.form().describe())]
    Unknown {
        /// The code asked about.
        code: CodeValue,
    },
    /// The code exists only from a later day.
    #[error("{code} takes effect on {from}, after the day asked about")]
    NotYetEffective {
        /// The code asked about.
        code: CodeValue,
        /// Its first valid day.
        from: Date,
    },
}

/// A code set that could not be loaded, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the code set was refused with {} problem(s); fix them and load again:\n{}", .problems.len(), list(.problems))]
pub struct CodeSetError {
    /// The problems, in file and line order, at most [`MAX_REPORTED_PROBLEMS`].
    pub problems: Vec<LoadProblem>,
}

impl CodeSetError {
    /// The error for `problems`, ordered by file and line and capped at
    /// [`MAX_REPORTED_PROBLEMS`].
    fn sorted(mut problems: Vec<LoadProblem>) -> CodeSetError {
        // Stable: problems of one line keep the order they were found in.
        problems.sort_by(|a, b| (&a.source, a.line).cmp(&(&b.source, b.line)));
        problems.truncate(MAX_REPORTED_PROBLEMS);
        CodeSetError { problems }
    }
}

fn list(problems: &[LoadProblem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|problem| format!("  {problem}"))
        .collect();
    lines.join("\n")
}

/// Every known code with its history, sorted by code for lookups and listing.
///
/// A registry is built once, checked whole, and never changed: a reload builds a
/// new one and swaps it in.
///
/// ```
/// use cptd::codes::{CodeRegistry, CodeValue};
/// use jiff::civil::date;
///
/// let registry = CodeRegistry::built_in().unwrap();
/// let code = CodeValue::parse("64483").unwrap();
/// let found = registry.get(code, date(2025, 6, 1)).unwrap();
/// assert!(found.standing.is_active());
/// ```
#[derive(Debug)]
pub struct CodeRegistry {
    histories: Vec<CodeHistory>,
    // Each history's code, in the same order: searched instead of the
    // histories, whose codes each sit behind a pointer of their own, so that a
    // look-up's binary search reads one compact array rather than a cache
    // line per step.
    codes: Box<[CodeValue]>,
    // Built once per snapshot, so that no query splits text or scans codes.
    search_index: SearchIndex,
    version: Arc<str>,
}

impl CodeRegistry {
    /// The built-in pain-management code set.
    pub fn built_in() -> Result<CodeRegistry, CodeSetError> {
        CodeRegistry::from_sources(&[(BUILT_IN_SOURCE, BUILT_IN_CODES)])
    }

    /// The built-in set with each of `files` laid over it, in order. A file that
    /// cannot be read, is not a regular file or is larger than `max_file_bytes`
    /// is a problem like any other: the whole set is refused.
    pub fn load(files: &[PathBuf], max_file_bytes: u64) -> Result<CodeRegistry, CodeSetError> {
        let texts =
            source_files::read_all(files, max_file_bytes).map_err(|unreadable| CodeSetError {
                problems: unreadable
                    .into_iter()
                    .map(|file| LoadProblem {
                        source: Arc::from(file.name),
                        line: 0,
                        column: None,
                        message: format!("cannot read the file: {}", file.reason),
                    })
                    .collect(),
            })?;
        CodeRegistry::from_sources(&source_files::after_built_in(
            (BUILT_IN_SOURCE, BUILT_IN_CODES),
            &texts,
        ))
    }

    /// Builds a registry from code-set files given as `(name, text)`, in order.
    /// Any problem in any file refuses the whole set.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<CodeRegistry, CodeSetError> {
        let mut layers = Vec::new();
        let mut problems = Vec::new();
        let mut hasher = DefaultHasher::new();
        for (name, text) in sources {
            text.hash(&mut hasher);
            match read_code_file(name, text) {
                Ok(rows) => layers.push(rows),
                Err(found) => problems.extend(found),
            }
        }
        // Rows that read cleanly still go through the whole-set checks, so that one
        // refusal lists every problem rather than only the first kind found.
        let histories = match assemble(layers) {
            Ok(histories) if problems.is_empty() => histories,
            Ok(_) => return Err(CodeSetError::sorted(problems)),
            Err(refused) => {
                problems.extend(refused.problems);
                return Err(CodeSetError::sorted(problems));
            }
        };
        let version = format!("{}-{:016x}", histories.len(), hasher.finish());
        let search_index = SearchIndex::build(&histories);
        let codes = histories.iter().map(CodeHistory::code).collect();
        Ok(CodeRegistry {
            histories,
            codes,
            search_index,
            version: version.into(),
        })
    }

    /// This registry with the quality measures that use each code added to its
    /// `measure_ids` (on every version), so that looking up a Category II code
    /// names the measures it reports. Codes `ids` does not name are unchanged.
    pub fn with_measure_ids(
        mut self,
        ids: &std::collections::HashMap<CodeValue, Vec<String>>,
    ) -> CodeRegistry {
        for history in &mut self.histories {
            let Some(measures) = ids.get(&history.code()) else {
                continue;
            };
            for version in &mut history.versions {
                let mut merged: Vec<Box<str>> = version.measure_ids.to_vec();
                for id in measures {
                    if !merged.iter().any(|known| **known == **id) {
                        merged.push(id.as_str().into());
                    }
                }
                version.measure_ids = merged.into();
            }
        }
        self
    }

    /// Identifies this snapshot; changes whenever the loaded files change.
    pub fn version(&self) -> &Arc<str> {
        &self.version
    }

    /// How many distinct codes the registry holds.
    pub fn len(&self) -> usize {
        self.histories.len()
    }

    /// True when the registry holds no code.
    pub fn is_empty(&self) -> bool {
        self.histories.is_empty()
    }

    /// Every code's history in code order.
    pub fn histories(&self) -> &[CodeHistory] {
        &self.histories
    }

    /// The search index of this snapshot.
    pub fn search_index(&self) -> &SearchIndex {
        &self.search_index
    }

    /// The history of one code.
    pub fn history(&self, code: CodeValue) -> Option<&CodeHistory> {
        self.codes
            .binary_search(&code)
            .ok()
            .map(|index| &self.histories[index])
    }

    /// Whether `version` is one of this snapshot's own, not an equal one from
    /// another snapshot.
    pub fn holds(&self, version: &CodeVersion) -> bool {
        self.history(version.code).is_some_and(|history| {
            history
                .versions()
                .as_ptr_range()
                .contains(&std::ptr::from_ref(version))
        })
    }

    /// The code as it stood on `as_of`, deleted codes included; a code unknown or
    /// not yet in effect that day is an error.
    pub fn get(&self, code: CodeValue, as_of: Date) -> Result<CodeAsOf<'_>, LookupError> {
        let found = self
            .history(code)
            .ok_or(LookupError::Unknown { code })?
            .as_of(as_of);
        match found.standing {
            Standing::NotYetEffective { from } => Err(LookupError::NotYetEffective { code, from }),
            _ => Ok(found),
        }
    }

    /// The codes that pass `filter` on `as_of`, in code order, starting after
    /// `after` when given.
    pub fn list<'a>(
        &'a self,
        filter: &'a CodeFilter,
        as_of: Date,
        after: Option<CodeValue>,
    ) -> impl Iterator<Item = CodeAsOf<'a>> + 'a {
        let start = match after {
            Some(after) => self.codes.partition_point(|&code| code <= after),
            None => self
                .codes
                .partition_point(|&code| filter.before_range(code)),
        };
        self.histories[start..]
            .iter()
            .take_while(|history| !filter.after_range(history.code()))
            .map(move |history| history.as_of(as_of))
            .filter(|found| filter.admits(found))
    }
}

/// Lays each file's rows over the files before it, then runs the checks that need
/// the whole set. A file's rows for a code replace that code's earlier versions,
/// each keeping the fields it leaves empty from the earlier version it overlaps.
fn assemble(layers: Vec<Vec<CodeRow>>) -> Result<Vec<CodeHistory>, CodeSetError> {
    let mut merged: BTreeMap<CodeValue, Vec<CodeRow>> = BTreeMap::new();
    for mut layer in layers {
        // Stable, so a code's rows keep their file order; cheap on files already
        // in code order, as code sets usually are.
        layer.sort_by_key(|row| row.version.code);
        let mut layer = layer.into_iter().peekable();
        while let Some(first) = layer.next() {
            let code = first.version.code;
            // Sized for the one row most codes have; a `Vec` grown by `push` would
            // keep room for four rows per code until the build ends.
            let mut rows = vec![first];
            while let Some(row) = layer.next_if(|row| row.version.code == code) {
                rows.push(row);
            }
            let rows = match merged.get(&code) {
                Some(earlier) => rows
                    .into_iter()
                    .map(|row| match earlier_version_under(&row, earlier) {
                        Some(base) => row.overlay(base),
                        None => row,
                    })
                    .collect(),
                None => rows,
            };
            merged.insert(code, rows);
        }
    }

    let mut problems = Vec::new();
    let mut problem = |row: &CodeRow, column: &'static str, message: String| {
        problems.push(LoadProblem {
            source: row.source.clone(),
            line: row.line,
            column: Some(column),
            message,
        });
    };
    for rows in merged.values_mut() {
        rows.sort_by_key(|row| row.version.period.effective);
        for (index, row) in rows.iter().enumerate() {
            for earlier in &rows[..index] {
                if earlier.version.period.overlaps(&row.version.period) {
                    problem(
                        row,
                        "effective_date",
                        format!(
                            "{} is already valid on some of these days ({} line {}); versions of a \
                             code must not overlap: end the earlier one with a deletion_date",
                            row.version.code, earlier.source, earlier.line
                        ),
                    );
                }
            }
            let version = &row.version;
            if version.add_on && version.primary_codes.is_empty() {
                problem(
                    row,
                    "primary_codes",
                    "an add-on code must name its primary codes".into(),
                );
            }
            if !version.add_on && !version.primary_codes.is_empty() {
                problem(
                    row,
                    "primary_codes",
                    "only an add-on code has primary codes; set add_on to true".into(),
                );
            }
        }
    }
    let known: HashSet<CodeValue> = merged.keys().copied().collect();
    for row in merged.values().flatten() {
        for primary in row
            .version
            .primary_codes
            .iter()
            .filter(|code| !known.contains(code))
        {
            problem(
                row,
                "primary_codes",
                format!(
                    "primary code {primary} of add-on {} is not in the code set",
                    row.version.code
                ),
            );
        }
    }

    if !problems.is_empty() {
        return Err(CodeSetError::sorted(problems));
    }
    Ok(merged
        .into_values()
        .map(|rows| CodeHistory {
            versions: rows.into_iter().map(|row| row.complete().version).collect(),
        })
        .collect())
}

/// The earlier version a new row lays over: the latest one whose period meets the
/// row's own dates, else the latest of all.
fn earlier_version_under<'a>(row: &CodeRow, earlier: &'a [CodeRow]) -> Option<&'a CodeVersion> {
    earlier
        .iter()
        .rev()
        .find(|candidate| candidate.version.period.overlaps(&row.version.period))
        .or(earlier.last())
        .map(|candidate| &candidate.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const HEADER: &str =
        "code,descriptor,add_on,primary_codes,effective_date,deletion_date,replaced_by\n";

    fn registry(rows: &str) -> Result<CodeRegistry, CodeSetError> {
        CodeRegistry::from_sources(&[("test.csv", &format!("{HEADER}{rows}"))])
    }

    fn code(text: &str) -> CodeValue {
        CodeValue::parse(text).unwrap()
    }

    #[test]
    fn a_revision_chain_answers_the_version_of_each_day() {
        let registry = registry(
            "64624,Old meaning.,false,,,2012-01-01,\n\
             64624,New meaning.,false,,2020-01-01,,\n",
        )
        .unwrap();
        let on = |day| registry.history(code("64624")).unwrap().as_of(day);
        assert_eq!(&*on(date(2011, 5, 1)).version.descriptor, "Old meaning.");
        assert_eq!(
            on(date(2015, 5, 1)).standing,
            Standing::Deleted {
                since: date(2012, 1, 1)
            }
        );
        assert_eq!(&*on(date(2020, 1, 1)).version.descriptor, "New meaning.");
        assert!(on(date(2020, 1, 1)).standing.is_active());
    }

    #[test]
    fn a_code_not_yet_in_effect_is_not_found() {
        let registry = registry("64466,Fascial plane block.,false,,2025-01-01,,\n").unwrap();
        assert_eq!(
            registry.get(code("64466"), date(2024, 12, 31)).unwrap_err(),
            LookupError::NotYetEffective {
                code: code("64466"),
                from: date(2025, 1, 1)
            }
        );
        assert!(registry.get(code("64466"), date(2025, 1, 1)).is_ok());
    }

    #[test]
    fn overlapping_versions_and_missing_primaries_are_refused_with_lines() {
        let error = registry(
            "64494,Second level.,true,64493,,,\n\
             20610,Knee.,false,,,,\n\
             20610,Knee again.,false,,2020-01-01,,\n",
        )
        .unwrap_err();
        let lines: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("test.csv:2: column primary_codes: primary code 64493"));
        assert!(lines[1].starts_with("test.csv:4: column effective_date: 20610 is already valid"));
    }

    #[test]
    fn a_later_file_replaces_the_fields_it_fills_and_keeps_the_rest() {
        let ours = "code,descriptor,short_name,anatomy,synonyms,imaging\n\
                    64483,Our words.,Our short,lumbar spine,TFESI|ESI,fluoroscopy_or_ct\n";
        let licensed = "code,descriptor,synonyms\n64483,Licensed words.,\n";
        let registry =
            CodeRegistry::from_sources(&[("ours.csv", ours), ("licensed.csv", licensed)]).unwrap();
        let version = &registry.history(code("64483")).unwrap().versions()[0];
        assert_eq!(&*version.descriptor, "Licensed words.");
        assert_eq!(&*version.short_name, "Our short");
        assert_eq!(&*version.anatomy, "lumbar spine");
        assert_eq!(version.synonyms.len(), 2);
    }

    #[test]
    fn a_later_file_can_end_a_code_and_keep_its_text() {
        let ours = "code,descriptor\n62310,Old epidural code.\n62320,New one.\n";
        let update = "code,descriptor,deletion_date,replaced_by\n62310,Old epidural code.,2017-01-01,62320\n";
        let registry =
            CodeRegistry::from_sources(&[("ours.csv", ours), ("update.csv", update)]).unwrap();
        let found = registry.get(code("62310"), date(2020, 1, 1)).unwrap();
        assert_eq!(
            found.standing,
            Standing::Deleted {
                since: date(2017, 1, 1)
            }
        );
    }

    #[test]
    fn an_unreadable_file_refuses_the_whole_set() {
        let error = CodeRegistry::load(
            &[PathBuf::from("/nonexistent/codes.csv")],
            crate::config::DEFAULT_MAX_DATA_FILE_BYTES,
        )
        .unwrap_err();
        assert!(
            error.problems[0]
                .to_string()
                .contains("cannot read the file")
        );
    }

    fn day(offset: i32) -> Date {
        date(2000, 1, 1)
            .checked_add(jiff::Span::new().days(offset))
            .unwrap()
    }

    proptest::proptest! {
        #[test]
        fn a_revision_chain_answers_the_right_version_for_every_day(
            mut bounds in proptest::collection::btree_set(0i32..5000, 1..6),
            open_ended in proptest::bool::ANY,
            probe in -10i32..5010,
        ) {
            let bounds: Vec<i32> = std::mem::take(&mut bounds).into_iter().collect();
            let mut rows = String::new();
            let versions = if open_ended { bounds.len() } else { bounds.len() - 1 };
            for index in 0..versions {
                let end = bounds.get(index + 1).map(|end| day(*end).to_string()).unwrap_or_default();
                rows.push_str(&format!("20610,Version {index}.,false,,{},{end},\n", day(bounds[index])));
            }
            proptest::prop_assume!(versions > 0);
            let registry = registry(&rows).unwrap();
            let found = registry.history(code("20610")).unwrap().as_of(day(probe));
            let covering = (0..versions).find(|index| {
                probe >= bounds[*index] && bounds.get(index + 1).is_none_or(|end| probe < *end)
            });
            match covering {
                Some(index) => {
                    proptest::prop_assert_eq!(found.standing, Standing::Active);
                    proptest::prop_assert_eq!(&*found.version.descriptor, format!("Version {index}."));
                }
                None if probe < bounds[0] => {
                    proptest::prop_assert_eq!(found.standing, Standing::NotYetEffective { from: day(bounds[0]) });
                }
                None => {
                    proptest::prop_assert_eq!(found.standing, Standing::Deleted { since: day(bounds[versions]) });
                }
            }
        }

        #[test]
        fn no_day_is_covered_by_two_versions_of_an_accepted_code(
            periods in proptest::collection::vec((proptest::option::of(0i32..400), proptest::option::of(0i32..400)), 1..5),
            probe in 0i32..400,
        ) {
            let mut rows = String::new();
            for (index, (start, end)) in periods.iter().enumerate() {
                let start = start.map(|start| day(start).to_string()).unwrap_or_default();
                let end = end.map(|end| day(end).to_string()).unwrap_or_default();
                rows.push_str(&format!("20610,Version {index}.,false,,{start},{end},\n"));
            }
            if let Ok(registry) = registry(&rows) {
                let history = registry.history(code("20610")).unwrap();
                let covering = history.versions().iter().filter(|version| version.period.contains(day(probe))).count();
                proptest::prop_assert!(covering <= 1);
            }
        }
    }

    #[test]
    fn the_built_in_set_loads() {
        let registry = CodeRegistry::built_in().unwrap();
        assert!(registry.len() >= 150, "{}", registry.len());
    }
}
