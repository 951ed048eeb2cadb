//! NCCI add-on code edits: the primary codes an add-on code is paid with.
//!
//! The layout read is a CSV with the header `add_on_code, primary_code,
//! edit_type`, one add-on and primary pair a row, as the built-in extract is
//! written; a primary of `CCCCC` (CMS's mark for "the contractor decides")
//! names no code.

use std::sync::Arc;

use super::{
    FastMap,
    edit_file::{Problems, RowSource, code_field},
};
use crate::codes::CodeValue;

/// How CMS lists an add-on's primaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddOnType {
    /// Type 1: only the listed primaries.
    Listed,
    /// Type 2: no list; the contractor decides.
    ContractorDefined,
    /// Type 3: some primaries listed; the contractor may accept others.
    ListedAndOthers,
}

impl AddOnType {
    /// CMS's number for it.
    pub fn number(self) -> u8 {
        match self {
            AddOnType::Listed => 1,
            AddOnType::ContractorDefined => 2,
            AddOnType::ListedAndOthers => 3,
        }
    }
}

/// One row: an add-on and one of its primaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOnEdit {
    /// The primary; `None` when the contractor decides.
    pub primary: Option<CodeValue>,
    /// The edit's type.
    pub kind: AddOnType,
    /// Where it was read.
    pub source: RowSource,
}

/// Every add-on of the file with its rows.
#[derive(Debug, Clone, Default)]
pub struct AddOnTable {
    edits: FastMap<CodeValue, Vec<AddOnEdit>>,
}

impl AddOnTable {
    /// Reads the file.
    pub fn read(text: &str, name: &Arc<str>, file: u16, problems: &mut Problems) -> AddOnTable {
        let mut table = AddOnTable::default();
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header))
                if header
                    .trim_start_matches('\u{feff}')
                    .starts_with("add_on_code,primary_code,edit_type") => {}
            _ => {
                problems.add(
                    name,
                    1,
                    "expected the header \"add_on_code,primary_code,edit_type\"",
                );
                return table;
            }
        }
        for (index, line) in lines {
            let number = index as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let source = RowSource {
                file,
                row: u32::try_from(number).unwrap_or(u32::MAX),
            };
            match row(line, source) {
                Ok((add_on, edit)) => table.edits.entry(add_on).or_default().push(edit),
                Err(message) => problems.add(name, number, message),
            }
        }
        table
    }

    /// The rows of `code`, when it is an add-on the file lists.
    pub fn get(&self, code: CodeValue) -> Option<&[AddOnEdit]> {
        self.edits.get(&code).map(Vec::as_slice)
    }

    /// How many add-ons the file lists.
    pub fn len(&self) -> usize {
        self.edits.len()
    }

    /// True when it lists none.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }
}

fn row(line: &str, source: RowSource) -> Result<(CodeValue, AddOnEdit), String> {
    let mut cells = line.split(',');
    let mut next = || cells.next().unwrap_or("").trim();
    let (add_on, primary, kind) = (next(), next(), next());
    let add_on = code_field(add_on, "add_on_code")?;
    let primary = match primary {
        "CCCCC" => None,
        text => Some(code_field(text, "primary_code")?),
    };
    let kind = match kind {
        "1" => AddOnType::Listed,
        "2" => AddOnType::ContractorDefined,
        "3" => AddOnType::ListedAndOthers,
        other => return Err(format!("edit_type: {other:?} is not 1, 2 or 3")),
    };
    Ok((
        add_on,
        AddOnEdit {
            primary,
            kind,
            source,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_by_add_on_and_bad_rows_are_named() {
        let mut problems = Problems::default();
        let table = AddOnTable::read(
            "add_on_code,primary_code,edit_type\n64494,64490,1\n64494,64493,1\n77003,CCCCC,2\n64484,6448,1\n",
            &"aoc.csv".into(),
            0,
            &mut problems,
        );
        assert_eq!(
            table.get(CodeValue::parse("64494").unwrap()).unwrap().len(),
            2
        );
        let contractor = table.get(CodeValue::parse("77003").unwrap()).unwrap();
        assert_eq!(contractor[0].primary, None);
        let (listed, _) = problems.into_parts();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].line, 5);
    }
}
