//! The code registry: an immutable snapshot of every known code and its history.

use std::{
    collections::HashSet,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
};

use jiff::civil::Date;

use super::{
    code_file::{CodeRow, LoadProblem, MAX_REPORTED_PROBLEMS, read_code_file},
    filter::CodeFilter,
    record::{CodeAsOf, CodeVersion, Standing},
    search::SearchDocument,
    value::CodeValue,
};

/// The built-in code set, embedded so that the binary needs no files.
const BUILT_IN_CODES: &str = include_str!("../../data/codes.csv");

/// The name the built-in set goes by in messages.
pub const BUILT_IN_SOURCE: &str = "built-in codes.csv";

/// Every version of one code, oldest first; periods never overlap.
#[derive(Debug, Clone)]
pub struct CodeHistory {
    versions: Vec<CodeVersion>,
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
    // Parallel to `histories`: the words of each version, split once here so that
    // no query splits text.
    documents: Vec<Vec<SearchDocument>>,
    version: Arc<str>,
}

impl CodeRegistry {
    /// The built-in pain-management code set.
    pub fn built_in() -> Result<CodeRegistry, CodeSetError> {
        CodeRegistry::from_sources(&[(BUILT_IN_SOURCE, BUILT_IN_CODES)])
    }

    /// Builds a registry from code-set files given as `(name, text)`, in order.
    /// Any problem in any file refuses the whole set.
    pub fn from_sources(sources: &[(&str, &str)]) -> Result<CodeRegistry, CodeSetError> {
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut hasher = DefaultHasher::new();
        for (name, text) in sources {
            text.hash(&mut hasher);
            match read_code_file(name, text) {
                Ok(read) => rows.extend(read),
                Err(found) => problems.extend(found),
            }
        }
        if !problems.is_empty() {
            problems.truncate(MAX_REPORTED_PROBLEMS);
            return Err(CodeSetError { problems });
        }
        let histories = assemble(rows)?;
        let version = format!("{}-{:016x}", histories.len(), hasher.finish());
        let documents = histories
            .iter()
            .map(|history| history.versions.iter().map(SearchDocument::of).collect())
            .collect();
        Ok(CodeRegistry {
            histories,
            documents,
            version: version.into(),
        })
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

    /// The search documents of each history's versions, parallel to
    /// [`CodeRegistry::histories`].
    pub(super) fn search_documents(&self) -> &[Vec<SearchDocument>] {
        &self.documents
    }

    /// The history of one code.
    pub fn history(&self, code: CodeValue) -> Option<&CodeHistory> {
        self.histories
            .binary_search_by(|history| history.code().cmp(&code))
            .ok()
            .map(|index| &self.histories[index])
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

    /// Every code of `codes` as it stood on `as_of`, in order; or, when any is
    /// unknown or not yet in effect, each failure with its index.
    pub fn get_all(
        &self,
        codes: &[CodeValue],
        as_of: Date,
    ) -> Result<Vec<CodeAsOf<'_>>, Vec<(usize, LookupError)>> {
        let mut found = Vec::with_capacity(codes.len());
        let mut missing = Vec::new();
        for (index, code) in codes.iter().enumerate() {
            match self.get(*code, as_of) {
                Ok(code) => found.push(code),
                Err(error) => missing.push((index, error)),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(missing)
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
            Some(after) => self
                .histories
                .partition_point(|history| history.code() <= after),
            None => self
                .histories
                .partition_point(|history| filter.before_range(history.code())),
        };
        self.histories[start..]
            .iter()
            .take_while(|history| !filter.after_range(history.code()))
            .map(move |history| history.as_of(as_of))
            .filter(|found| filter.admits(found))
    }
}

/// Groups rows into histories and runs the checks that need the whole set.
fn assemble(mut rows: Vec<CodeRow>) -> Result<Vec<CodeHistory>, CodeSetError> {
    rows.sort_by_key(|row| (row.version.code, row.version.period.effective));
    let mut problems = Vec::new();
    // Each version's file and line, for problems found across rows.
    type Origins = Vec<(Arc<str>, u64)>;
    let mut histories: Vec<(CodeHistory, Origins)> = Vec::new();
    for row in rows {
        match histories.last_mut() {
            Some((history, origins)) if history.code() == row.version.code => {
                for (earlier, (source, line)) in history.versions.iter().zip(origins.iter()) {
                    if earlier.period.overlaps(&row.version.period) {
                        problems.push(LoadProblem {
                            source: row.source.clone(),
                            line: row.line,
                            column: Some("effective_date"),
                            message: format!(
                                "{} is already valid on some of these days ({source} line {line}); \
                                 versions of a code must not overlap: end the earlier one with a deletion_date",
                                row.version.code
                            ),
                        });
                    }
                }
                history.versions.push(row.version);
                origins.push((row.source, row.line));
            }
            _ => histories.push((
                CodeHistory {
                    versions: vec![row.version],
                },
                vec![(row.source, row.line)],
            )),
        }
    }

    let known: HashSet<CodeValue> = histories
        .iter()
        .map(|(history, _)| history.code())
        .collect();
    for (history, origins) in &histories {
        for (version, (source, line)) in history.versions.iter().zip(origins) {
            for primary in version
                .primary_codes
                .iter()
                .filter(|code| !known.contains(code))
            {
                problems.push(LoadProblem {
                    source: source.clone(),
                    line: *line,
                    column: Some("primary_codes"),
                    message: format!(
                        "primary code {primary} of add-on {} is not in the code set",
                        version.code
                    ),
                });
            }
        }
    }

    if problems.is_empty() {
        Ok(histories.into_iter().map(|(history, _)| history).collect())
    } else {
        problems.sort_by(|a, b| (&a.source, a.line).cmp(&(&b.source, b.line)));
        problems.truncate(MAX_REPORTED_PROBLEMS);
        Err(CodeSetError { problems })
    }
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
    fn the_built_in_set_loads() {
        let registry = CodeRegistry::built_in().unwrap();
        assert!(registry.len() >= 150, "{}", registry.len());
    }
}
