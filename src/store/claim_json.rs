//! The JSON a claim is stored as: short keys, empty fields left out, so a row
//! stays small. Equal claims write equal text, which is how a resend is told
//! from a conflicting encounter with the same id; the form must therefore
//! never change for claims already stored.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::{
    calendar,
    codes::CodeValue,
    measures::{Claim, Diagnosis, Modifier, PlaceOfService, ReportedCode, Sex, Tin},
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

/// The claim's facts other than provider and date, which have columns of
/// their own.
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

/// The stored JSON of `claim`.
pub fn to_json(claim: &Claim) -> String {
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
            .map(|diagnosis| diagnosis.compact().to_string())
            .collect(),
    };
    // Only strings and small integers: serialising cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

/// Reads a claim back from its columns; an empty TIN is a claim stored
/// before TINs were kept.
pub fn read_claim(
    provider_id: String,
    tin: &str,
    service_date: &str,
    json: &str,
) -> Result<Claim, StoreError> {
    let stored: StoredClaim = serde_json::from_str(json)
        .map_err(|error| StoreError::Corrupt(format!("claim json: {error}")))?;
    let bad = |error: &dyn std::fmt::Display| StoreError::Corrupt(format!("stored value: {error}"));
    let codes = stored
        .codes
        .iter()
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
        tin: (!tin.is_empty())
            .then(|| Tin::parse(tin).map_err(|e| bad(&e)))
            .transpose()?,
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

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn code(text: &str, modifiers: &[&str], units: u16) -> ReportedCode {
        ReportedCode {
            code: CodeValue::parse(text).unwrap(),
            modifiers: modifiers
                .iter()
                .map(|modifier| Modifier::parse(modifier).unwrap())
                .collect(),
            units,
        }
    }

    #[test]
    fn a_claim_reads_back_as_written() {
        let code_lists = [
            vec![],
            vec![
                code("99213", &["25"], 0),
                code("1125F", &[], 1),
                code("0521F", &["8P"], 9999),
            ],
        ];
        for codes in code_lists {
            for diagnoses in [vec![], vec![Diagnosis::parse("C50.911").unwrap()]] {
                for place in [None, Some(PlaceOfService::parse("11").unwrap())] {
                    for (age, sex) in [(None, None), (Some(0), Some(Sex::Female))] {
                        let claim = Claim {
                            provider_id: "npi-1".into(),
                            tin: Some(Tin::parse("123456789").unwrap()),
                            service_date: date(2025, 3, 4),
                            place_of_service: place,
                            patient_age: age,
                            patient_sex: sex,
                            codes: codes.clone(),
                            diagnoses: diagnoses.clone(),
                        };
                        let read =
                            read_claim("npi-1".into(), "123456789", "2025-03-04", &to_json(&claim))
                                .unwrap();
                        assert_eq!(read, claim);
                    }
                }
            }
        }
    }
}
