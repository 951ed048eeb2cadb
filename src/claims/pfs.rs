//! The physician fee schedule's payment indicators that claim edits use: the
//! status code, the global period and the bilateral-surgery indicator of each
//! code (its row without a modifier).
//!
//! Two layouts are read: CMS's relative value file (PPRRVU) as a CSV (ten
//! title and header lines, the last beginning `HCPCS,MOD,DESCRIPTION`, columns
//! at CMS's fixed positions), and a CSV with one header line naming its
//! columns (`code`/`HCPCS`, `modifier`/`MOD`, `status`/`STATUS CODE`,
//! `global_days`/`GLOB DAYS`, `bilateral_surgery`/`BILAT SURG`), which is how
//! the built-in extract is written.

use std::sync::Arc;

use super::{
    FastMap,
    edit_file::{Problems, RowSource, code_field, for_each_record},
};
use crate::codes::CodeValue;

/// A code's global surgical period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GlobalPeriod {
    /// `000`: a minor procedure; an E/M that day is part of it.
    Zero,
    /// `010`: a minor procedure with ten days of follow-up.
    Ten,
    /// `090`: a major procedure.
    Ninety,
    /// `MMM`: maternity.
    Maternity,
    /// `XXX`: the concept does not apply (E/M visits, most tests).
    NotApplicable,
    /// `YYY`: the contractor sets it.
    ContractorSet,
    /// `ZZZ`: an add-on, inside its primary's period.
    AddOn,
}

impl GlobalPeriod {
    fn parse(text: &str) -> Option<GlobalPeriod> {
        Some(match text.trim() {
            "000" => GlobalPeriod::Zero,
            "010" => GlobalPeriod::Ten,
            "090" => GlobalPeriod::Ninety,
            "MMM" => GlobalPeriod::Maternity,
            "XXX" => GlobalPeriod::NotApplicable,
            "YYY" => GlobalPeriod::ContractorSet,
            "ZZZ" => GlobalPeriod::AddOn,
            _ => return None,
        })
    }

    /// CMS's three characters.
    pub fn as_str(self) -> &'static str {
        match self {
            GlobalPeriod::Zero => "000",
            GlobalPeriod::Ten => "010",
            GlobalPeriod::Ninety => "090",
            GlobalPeriod::Maternity => "MMM",
            GlobalPeriod::NotApplicable => "XXX",
            GlobalPeriod::ContractorSet => "YYY",
            GlobalPeriod::AddOn => "ZZZ",
        }
    }
}

/// The indicators of one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentIndicators {
    /// The status code (`A` active, `I` not valid for Medicare, `M` measurement
    /// code, …).
    pub status: char,
    /// The global period.
    pub global: GlobalPeriod,
    /// The bilateral-surgery indicator, 0 to 3 or 9.
    pub bilateral: u8,
    /// Where it was read.
    pub source: RowSource,
}

/// The indicators of every code in the file.
#[derive(Debug, Clone, Default)]
pub struct PfsTable {
    codes: FastMap<CodeValue, PaymentIndicators>,
}

/// Column positions of the fields read.
#[derive(Debug, Clone, Copy)]
struct Columns {
    code: usize,
    modifier: usize,
    status: usize,
    global: usize,
    bilateral: usize,
}

impl Columns {
    /// PPRRVU's fixed positions, from CMS's layout.
    const PPRRVU: Columns = Columns {
        code: 0,
        modifier: 1,
        status: 3,
        global: 14,
        bilateral: 19,
    };

    /// The columns of a header row that names them, or PPRRVU's.
    fn of_header(record: &csv::StringRecord) -> Option<Columns> {
        let cells: Vec<String> = record
            .iter()
            .map(|cell| cell.trim().to_ascii_lowercase())
            .collect();
        if cells.len() > 2 && cells[0] == "hcpcs" && cells[1] == "mod" && cells[2] == "description"
        {
            return Some(Columns::PPRRVU);
        }
        let find = |names: &[&str]| cells.iter().position(|cell| names.contains(&cell.as_str()));
        Some(Columns {
            code: find(&["code", "hcpcs"])?,
            modifier: find(&["modifier", "mod"])?,
            status: find(&["status", "status code"])?,
            global: find(&["global_days", "glob days"])?,
            bilateral: find(&["bilateral_surgery", "bilat surg"])?,
        })
    }
}

impl PfsTable {
    /// Reads a file of either layout.
    pub fn read(text: &str, name: &Arc<str>, file: u16, problems: &mut Problems) -> PfsTable {
        let mut table = PfsTable::default();
        let mut columns = None;
        for_each_record(text, name, problems, |line, record, problems| {
            let Some(columns) = columns else {
                columns = Columns::of_header(record);
                return;
            };
            if record.iter().all(|cell| cell.trim().is_empty()) {
                return;
            }
            let row = u32::try_from(line).unwrap_or(u32::MAX);
            let cell = |index: usize| record.get(index).unwrap_or("").trim();
            // Rows with a modifier (26, TC, 53) price a part of the service;
            // the code's own indicators are on its row without one.
            if !cell(columns.modifier).is_empty() {
                return;
            }
            match read_row(
                cell(columns.code),
                cell(columns.status),
                cell(columns.global),
                cell(columns.bilateral),
            ) {
                Ok((code, status, global, bilateral)) => {
                    let indicators = PaymentIndicators {
                        status,
                        global,
                        bilateral,
                        source: RowSource { file, row },
                    };
                    if let Some(earlier) = table.codes.insert(code, indicators) {
                        problems.add(
                            name,
                            line,
                            format!(
                                "{code} already has a row without a modifier, on line {}",
                                earlier.source.row
                            ),
                        );
                    }
                }
                Err(message) => problems.add(name, line, message),
            }
        });
        if columns.is_none() {
            problems.add(
                name,
                0,
                "no header found: expected CMS's PPRRVU layout (a header line beginning \
                 \"HCPCS,MOD,DESCRIPTION\") or a header naming code, modifier, status, \
                 global_days and bilateral_surgery",
            );
        }
        table
    }

    /// The indicators of `code`, if the file has it.
    pub fn get(&self, code: CodeValue) -> Option<&PaymentIndicators> {
        self.codes.get(&code)
    }

    /// How many codes the file has.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// True when it has none.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

fn read_row(
    code: &str,
    status: &str,
    global: &str,
    bilateral: &str,
) -> Result<(CodeValue, char, GlobalPeriod, u8), String> {
    let code = code_field(code, "HCPCS")?;
    let mut status_chars = status.chars();
    let status = match (status_chars.next(), status_chars.next()) {
        (Some(letter), None) if letter.is_ascii_alphabetic() => letter.to_ascii_uppercase(),
        _ => return Err(format!("STATUS CODE: {status:?} is not one letter")),
    };
    let global = GlobalPeriod::parse(global).ok_or_else(|| {
        format!("GLOB DAYS: {global:?} is not one of 000, 010, 090, MMM, XXX, YYY, ZZZ")
    })?;
    let bilateral = match bilateral {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        "3" => 3,
        "9" => 9,
        other => return Err(format!("BILAT SURG: {other:?} is not 0, 1, 2, 3 or 9")),
    };
    Ok((code, status, global, bilateral))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> CodeValue {
        CodeValue::parse(text).unwrap()
    }

    const PPRRVU: &str = ",,2026 National Physician Fee Schedule Relative Value File July Release,,,,,,,,,,,,,,,,,,,,,,,,,,,,,
,,CPT codes and descriptions only are copyright 2026 American Medical Association. All Rights Reserved. Applicable FARS/DFARS Apply.,,,,,,,,,,,,,,,,,,,,,,,,,,,,,
,,Dental codes (D codes) are copyright 2026 American Dental Association. All Rights Reserved.,,,,,,,,,,,,,,,,,,,,,,,,,,,,,
,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,
,,RELEASED 06/30/2026,,,,,,,,,,,,,,,,,,,,,,,,,,,,,
,,,,,,,,,,,,,,,,,,,,,,,,,,,,,NON-FACILITY,FACILITY,
,,,,NOT USED,,,,,,,,,,,,,,,,,,,,,,PHYSICIAN,,DIAGNOSTIC,PE USED,PE USED,MP USED
,,,,FOR,,,NON-FAC,,FACILITY,,,,,,,,,,,,,,,,,SUPERVISION OF,,IMAGING,FOR OPPS,FOR OPPS,FOR OPPS
,,,STATUS,MEDICARE,WORK,NON-FAC,NA,FACILITY,NA,MP,NON-FACILITY,FACILITY,PCTC,GLOB,PRE,INTRA,POST,MULT,BILAT,ASST,CO-,TEAM,PRIC,ENDO,CONV,DIAGNOSTIC,CALCULATION,FAMILY,PAYMENT,PAYMENT,PAYMENT
HCPCS,MOD,DESCRIPTION,CODE,PAYMENT,RVU,PE RVU,INDICATOR,PE RVU,INDICATOR,RVU,TOTAL,TOTAL,IND,DAYS,OP,OP,OP,PROC,SURG,SURG,SURG,SURG,IND,BASE,FACTOR,PROCEDURES,FLAG,INDICATOR,AMOUNT,AMOUNT,AMOUNT
64483,,REDACTED,A,,1.90,4.93,,1.12,,0.17,7.00,3.19,0,000,0.00,0.00,0.00,2,1,1,0,0,0,,33.4009,99,0,99,0.00,0.00,0.00
64483,26,REDACTED,A,,1.90,4.93,,1.12,,0.17,7.00,3.19,0,000,0.00,0.00,0.00,2,7,1,0,0,0,,33.4009,99,0,99,0.00,0.00,0.00
64615,,\"REDACTED, with a comma\",A,,1.85,2.55,,1.04,,0.10,4.50,2.99,0,010,0.00,0.00,0.00,2,2,1,0,0,0,,33.4009,99,0,99,0.00,0.00,0.00
";

    #[test]
    fn pprrvu_rows_read_at_cms_positions() {
        let mut problems = Problems::default();
        let table = PfsTable::read(PPRRVU, &"PPRRVU26_JUL.csv".into(), 0, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let row = table.get(code("64483")).unwrap();
        assert_eq!(
            (row.status, row.global, row.bilateral),
            ('A', GlobalPeriod::Zero, 1)
        );
        assert_eq!(row.source.row, 11);
        assert_eq!(table.get(code("64615")).unwrap().bilateral, 2);
    }

    #[test]
    fn a_bad_indicator_is_named_by_its_line() {
        let text = "code,modifier,status,pctc,global_days,multiple_procedure,bilateral_surgery\n64483,,A,0,000,2,1\n64484,,A,0,ZZ,0,1\n";
        let mut problems = Problems::default();
        PfsTable::read(text, &"pfs.csv".into(), 0, &mut problems);
        let (listed, _) = problems.into_parts();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].line, 3);
        assert!(listed[0].message.contains("GLOB DAYS"));
    }
}
