//! The encounters the quality bench imports, and the rows the store writes for
//! them, so that the raw SQLite insert it is compared with writes rows of the
//! same shape and size.
//!
//! Encounter `index` is the same whichever import sends it: a bench data set
//! is encounters `0..n`, spread over a fixed number of patients, 40
//! providers (NPIs, under 4 TINs), every day of 2025, and a mix of outcomes
//! under both built-in measures and CMS's measure 047 (advance care plan, a
//! patient measure) as the test fixture defines it.

use cptd::pb;
use jiff::civil::date;
use sha2::{Digest, Sha256};

/// Providers the encounters are spread over.
pub const PROVIDERS: usize = 40;

/// The Category II codes, with their modifiers after a dash, that encounter
/// `index` reports beside its office visit: outcomes met, not met, excluded
/// and absent under both built-in measures, in turn.
fn quality_codes(index: usize) -> &'static [&'static str] {
    match index % 6 {
        0 => &["1125F", "0521F", "1123F"],
        1 => &["1125F", "0521F-8P", "1123F-8P"],
        2 => &["1126F"],
        3 => &["1125F-8P"],
        4 => &["1125F", "0521F-2P", "1124F"],
        _ => &[],
    }
}

/// Encounter `index` of a data set of `patients` patients.
pub fn encounter(index: usize, patients: usize) -> pb::Encounter {
    let day = date(2025, 1, 1)
        .checked_add(jiff::Span::new().days((index % 365) as i64))
        .expect("a day of 2025");
    let codes = std::iter::once("99213")
        .chain(quality_codes(index).iter().copied())
        .map(|text| {
            let mut parts = text.split('-');
            pb::EncounterCode {
                code: parts.next().unwrap_or_default().into(),
                modifiers: parts.map(str::to_string).collect(),
                units: 1,
            }
        })
        .collect();
    pb::Encounter {
        encounter_id: format!("enc-{index:08}"),
        patient_id: format!("MRN-{:07}", index % patients),
        provider_id: format!("npi-{:02}", index % PROVIDERS),
        tin: format!("{:09}", 100_000_000 + index % 4),
        service_date: day.to_string(),
        place_of_service: "11".into(),
        patient_age: Some(40 + (index % 50) as i32),
        patient_sex: if index.is_multiple_of(2) { "F" } else { "M" }.into(),
        codes,
        diagnoses: vec!["C50.911".into(), "G89.3".into()],
    }
}

/// The columns the store writes for one encounter.
pub struct StoreRow {
    pub encounter_id: String,
    pub patient_hash: [u8; 32],
    pub provider_id: String,
    pub service_date: String,
    pub claim: String,
}

/// The row the store writes for `encounter`. The claim is the store's JSON
/// (short keys, empty fields left out, diagnoses without the dot), which the
/// bench checks against a row the server stored; a plain SHA-256 of the
/// patient id stands in for the store's keyed hash, of the same length.
pub fn store_row(encounter: &pb::Encounter) -> StoreRow {
    let codes: Vec<String> = encounter
        .codes
        .iter()
        .map(|code| {
            let modifiers = if code.modifiers.is_empty() {
                String::new()
            } else {
                format!(r#","modifiers":["{}"]"#, code.modifiers.join(r#"",""#))
            };
            format!(
                r#"{{"code":"{}"{modifiers},"units":{}}}"#,
                code.code, code.units
            )
        })
        .collect();
    let diagnoses: Vec<String> = encounter
        .diagnoses
        .iter()
        .map(|diagnosis| format!(r#""{}""#, diagnosis.replace('.', "")))
        .collect();
    let claim = format!(
        r#"{{"place":"{}","age":{},"sex":"{}","codes":[{}],"diagnoses":[{}]}}"#,
        encounter.place_of_service,
        encounter.patient_age.unwrap_or_default(),
        encounter.patient_sex,
        codes.join(","),
        diagnoses.join(","),
    );
    StoreRow {
        encounter_id: encounter.encounter_id.clone(),
        patient_hash: Sha256::digest(encounter.patient_id.as_bytes()).into(),
        provider_id: encounter.provider_id.clone(),
        service_date: encounter.service_date.clone(),
        claim,
    }
}
