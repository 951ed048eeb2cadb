//! NCCI procedure-to-procedure edits: which column-2 code is denied when billed
//! with its column-1 code on one date, and whether a modifier may bypass it.
//!
//! Two layouts are read. CMS's quarterly practitioner file (tab-separated text:
//! an AMA notice, a title, a header wrapped over four lines, then `Column 1,
//! Column 2, *=in existence prior to 1996, Effective Date, Deletion Date (or
//! *), Modifier indicator, PTP Edit Rationale`), which CMS splits over four
//! files a quarter; and the built-in extract (CSV: `column_1, column_2,
//! deletion_date, modifier_indicator, rationale`, with no effective dates).
//!
//! # Memory usage
//!
//! A quarter holds about 2.5 million pairs, so each is kept in 28 bytes: both
//! codes inline, dates as civil dates, the rationale as a one-byte index, and
//! where it came from. The pairs sit in one vector sorted by column 1 then
//! column 2; a hash map from each column-1 code to its run of pairs (one
//! entry per distinct column-1 code) finds a code's pairs, and a binary search
//! within the run finds one pair.

use std::{io::BufRead, sync::Arc};

use jiff::civil::Date;

use super::edit_file::{Problems, RowSource, Texts, code_field, compact_date, for_each_line};
use crate::codes::CodeValue;

/// Whether a modifier may bypass a pair, as CMS writes it in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModifierIndicator {
    /// `0`: the pair is never billed together; no modifier bypasses it.
    NotAllowed,
    /// `1`: an NCCI-associated modifier bypasses it when the record supports
    /// a distinct service.
    Allowed,
    /// `9`: the edit is not in force (deleted, often back to its start).
    NotApplicable,
}

impl ModifierIndicator {
    fn parse(text: &str) -> Result<ModifierIndicator, String> {
        match text.trim() {
            "0" => Ok(ModifierIndicator::NotAllowed),
            "1" => Ok(ModifierIndicator::Allowed),
            "9" => Ok(ModifierIndicator::NotApplicable),
            other => Err(format!(
                "modifier indicator: {other:?} is not one of 0 (not allowed), 1 (allowed), 9 (not applicable)"
            )),
        }
    }

    /// The digit CMS writes.
    pub fn digit(self) -> char {
        match self {
            ModifierIndicator::NotAllowed => '0',
            ModifierIndicator::Allowed => '1',
            ModifierIndicator::NotApplicable => '9',
        }
    }
}

/// One pair as the file gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtpEdit {
    /// The code that is paid.
    pub column_1: CodeValue,
    /// The code that is denied with it.
    pub column_2: CodeValue,
    /// First day in force; [`Date::MIN`] when the file gives none.
    pub effective: Date,
    /// Last day in force; [`Date::MAX`] when the edit is not deleted.
    pub deletion: Date,
    /// Whether a modifier may bypass it.
    pub indicator: ModifierIndicator,
    /// The rationale's index in [`PtpTable::rationale`].
    rationale: u8,
    /// Where the pair was read.
    pub source: RowSource,
}

impl PtpEdit {
    /// True when the edit applies to a service on `date`: in its period and
    /// not marked 9.
    pub fn in_force_on(&self, date: Date) -> bool {
        self.indicator != ModifierIndicator::NotApplicable
            && self.effective <= date
            && date <= self.deletion
    }
}

/// Every pair of the loaded files, sorted by column 1 then column 2.
#[derive(Debug, Clone, Default)]
pub struct PtpTable {
    edits: Vec<PtpEdit>,
    /// Where each column-1 code's pairs start and end in `edits`. A check
    /// asks for every ordered pair of its lines, most of which name no pair;
    /// one hash look-up answers those, and the rest search a hundred or so
    /// pairs rather than a quarter's millions.
    by_column_1: ColumnIndex,
    rationales: Texts,
}

/// Column-1 code to the range of its pairs. Keys are codes from CMS files,
/// with a seed chosen per map, so the fast hash needs no defence.
type ColumnIndex = super::FastMap<CodeValue, (u32, u32)>;

/// The deletion date CMS's extract writes for "not deleted".
const NO_DELETION: &str = "99991231";

impl PtpTable {
    /// Reads one file into the table; problems are recorded against `name`.
    pub fn read(
        &mut self,
        reader: impl BufRead,
        name: &Arc<str>,
        file: u16,
        size_hint: u64,
        problems: &mut Problems,
    ) {
        // A row of either layout is at least 40 bytes; reserving for the file
        // spares the vector's doublings, which would briefly hold twice a
        // quarter's pairs.
        let expected_rows = usize::try_from(size_hint / 40).unwrap_or(0);
        self.edits.reserve(expected_rows);
        let mut layout = None;
        for_each_line(reader, name, problems, |number, line, problems| {
            if line.trim().is_empty() {
                return;
            }
            let row = u32::try_from(number).unwrap_or(u32::MAX);
            let source = RowSource { file, row };
            match layout {
                None => layout = Layout::detect(line),
                Some(Layout::Extract) => match self.extract_row(line, source) {
                    Ok(edit) => self.edits.push(edit),
                    Err(message) => problems.add(name, number, message),
                },
                Some(Layout::Cms { header_done }) => {
                    // The header wraps over lines whose first two cells are empty.
                    if !header_done && line.starts_with("\t\t") {
                        return;
                    }
                    layout = Some(Layout::Cms { header_done: true });
                    match self.cms_row(line, source) {
                        Ok(edit) => self.edits.push(edit),
                        Err(message) => problems.add(name, number, message),
                    }
                }
            }
        });
        if layout.is_none() {
            problems.add(
                name,
                0,
                "no header found: expected CMS's PTP layout (a tab-separated header line \
                 beginning \"Column 1\tColumn 2\") or cptd's extract layout (a CSV header \
                 beginning \"column_1,column_2\")",
            );
        }
    }

    /// Sorts the pairs for look-ups; call once every file is read.
    pub fn finish(&mut self) {
        self.edits.sort_unstable_by_key(|edit| {
            (
                edit.column_1,
                edit.column_2,
                edit.source.file,
                edit.source.row,
            )
        });
        self.edits.shrink_to_fit();
        self.by_column_1 = ColumnIndex::default();
        let mut start = 0;
        for run in self.edits.chunk_by(|a, b| a.column_1 == b.column_1) {
            let end = start + run.len();
            // A set of more than four billion pairs would not fit in memory.
            let range = (
                u32::try_from(start).unwrap_or(u32::MAX),
                u32::try_from(end).unwrap_or(u32::MAX),
            );
            self.by_column_1.insert(run[0].column_1, range);
            start = end;
        }
    }

    fn rationale_index(&mut self, text: &str) -> Result<u8, String> {
        self.rationales
            .intern(text)
            .ok_or_else(|| "rationale: more than 256 different rationales in one set".to_string())
    }

    /// `column_1,column_2,deletion_date,modifier_indicator,rationale`.
    fn extract_row(&mut self, line: &str, source: RowSource) -> Result<PtpEdit, String> {
        let mut cells = line.splitn(5, ',');
        let mut next = || cells.next().unwrap_or("");
        let (column_1, column_2, deletion, indicator, rationale) =
            (next(), next(), next(), next(), next());
        let deletion = match deletion.trim() {
            NO_DELETION => Date::MAX,
            text => compact_date(text, "deletion_date")?,
        };
        Ok(PtpEdit {
            column_1: code_field(column_1, "column_1")?,
            column_2: code_field(column_2, "column_2")?,
            effective: Date::MIN,
            deletion,
            indicator: ModifierIndicator::parse(indicator)?,
            rationale: self.rationale_index(rationale)?,
            source,
        })
    }

    /// `Column 1, Column 2, prior-to-1996 star, Effective, Deletion or *,
    /// Modifier indicator, Rationale`, tab-separated.
    fn cms_row(&mut self, line: &str, source: RowSource) -> Result<PtpEdit, String> {
        let mut cells = line.splitn(7, '\t');
        let mut next = || cells.next().unwrap_or("");
        let (column_1, column_2, _before_1996, effective, deletion, indicator, rationale) =
            (next(), next(), next(), next(), next(), next(), next());
        let deletion = match deletion.trim() {
            "*" | "" => Date::MAX,
            text => compact_date(text, "Deletion Date")?,
        };
        let effective = compact_date(effective, "Effective Date")?;
        if deletion < effective {
            return Err(format!(
                "Deletion Date {deletion} is before Effective Date {effective}"
            ));
        }
        Ok(PtpEdit {
            column_1: code_field(column_1, "Column 1")?,
            column_2: code_field(column_2, "Column 2")?,
            effective,
            deletion,
            indicator: ModifierIndicator::parse(indicator)?,
            rationale: self.rationale_index(rationale)?,
            source,
        })
    }

    /// Every pair with `column_1` and `column_2`, in file order; a key may
    /// repeat, across a quarter's files or when an edit was deleted and added
    /// again.
    pub fn pairs(&self, column_1: CodeValue, column_2: CodeValue) -> &[PtpEdit] {
        self.of_column_1(column_1).with_column_2(column_2)
    }

    /// Every pair whose column-1 code is `column_1`: looked up once per line
    /// of a claim, then searched for each other line.
    pub fn of_column_1(&self, column_1: CodeValue) -> PairsOf<'_> {
        let pairs = match self.by_column_1.get(&column_1) {
            Some(&(start, end)) => &self.edits[start as usize..end as usize],
            None => &[],
        };
        PairsOf { pairs }
    }

    /// The pair in force on `date`, if any: of several, the one that took
    /// effect last, then the one read last.
    pub fn in_force(
        &self,
        column_1: CodeValue,
        column_2: CodeValue,
        date: Date,
    ) -> Option<&PtpEdit> {
        self.of_column_1(column_1).in_force(column_2, date)
    }

    /// The rationale CMS gives for `edit`.
    pub fn rationale(&self, edit: &PtpEdit) -> &str {
        self.rationales.get(edit.rationale)
    }

    /// How many pairs the table holds.
    pub fn len(&self) -> usize {
        self.edits.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }
}

/// The pairs of one column-1 code, sorted by column 2.
#[derive(Debug, Clone, Copy)]
pub struct PairsOf<'a> {
    pairs: &'a [PtpEdit],
}

impl<'a> PairsOf<'a> {
    /// The pairs with `column_2`, in file order.
    pub fn with_column_2(self, column_2: CodeValue) -> &'a [PtpEdit] {
        let first = self.pairs.partition_point(|edit| edit.column_2 < column_2);
        let length = self.pairs[first..].partition_point(|edit| edit.column_2 == column_2);
        &self.pairs[first..first + length]
    }

    /// The pair with `column_2` in force on `date`, if any: of several, the
    /// one that took effect last, then the one read last.
    pub fn in_force(self, column_2: CodeValue, date: Date) -> Option<&'a PtpEdit> {
        self.with_column_2(column_2)
            .iter()
            .filter(|edit| edit.in_force_on(date))
            .max_by_key(|edit| (edit.effective, edit.source.file, edit.source.row))
    }
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    Extract,
    Cms { header_done: bool },
}

impl Layout {
    /// The layout announced by a line before the first row: CMS's header line
    /// or the extract's CSV header. Lines before either (CMS's notice and
    /// title) announce nothing.
    fn detect(line: &str) -> Option<Layout> {
        if line.starts_with("column_1,column_2") {
            Some(Layout::Extract)
        } else if line.starts_with("Column 1\tColumn 2") {
            Some(Layout::Cms { header_done: false })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn code(text: &str) -> CodeValue {
        CodeValue::parse(text).unwrap()
    }

    fn load(text: &str) -> (PtpTable, Problems) {
        let mut table = PtpTable::default();
        let mut problems = Problems::default();
        let name: Arc<str> = "test.txt".into();
        table.read(text.as_bytes(), &name, 0, 0, &mut problems);
        table.finish();
        (table, problems)
    }

    const CMS_HEAD: &str = "CPT only copyright 2025 American Medical Association.  All rights reserved.\t\t\t\t\t\t\n\
        Column1/Column2 Edits\t\t\t\t\t\t\n\
        Column 1\tColumn 2\t*=in existence\tEffective\tDeletion\tModifier\tPTP Edit Rationale\n\
        \t\tprior to 1996\tDate\tDate\t0=not allowed\t\n\
        \t\t\t\t*=no data\t1=allowed\t\n\
        \t\t\t\t\t9=not applicable\t\n";

    #[test]
    fn cms_rows_keep_their_dates_and_lines() {
        let text = format!(
            "{CMS_HEAD}64493\t64490\t\t20250101\t*\t0\tMutually exclusive procedures\n\
             64483\t77003\t*\t20070101\t20241231\t1\tStandards of medical/surgical practice\r\n"
        );
        let (table, problems) = load(&text);
        assert!(problems.is_empty(), "{problems:?}");
        let edit = table
            .in_force(code("64493"), code("64490"), date(2025, 1, 1))
            .unwrap();
        assert_eq!(edit.indicator, ModifierIndicator::NotAllowed);
        assert_eq!(edit.source.row, 7);
        assert!(
            table
                .in_force(code("64493"), code("64490"), date(2024, 12, 31))
                .is_none()
        );
        assert!(
            table
                .in_force(code("64483"), code("77003"), date(2024, 12, 31))
                .is_some()
        );
        assert!(
            table
                .in_force(code("64483"), code("77003"), date(2025, 1, 1))
                .is_none()
        );
        assert_eq!(
            table.rationale(table.pairs(code("64483"), code("77003")).first().unwrap()),
            "Standards of medical/surgical practice"
        );
    }

    #[test]
    fn a_bad_row_is_named_by_its_line() {
        let text = format!(
            "{CMS_HEAD}64493\t64490\t\t2025-01-01\t*\t0\tx\n6449\t64490\t\t20250101\t*\t7\tx\n"
        );
        let (_, problems) = load(&text);
        let (listed, total) = problems.into_parts();
        assert_eq!(total, 2);
        assert_eq!(listed[0].line, 7);
        assert!(
            listed[0].message.contains("Effective Date"),
            "{}",
            listed[0]
        );
        assert_eq!(listed[1].line, 8);
    }

    #[test]
    fn the_extract_reads_with_no_effective_date() {
        let (table, problems) = load(
            "column_1,column_2,deletion_date,modifier_indicator,rationale\n\
             20610,99213,20191231,1,CPT Manual or CMS manual coding instruction\n",
        );
        assert!(problems.is_empty());
        assert!(
            table
                .in_force(code("20610"), code("99213"), date(2019, 12, 31))
                .is_some()
        );
        assert!(
            table
                .in_force(code("20610"), code("99213"), date(2020, 1, 1))
                .is_none()
        );
    }

    #[test]
    fn a_pair_takes_28_bytes() {
        // The module's memory figures rest on it: a quarter is 2.5 million pairs.
        assert_eq!(std::mem::size_of::<PtpEdit>(), 28);
    }

    #[test]
    fn a_file_with_no_header_is_refused() {
        let (_, problems) = load("64493\t64490\t\t20250101\t*\t0\tx\n");
        assert!(!problems.is_empty());
    }
}
