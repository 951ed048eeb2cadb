//! Medically unlikely edits: the most units of a code CMS pays per line or per
//! date of service, and how the limit is applied (the MUE adjudication
//! indicator, MAI).
//!
//! Two layouts are read: CMS's practitioner CSV (a quoted, multi-line AMA
//! notice, a header whose first cell spans two lines, then `code, MUE value,
//! "N <adjudication text>", rationale`, the MAI being the leading digit) and the
//! built-in extract (`code, mue_value, mai, rationale`).

use std::sync::Arc;

use super::{
    FastMap,
    edit_file::{Problems, RowSource, Texts, code_field, for_each_record},
};
use crate::codes::CodeValue;

/// How an MUE is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Adjudication {
    /// MAI 1: each line on its own; more units may go on another line with a
    /// modifier that tells them apart.
    Line,
    /// MAI 2: all lines of the date together, by policy; never paid beyond.
    DatePolicy,
    /// MAI 3: all lines of the date together, by clinical benchmark; a
    /// contractor may pay more on review of the record.
    DateClinical,
}

impl Adjudication {
    fn from_digit(digit: char) -> Option<Adjudication> {
        match digit {
            '1' => Some(Adjudication::Line),
            '2' => Some(Adjudication::DatePolicy),
            '3' => Some(Adjudication::DateClinical),
            _ => None,
        }
    }

    /// The MAI digit.
    pub fn number(self) -> u8 {
        match self {
            Adjudication::Line => 1,
            Adjudication::DatePolicy => 2,
            Adjudication::DateClinical => 3,
        }
    }
}

/// The MUE of one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MueEdit {
    /// Most units paid.
    pub units: u32,
    /// How they are counted.
    pub adjudication: Adjudication,
    rationale: u8,
    /// Where it was read.
    pub source: RowSource,
}

/// The MUE of every code in the file.
#[derive(Debug, Clone, Default)]
pub struct MueTable {
    edits: FastMap<CodeValue, MueEdit>,
    rationales: Texts,
}

impl MueTable {
    /// Reads a file of either layout.
    pub fn read(text: &str, name: &Arc<str>, file: u16, problems: &mut Problems) -> MueTable {
        let mut table = MueTable::default();
        let mut header_seen = false;
        for_each_record(text, name, problems, |line, record, problems| {
            let first = record.get(0).unwrap_or("").trim();
            if !header_seen {
                // CMS's header cell reads "HCPCS/\nCPT Code"; the extract's "code".
                header_seen = first.starts_with("HCPCS") || first == "code";
                return;
            }
            if record.iter().all(|cell| cell.trim().is_empty()) {
                return;
            }
            let row = u32::try_from(line).unwrap_or(u32::MAX);
            match table.row(record, RowSource { file, row }) {
                Ok((code, edit)) => {
                    if let Some(earlier) = table.edits.insert(code, edit) {
                        problems.add(
                            name,
                            line,
                            format!("{code} already has an MUE on line {}", earlier.source.row),
                        );
                    }
                }
                Err(message) => problems.add(name, line, message),
            }
        });
        if !header_seen {
            problems.add(
                name,
                0,
                "no header found: expected CMS's MUE layout (a header whose first cell is \
                 \"HCPCS/CPT Code\") or cptd's extract layout (\"code,mue_value,mai,rationale\")",
            );
        }
        table
    }

    fn row(
        &mut self,
        record: &csv::StringRecord,
        source: RowSource,
    ) -> Result<(CodeValue, MueEdit), String> {
        let cell = |index: usize| record.get(index).unwrap_or("").trim();
        let code = code_field(cell(0), "code")?;
        let units = cell(1)
            .parse::<u32>()
            .map_err(|_| format!("MUE value: {:?} is not a whole number of units", cell(1)))?;
        let adjudication = cell(2)
            .chars()
            .next()
            .and_then(Adjudication::from_digit)
            .ok_or_else(|| {
                format!(
                    "MUE adjudication indicator: {:?} does not begin with 1, 2 or 3",
                    cell(2)
                )
            })?;
        let rationale = self
            .rationales
            .intern(cell(3))
            .ok_or_else(|| "rationale: more than 256 different rationales".to_string())?;
        Ok((
            code,
            MueEdit {
                units,
                adjudication,
                rationale,
                source,
            },
        ))
    }

    /// The MUE of `code`, if it has one.
    pub fn get(&self, code: CodeValue) -> Option<&MueEdit> {
        self.edits.get(&code)
    }

    /// The rationale CMS gives for `edit`.
    pub fn rationale(&self, edit: &MueEdit) -> &str {
        self.rationales.get(edit.rationale)
    }

    /// How many codes have an MUE.
    pub fn len(&self) -> usize {
        self.edits.len()
    }

    /// True when none has.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMS_LAYOUT: &str = "\"Current Procedural Terminology (CPT) codes, descriptions and other data only are copyright 2025 American Medical Association. All rights reserved. \n\
\n\
Applicable FARS/DFARS Restrictions Apply to Government Use. \",,,\n\
\"HCPCS/\n\
CPT Code\",Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n\
64483,1,2 Date of Service Edit: Policy,CMS Policy\n\
64484,4,3 Date of Service Edit: Clinical,Clinical: Data\n\
20552,1,1 Line Edit,Anatomic Consideration\n";

    #[test]
    fn cms_rows_read_their_mai_from_the_leading_digit() {
        let mut problems = Problems::default();
        let table = MueTable::read(CMS_LAYOUT, &"mue.csv".into(), 0, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let edit = table.get(CodeValue::parse("64484").unwrap()).unwrap();
        assert_eq!(
            (edit.units, edit.adjudication),
            (4, Adjudication::DateClinical)
        );
        assert_eq!(edit.source.row, 7);
        assert_eq!(table.rationale(edit), "Clinical: Data");
        let line = table.get(CodeValue::parse("20552").unwrap()).unwrap();
        assert_eq!(line.adjudication, Adjudication::Line);
    }

    #[test]
    fn a_bad_row_is_named_by_its_line() {
        let text = format!("{CMS_LAYOUT}64490,one,2 Date of Service Edit: Policy,CMS Policy\n");
        let mut problems = Problems::default();
        MueTable::read(&text, &"mue.csv".into(), 0, &mut problems);
        let (listed, _) = problems.into_parts();
        assert_eq!(listed[0].line, 9);
        assert!(listed[0].message.contains("MUE value"));
    }
}
