//! How a claim is written to and read from its JSON column.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::{
    calendar,
    codes::CodeValue,
    measures::{Claim, Diagnosis, Modifier, PlaceOfService, ReportedCode, Sex},
};

#[derive(Serialize, Deserialize)]
struct StoredCode {
    code: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    modifiers: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    units: u16,
}

fn is_zero(units: &u16) -> bool {
    *units == 0
}

/// The claim's JSON form: short keys, empty fields left out, so a row stays small.
#[derive(Serialize, Deserialize)]
struct StoredClaim {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    place: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    age: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sex: Option<String>,
    codes: Vec<StoredCode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    diagnoses: Vec<String>,
}

/// The JSON of `claim`'s facts other than provider and date, which have their
/// own columns. Deterministic, so equal claims write equal text.
pub fn claim_json(claim: &Claim) -> String {
    let stored = StoredClaim {
        place: claim.place_of_service.map(|place| place.to_string()),
        age: claim.patient_age,
        sex: claim.patient_sex.map(|sex| sex.as_str().to_string()),
        codes: claim
            .codes
            .iter()
            .map(|code| StoredCode {
                code: code.code.to_string(),
                modifiers: code.modifiers.iter().map(ToString::to_string).collect(),
                units: code.units,
            })
            .collect(),
        diagnoses: claim
            .diagnoses
            .iter()
            .map(|d| d.compact().to_string())
            .collect(),
    };
    // Strings and numbers only: serialising cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// Reads a claim back from its columns.
pub fn read_claim(
    provider_id: String,
    service_date: &str,
    json: &str,
) -> Result<Claim, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(what);
    let stored: StoredClaim =
        serde_json::from_str(json).map_err(|error| corrupt(format!("claim json: {error}")))?;
    let bad = |error: &dyn std::fmt::Display| corrupt(format!("stored value: {error}"));
    let codes = stored
        .codes
        .into_iter()
        .map(|code| {
            Ok(ReportedCode {
                code: CodeValue::parse(&code.code).map_err(|e| bad(&e))?,
                modifiers: code
                    .modifiers
                    .iter()
                    .map(|text| Modifier::parse(text).map_err(|e| bad(&e)))
                    .collect::<Result<_, _>>()?,
                units: code.units,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Claim {
        provider_id,
        service_date: calendar::parse_date(service_date).map_err(|e| bad(&e))?,
        place_of_service: stored
            .place
            .map(|text| PlaceOfService::parse(&text).map_err(|e| bad(&e)))
            .transpose()?,
        patient_age: stored.age,
        patient_sex: stored
            .sex
            .map(|text| Sex::parse(&text).map_err(|e| bad(&e)))
            .transpose()?,
        codes,
        diagnoses: stored
            .diagnoses
            .iter()
            .map(|text| Diagnosis::parse(text).map_err(|e| bad(&e)))
            .collect::<Result<_, _>>()?,
    })
}
