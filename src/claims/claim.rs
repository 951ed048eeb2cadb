//! A claim as it would be sent, every field parsed: what the edits look at.

use jiff::civil::Date;

use crate::{
    codes::CodeValue,
    measures::{self, Diagnosis, Modifier, PlaceOfService, ReportedCode, Sex, Tin},
};

/// Most service lines on one claim; a professional claim (837P) holds 50.
pub const MAX_CLAIM_LINES: usize = 50;
/// Most diagnoses on one claim, as the claim form holds (A to L).
pub const MAX_CLAIM_DIAGNOSES: usize = 12;
/// Most diagnosis pointers on one line, as the claim form holds.
pub const MAX_DIAGNOSIS_POINTERS: usize = 4;
/// Most modifiers on one line.
pub const MAX_LINE_MODIFIERS: usize = 4;
/// Most units of service on one line.
pub const MAX_LINE_UNITS: u16 = 9999;

/// One service line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimLine {
    /// The code.
    pub code: CodeValue,
    /// Its modifiers, in the order given.
    pub modifiers: Vec<Modifier>,
    /// Units of service; at least 1 (a line sent with 0 counts as 1).
    pub units: u16,
    /// Positions in [`Claim::diagnoses`], from 1, each 1 to
    /// [`MAX_CLAIM_DIAGNOSES`]; a pointer past the claim's diagnoses is kept,
    /// for the diagnosis edits to name.
    pub diagnosis_pointers: Vec<u8>,
}

impl ClaimLine {
    /// True when the line carries `modifier`.
    pub fn has(&self, modifier: &str) -> bool {
        self.modifiers
            .iter()
            .any(|carried| carried.as_str() == modifier)
    }
}

/// A claim: one rendering provider, one date of service, no patient identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Date of service.
    pub service_date: Date,
    /// Where the service was given, when known.
    pub place_of_service: Option<PlaceOfService>,
    /// The rendering provider, when given.
    pub provider_id: String,
    /// The billing TIN, when given.
    pub tin: Option<Tin>,
    /// Age in whole years on the service date, when known.
    pub patient_age: Option<u8>,
    /// Sex, when known.
    pub patient_sex: Option<Sex>,
    /// The diagnoses, in claim order.
    pub diagnoses: Vec<Diagnosis>,
    /// The service lines, in claim order.
    pub lines: Vec<ClaimLine>,
}

impl Claim {
    /// The claim as the quality measures read it: its lines as reported codes.
    pub fn as_measured(&self) -> measures::Claim {
        measures::Claim {
            provider_id: self.provider_id.clone(),
            tin: self.tin.clone(),
            service_date: self.service_date,
            place_of_service: self.place_of_service,
            patient_age: self.patient_age,
            patient_sex: self.patient_sex,
            codes: self
                .lines
                .iter()
                .map(|line| ReportedCode {
                    code: line.code,
                    modifiers: line.modifiers.clone(),
                    units: line.units,
                })
                .collect(),
            diagnoses: self.diagnoses.clone(),
        }
    }
}
