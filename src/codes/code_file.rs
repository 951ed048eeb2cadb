//! The native code-set file: CSV with a header row, one code version per row.
//!
//! Required columns are `code` and `descriptor`; the optional ones are named after
//! the fields of a code (`short_name`, `section`, `subsection`, `heading`,
//! `anatomy`, `imaging`, `add_on`, `primary_codes`, `synonyms`, `status`,
//! `effective_date`, `deletion_date`, `replaced_by`, `sunset_date`). Columns come in
//! any order, list values are separated by `|`, dates are `YYYY-MM-DD`, and a UTF-8
//! byte-order mark is tolerated. Reading a file checks each row on its own; the
//! checks that need the whole set (overlaps, missing primary codes) belong to
//! [`super::registry`].

use std::{fmt, sync::Arc};

use jiff::civil::Date;

use super::{
    record::{CodeVersion, Imaging, MAX_SHORT_NAME_CHARS, Period},
    value::CodeValue,
};
use crate::calendar::parse_date;

/// Most problems one load reports before it stops listing them.
pub const MAX_REPORTED_PROBLEMS: usize = 100;

/// Longest descriptor, in characters.
pub const MAX_DESCRIPTOR_CHARS: usize = 1000;

const COLUMNS: [&str; 16] = [
    "code",
    "descriptor",
    "short_name",
    "section",
    "subsection",
    "heading",
    "anatomy",
    "imaging",
    "add_on",
    "primary_codes",
    "synonyms",
    "status",
    "effective_date",
    "deletion_date",
    "replaced_by",
    "sunset_date",
];

/// One thing wrong with a code-set file, located as precisely as it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// The file's name as the operator gave it.
    pub source: Arc<str>,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: u64,
    /// The column, when one is to blame.
    pub column: Option<&'static str>,
    /// What is wrong, lowercase, saying what would be right.
    pub message: String,
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.source)?;
        if self.line > 0 {
            write!(formatter, ":{}", self.line)?;
        }
        if let Some(column) = self.column {
            write!(formatter, ": column {column}")?;
        }
        write!(formatter, ": {}", self.message)
    }
}

/// A row that read cleanly: one version of one code, with where it came from and
/// which optional columns it filled.
#[derive(Debug, Clone)]
pub struct CodeRow {
    /// The version the row describes; fields it left empty are empty.
    pub version: CodeVersion,
    /// The file it came from.
    pub source: Arc<str>,
    /// Its 1-based line.
    pub line: u64,
    // Bit `i` is set when column `COLUMNS[i]` had a value in this row.
    filled: u32,
}

impl CodeRow {
    fn filled(&self, column: &str) -> bool {
        COLUMNS
            .iter()
            .position(|known| *known == column)
            .is_some_and(|index| self.filled & (1 << index) != 0)
    }

    /// Lays this row over an earlier version of the same code: every field the row
    /// left empty keeps the earlier value, so a licensed descriptor keeps the
    /// built-in synonyms, anatomy and imaging.
    pub fn overlay(mut self, base: &CodeVersion) -> CodeRow {
        macro_rules! keep_unless_filled {
            ($($column:literal => $($field:ident).+),* $(,)?) => {
                $(if !self.filled($column) {
                    self.version.$($field).+ = base.$($field).+.clone();
                })*
            };
        }
        keep_unless_filled!(
            "short_name" => short_name,
            "section" => section,
            "subsection" => subsection,
            "heading" => heading,
            "anatomy" => anatomy,
            "imaging" => imaging,
            "add_on" => add_on,
            "primary_codes" => primary_codes,
            "synonyms" => synonyms,
            "effective_date" => period.effective,
            "deletion_date" => period.deletion,
            "replaced_by" => replaced_by,
            "sunset_date" => sunset,
        );
        self
    }

    /// Fills what a row may leave to be derived: a short name from the descriptor.
    pub fn complete(mut self) -> CodeRow {
        if self.version.short_name.is_empty() {
            self.version.short_name = abbreviate(&self.version.descriptor).into();
        }
        self
    }
}

/// Reads a code-set file. Returns every row, or every problem found (capped at
/// [`MAX_REPORTED_PROBLEMS`]); never some rows and some problems.
pub fn read_code_file(source: &str, text: &str) -> Result<Vec<CodeRow>, Vec<LoadProblem>> {
    let source: Arc<str> = Arc::from(source);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut problems = Vec::new();
    let file_problem = |line: u64, message: String| LoadProblem {
        source: source.clone(),
        line,
        column: None,
        message,
    };

    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(error) => return Err(vec![file_problem(1, format!("unreadable header: {error}"))]),
    };
    let mut columns = Vec::with_capacity(header.len());
    for name in header.iter() {
        let name = name.trim();
        match COLUMNS.iter().find(|known| **known == name) {
            Some(known) if columns.contains(&Some(*known)) => {
                problems.push(file_problem(1, format!("column {known:?} appears twice")));
                columns.push(None);
            }
            Some(known) => columns.push(Some(*known)),
            None => {
                problems.push(file_problem(
                    1,
                    format!(
                        "unknown column {name:?}: known columns are {}",
                        COLUMNS.join(", ")
                    ),
                ));
                columns.push(None);
            }
        }
    }
    for required in ["code", "descriptor"] {
        if !columns.contains(&Some(required)) {
            problems.push(file_problem(
                1,
                format!("missing required column {required:?}"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }

    let mut rows = Vec::new();
    for record in reader.records() {
        if problems.len() >= MAX_REPORTED_PROBLEMS {
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |position| position.line());
                problems.push(file_problem(line, format!("unreadable row: {error}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |position| position.line());
        let fields = columns
            .iter()
            .zip(record.iter())
            .filter_map(|(column, value)| column.map(|column| (column, value.trim())));
        let mut row = RowReader {
            source: &source,
            line,
            problems: &mut problems,
        };
        if let Some((version, filled)) = row.read(fields) {
            rows.push(CodeRow {
                version,
                source: source.clone(),
                line,
                filled,
            });
        }
    }
    problems.truncate(MAX_REPORTED_PROBLEMS);
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

struct RowReader<'a> {
    source: &'a Arc<str>,
    line: u64,
    problems: &'a mut Vec<LoadProblem>,
}

#[derive(Default)]
struct RawRow<'a> {
    values: [&'a str; COLUMNS.len()],
}

impl<'a> RawRow<'a> {
    fn get(&self, column: &str) -> &'a str {
        COLUMNS
            .iter()
            .position(|known| *known == column)
            .map_or("", |index| self.values[index])
    }
}

impl RowReader<'_> {
    fn problem(&mut self, column: &'static str, message: String) {
        self.problems.push(LoadProblem {
            source: self.source.clone(),
            line: self.line,
            column: Some(column),
            message,
        });
    }

    fn read<'a>(
        &mut self,
        fields: impl Iterator<Item = (&'static str, &'a str)>,
    ) -> Option<(CodeVersion, u32)> {
        let mut raw = RawRow::default();
        let mut filled = 0u32;
        for (column, value) in fields {
            if let Some(index) = COLUMNS.iter().position(|known| *known == column) {
                raw.values[index] = value;
                if !value.is_empty() {
                    filled |= 1 << index;
                }
            }
        }
        let before = self.problems.len();

        let code = match CodeValue::parse(raw.get("code")) {
            Ok(code) => Some(code),
            Err(error) => {
                self.problem("code", error.to_string());
                None
            }
        };
        let descriptor = raw.get("descriptor");
        if descriptor.is_empty() {
            self.problem(
                "descriptor",
                "descriptor is empty: every code needs one".into(),
            );
        } else if descriptor.chars().count() > MAX_DESCRIPTOR_CHARS {
            self.problem(
                "descriptor",
                format!("descriptor is longer than {MAX_DESCRIPTOR_CHARS} characters"),
            );
        }
        let short_name = match raw.get("short_name") {
            given if given.chars().count() > MAX_SHORT_NAME_CHARS => {
                self.problem(
                    "short_name",
                    format!(
                        "short name {given:?} is longer than {MAX_SHORT_NAME_CHARS} characters"
                    ),
                );
                given.to_string()
            }
            given => given.to_string(),
        };
        let imaging = Imaging::from_name(raw.get("imaging")).unwrap_or_else(|| {
            let names: Vec<_> = Imaging::NAMES[1..].iter().map(|(_, name)| *name).collect();
            self.problem(
                "imaging",
                format!(
                    "{:?} is not an imaging value: use one of {} or leave it empty",
                    raw.get("imaging"),
                    names.join(", ")
                ),
            );
            Imaging::Unspecified
        });
        let add_on = match raw.get("add_on").to_ascii_lowercase().as_str() {
            "" | "false" | "no" | "0" => false,
            "true" | "yes" | "1" => true,
            other => {
                self.problem("add_on", format!("{other:?} is not true or false"));
                false
            }
        };
        let primary_codes = self.code_list(&raw, "primary_codes");
        let synonyms: Box<[Box<str>]> = split_list(raw.get("synonyms")).map(Box::from).collect();
        let effective = self.date(&raw, "effective_date");
        let deletion = self.date(&raw, "deletion_date");
        if let (Some(effective), Some(deletion)) = (effective, deletion)
            && deletion <= effective
        {
            self.problem(
                "deletion_date",
                format!("deletion date {deletion} is not after effective date {effective}"),
            );
        }
        match raw.get("status").to_ascii_lowercase().as_str() {
            "" | "active" => {}
            "deleted" if deletion.is_none() => {
                self.problem(
                    "deletion_date",
                    "a deleted code needs its deletion date".into(),
                );
            }
            "deleted" => {}
            other => self.problem(
                "status",
                format!("{other:?} is not a status: use active or deleted"),
            ),
        }
        let replaced_by = self.code_list(&raw, "replaced_by");
        let sunset = self.date(&raw, "sunset_date");
        if sunset.is_some() && code.is_some_and(|code| code.form() != super::CodeForm::CategoryIII)
        {
            self.problem(
                "sunset_date",
                "only Category III codes have a sunset date".into(),
            );
        }

        if self.problems.len() > before {
            return None;
        }
        let version = CodeVersion {
            code: code?,
            descriptor: descriptor.into(),
            short_name: short_name.into(),
            section: raw.get("section").into(),
            subsection: raw.get("subsection").into(),
            heading: raw.get("heading").into(),
            anatomy: raw.get("anatomy").into(),
            imaging,
            add_on,
            primary_codes,
            synonyms,
            period: Period {
                effective,
                deletion,
            },
            replaced_by,
            sunset,
            measure_ids: Box::default(),
        };
        Some((version, filled))
    }

    fn date(&mut self, raw: &RawRow<'_>, column: &'static str) -> Option<Date> {
        match raw.get(column) {
            "" => None,
            text => parse_date(text)
                .map_err(|error| self.problem(column, error.to_string()))
                .ok(),
        }
    }

    fn code_list(&mut self, raw: &RawRow<'_>, column: &'static str) -> Box<[CodeValue]> {
        split_list(raw.get(column))
            .filter_map(|item| {
                CodeValue::parse(item)
                    .map_err(|error| self.problem(column, error.to_string()))
                    .ok()
            })
            .collect()
    }
}

fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split('|')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A short name for a row that gives none: the descriptor's leading words that fit.
fn abbreviate(descriptor: &str) -> String {
    let mut short = String::new();
    for word in descriptor.split_whitespace() {
        let needed = short.chars().count() + usize::from(!short.is_empty()) + word.chars().count();
        if needed > MAX_SHORT_NAME_CHARS {
            break;
        }
        if !short.is_empty() {
            short.push(' ');
        }
        short.push_str(word);
    }
    if short.is_empty() {
        short = descriptor.chars().take(MAX_SHORT_NAME_CHARS).collect();
    }
    short.trim_end_matches([',', '.', ';']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(text: &str) -> Vec<String> {
        read_code_file("test.csv", text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn columns_come_in_any_order_and_a_bom_is_tolerated() {
        let text = "\u{feff}descriptor,add_on,code,primary_codes\nFirst level.,false,64493,\nNext level.,true,64494,64493\n";
        let rows = read_code_file("test.csv", text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].version.primary_codes[0].as_str(), "64493");
        assert_eq!(rows[1].line, 3);
        assert_eq!(
            &*rows[0].clone().complete().version.short_name,
            "First level"
        );
    }

    #[test]
    fn an_unknown_column_is_named() {
        let problems = problems_of("code,descriptor,colour\n20610,Knee.,red\n");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("test.csv:1: unknown column \"colour\""),
            "{problems:?}"
        );
    }

    #[test]
    fn every_problem_is_listed_with_line_and_column() {
        let text = "code,descriptor,effective_date,short_name\n\
                    2061,Bad code.,,\n\
                    20610,,2025-02-30,\n\
                    20611,Fine.,,this short name is far too long to fit\n";
        let problems = problems_of(text);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("test.csv:2: column code: \"2061\" is not a code"));
        assert!(problems[1].starts_with("test.csv:3: column descriptor: descriptor is empty"));
        assert!(problems[2].starts_with("test.csv:3: column effective_date:"));
        assert!(problems[3].starts_with("test.csv:4: column short_name:"));
    }
}
