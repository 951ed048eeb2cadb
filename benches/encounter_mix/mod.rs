//! The mix of encounters the store benchmarks record, shared by
//! `benches/quality.rs` (over gRPC) and `benches/rows.rs` (in process), so
//! that both time rows of the same shape.

use cptd::{
    codes::CodeValue,
    measures::{
        Claim, Diagnosis, Encounter, Modifier, PatientId, PlaceOfService, ReportedCode, Sex,
    },
    pb,
};
use jiff::civil::date;

/// Providers the encounters are spread over.
pub const PROVIDERS: usize = 40;

/// The Category II codes, with their modifiers after a dash, that encounter
/// `index` reports beside its office visit: outcomes met, not met, excluded
/// and absent under both built-in measures, in turn.
fn quality_codes(index: usize) -> &'static [&'static str] {
    match index % 6 {
        0 => &["1125F", "0521F"],
        1 => &["1125F", "0521F-8P"],
        2 => &["1126F"],
        3 => &["1125F-8P"],
        4 => &["1125F", "0521F-2P"],
        _ => &[],
    }
}

/// A varied encounter: one of 40 providers, a day of 2025, and a mix of
/// outcomes under both built-in measures.
pub fn encounter(prefix: &str, index: usize) -> pb::Encounter {
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
        encounter_id: format!("{prefix}-{index:08}"),
        patient_id: format!("MRN-{:07}", index % 50_000),
        provider_id: format!("npi-{:02}", index % PROVIDERS),
        service_date: day.to_string(),
        place_of_service: "11".into(),
        patient_age: Some(40 + (index % 50) as i32),
        patient_sex: if index.is_multiple_of(2) { "F" } else { "M" }.into(),
        codes,
        diagnoses: vec!["C50.911".into(), "G89.3".into()],
    }
}

/// The bench's encounter in the domain's types, as the import threads make it.
pub fn domain_encounter(prefix: &str, index: usize) -> Encounter {
    let sent = encounter(prefix, index);
    let codes = sent
        .codes
        .iter()
        .map(|code| ReportedCode {
            code: CodeValue::parse(&code.code).expect("code"),
            modifiers: code
                .modifiers
                .iter()
                .map(|modifier| Modifier::parse(modifier).expect("modifier"))
                .collect(),
            units: code.units as u16,
        })
        .collect();
    Encounter {
        encounter_id: sent.encounter_id,
        patient_id: PatientId::parse(&sent.patient_id).expect("patient"),
        claim: Claim {
            provider_id: sent.provider_id,
            service_date: sent.service_date.parse().expect("date"),
            place_of_service: Some(PlaceOfService::parse(&sent.place_of_service).expect("place")),
            patient_age: sent.patient_age.map(|age| age as u8),
            patient_sex: Some(Sex::parse(&sent.patient_sex).expect("sex")),
            codes,
            diagnoses: sent
                .diagnoses
                .iter()
                .map(|diagnosis| Diagnosis::parse(diagnosis).expect("diagnosis"))
                .collect(),
        },
    }
}
