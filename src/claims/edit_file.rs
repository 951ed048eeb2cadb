//! What every CMS edit file shares: its name and edition, where a rule came
//! from in it, the problems that refuse it, and the small field readers the
//! loaders use.

use std::{fmt, io::BufRead, sync::Arc};

use jiff::civil::Date;

use crate::codes::CodeValue;

/// Most problems listed for one refused load; the count covers them all.
pub const MAX_LISTED_EDIT_PROBLEMS: usize = 100;

/// Which CMS file a table was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EditFileKind {
    /// NCCI procedure-to-procedure edits, practitioner.
    NcciPtp,
    /// Medically unlikely edits, practitioner services.
    Mue,
    /// NCCI add-on code edits.
    AddOn,
    /// Physician fee schedule relative value file (payment indicators).
    Pfs,
    /// The ICD-10-CM code list.
    Icd10Cm,
}

impl EditFileKind {
    /// The short name used in the edits version header (`ptp`, `mue`, …).
    pub fn label(self) -> &'static str {
        match self {
            EditFileKind::NcciPtp => "ptp",
            EditFileKind::Mue => "mue",
            EditFileKind::AddOn => "aoc",
            EditFileKind::Pfs => "pfs",
            EditFileKind::Icd10Cm => "icd10cm",
        }
    }
}

/// One file in use: its kind, its name and its edition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditFile {
    /// Which kind of file.
    pub kind: EditFileKind,
    /// The built-in file's name, or the path the operator gave.
    pub name: Arc<str>,
    /// The edition, e.g. `2024Q3 pain-management extract`; for an operator's
    /// file, its file name, which CMS versions (`ccipra-v323r0-f1.txt`).
    pub edition: Arc<str>,
}

/// Where one rule came from: a file of the set and a line in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowSource {
    /// The file's position in [`super::ClaimEdits::files`].
    pub file: u16,
    /// The line, from 1.
    pub row: u32,
}

/// One thing wrong with an edit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditProblem {
    /// The file's name as the operator gave it.
    pub file: Arc<str>,
    /// The line, from 1; 0 for the whole file.
    pub line: u64,
    /// What is wrong and what would be right.
    pub message: String,
}

impl fmt::Display for EditProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(formatter, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(formatter, "{}: {}", self.file, self.message)
        }
    }
}

/// The problems of one load: the first [`MAX_LISTED_EDIT_PROBLEMS`] kept, all
/// counted, so a file with a million bad rows costs no memory to refuse.
#[derive(Debug, Default)]
pub struct Problems {
    listed: Vec<EditProblem>,
    total: usize,
}

impl Problems {
    /// Records a problem at `line` of `file`.
    pub fn add(&mut self, file: &Arc<str>, line: u64, message: impl Into<String>) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED_EDIT_PROBLEMS {
            self.listed.push(EditProblem {
                file: file.clone(),
                line,
                message: message.into(),
            });
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The problems listed and the count of all of them.
    pub fn into_parts(self) -> (Vec<EditProblem>, usize) {
        (self.listed, self.total)
    }
}

/// Calls `each` with every line of `reader` (without its line ending) and its
/// number from 1, reusing one buffer: a quarter's PTP file is millions of
/// lines and is never held whole. A read error or a line that is not UTF-8 is
/// a problem of that line.
pub fn for_each_line(
    mut reader: impl BufRead,
    file: &Arc<str>,
    problems: &mut Problems,
    mut each: impl FnMut(u64, &str, &mut Problems),
) {
    let mut buffer = Vec::with_capacity(256);
    let mut number = 0u64;
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                problems.add(file, number + 1, format!("cannot be read: {error}"));
                return;
            }
        }
        number += 1;
        while matches!(buffer.last(), Some(b'\n' | b'\r')) {
            buffer.pop();
        }
        match std::str::from_utf8(&buffer) {
            Ok(line) => each(number, line, problems),
            Err(_) => problems.add(file, number, "is not UTF-8 text"),
        }
    }
}

/// Calls `each` with every CSV record of `text` and the line it starts on
/// (a quoted cell may span lines, as CMS's notices do). A record that is not
/// valid CSV is a problem of its line.
pub fn for_each_record(
    text: &str,
    file: &Arc<str>,
    problems: &mut Problems,
    mut each: impl FnMut(u64, &csv::StringRecord, &mut Problems),
) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, |position| position.line());
                each(line, &record, problems);
            }
            Err(error) => {
                let line = error.position().map_or(0, |position| position.line());
                problems.add(file, line, format!("is not valid CSV: {error}"));
            }
        }
    }
}

/// Reads a code field of a CMS file.
pub fn code_field(text: &str, column: &str) -> Result<CodeValue, String> {
    CodeValue::parse(text).map_err(|error| format!("{column}: {}", error.brief()))
}

/// Reads a CMS date written `YYYYMMDD`.
pub fn compact_date(text: &str, column: &str) -> Result<Date, String> {
    let bad = || format!("{column}: {text:?} is not a date written YYYYMMDD");
    let bytes = text.trim().as_bytes();
    if bytes.len() != 8 || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0i32, |sum, digit| sum * 10 + i32::from(digit - b'0'))
    };
    let (year, month, day) = (number(0..4), number(4..6), number(6..8));
    let year = i16::try_from(year).map_err(|_| bad())?;
    let month = i8::try_from(month).map_err(|_| bad())?;
    let day = i8::try_from(day).map_err(|_| bad())?;
    Date::new(year, month, day).map_err(|_| bad())
}

/// Interns short repeated texts (CMS rationales) as one-byte indexes: a PTP
/// file repeats a dozen sentences over millions of rows.
#[derive(Debug, Default, Clone)]
pub struct Texts {
    texts: Vec<Box<str>>,
}

impl Texts {
    /// The index of `text`, added if new; `None` past 256 distinct texts.
    pub fn intern(&mut self, text: &str) -> Option<u8> {
        let text = text.trim();
        if let Some(index) = self.texts.iter().position(|known| &**known == text) {
            return u8::try_from(index).ok();
        }
        let index = u8::try_from(self.texts.len()).ok()?;
        self.texts.push(text.into());
        Some(index)
    }

    /// The text at `index`.
    pub fn get(&self, index: u8) -> &str {
        self.texts.get(usize::from(index)).map_or("", |text| text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cms_dates_are_eight_digits_of_a_real_day() {
        assert_eq!(
            compact_date("20240701", "d"),
            Ok(jiff::civil::date(2024, 7, 1))
        );
        assert!(compact_date("20240231", "d").is_err());
        assert!(compact_date("2024-07-01", "d").is_err());
        assert!(compact_date("*", "d").is_err());
    }

    #[test]
    fn lines_lose_their_endings_and_count_from_one() {
        let file: Arc<str> = "f".into();
        let mut seen = Vec::new();
        let mut problems = Problems::default();
        for_each_line(&b"a\r\nb\n\nc"[..], &file, &mut problems, |n, line, _| {
            seen.push((n, line.to_string()))
        });
        assert_eq!(
            seen,
            [(1, "a"), (2, "b"), (3, ""), (4, "c")].map(|(n, l)| (n, l.to_string()))
        );
        assert!(problems.is_empty());
    }

    proptest! {
        #[test]
        fn date_parsing_never_panics(text in "\\PC{0,12}") {
            let _ = compact_date(&text, "d");
        }
    }
}
