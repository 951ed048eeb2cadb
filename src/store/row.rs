//! How a claim is written to and read from its JSON column.

use serde::Deserialize;

use super::StoreError;
use crate::{
    calendar,
    codes::CodeValue,
    measures::{Claim, Diagnosis, Modifier, PlaceOfService, ReportedCode, Sex},
};

/// A code as stored. Borrowed from the row's text, so reading a claim back
/// allocates only the values it keeps.
#[derive(Deserialize)]
struct StoredCode<'a> {
    code: &'a str,
    #[serde(default, borrow)]
    modifiers: Vec<&'a str>,
    #[serde(default)]
    units: u16,
}

/// The claim's JSON form: short keys, empty fields left out, so a row stays small.
#[derive(Deserialize)]
struct StoredClaim<'a> {
    #[serde(default)]
    place: Option<&'a str>,
    #[serde(default)]
    age: Option<u8>,
    #[serde(default)]
    sex: Option<&'a str>,
    #[serde(borrow)]
    codes: Vec<StoredCode<'a>>,
    #[serde(default, borrow)]
    diagnoses: Vec<&'a str>,
}

/// Appends `text` as a JSON string. Every value a claim holds has been parsed
/// into letters, digits and a few marks, none of which JSON escapes, so the
/// text goes in as it is.
fn push_string(json: &mut String, text: &str) {
    debug_assert!(
        text.bytes()
            .all(|byte| byte.is_ascii_graphic() && byte != b'"' && byte != b'\\'),
        "a claim value needs JSON escaping"
    );
    json.push('"');
    json.push_str(text);
    json.push('"');
}

/// Appends `texts` as a JSON array of strings.
fn push_strings<'a>(json: &mut String, texts: impl Iterator<Item = &'a str>) {
    json.push('[');
    for (index, text) in texts.enumerate() {
        if index > 0 {
            json.push(',');
        }
        push_string(json, text);
    }
    json.push(']');
}

/// Appends the JSON of `claim`'s facts other than provider and date, which
/// have their own columns, to `json`. Deterministic, so equal claims write
/// equal text: keys in a fixed order, empty fields left out. Written straight
/// into the string, as it runs once for every recorded encounter; the text is
/// the same as serde would write for these fields (a test holds the two
/// together), so rows stored earlier still match their resends.
pub fn write_claim_json(json: &mut String, claim: &Claim) {
    let mut integers = itoa::Buffer::new();
    json.reserve(64 + 40 * claim.codes.len() + 12 * claim.diagnoses.len());
    json.push('{');
    if let Some(place) = claim.place_of_service {
        json.push_str("\"place\":");
        push_string(json, place.as_str());
        json.push(',');
    }
    if let Some(age) = claim.patient_age {
        json.push_str("\"age\":");
        json.push_str(integers.format(age));
        json.push(',');
    }
    if let Some(sex) = claim.patient_sex {
        json.push_str("\"sex\":");
        push_string(json, sex.as_str());
        json.push(',');
    }
    json.push_str("\"codes\":[");
    for (index, code) in claim.codes.iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        json.push_str("{\"code\":");
        push_string(json, code.code.as_str());
        if !code.modifiers.is_empty() {
            json.push_str(",\"modifiers\":");
            push_strings(
                json,
                code.modifiers.iter().map(|modifier| modifier.as_str()),
            );
        }
        if code.units != 0 {
            json.push_str(",\"units\":");
            json.push_str(integers.format(code.units));
        }
        json.push('}');
    }
    json.push(']');
    if !claim.diagnoses.is_empty() {
        json.push_str(",\"diagnoses\":");
        push_strings(json, claim.diagnoses.iter().map(Diagnosis::compact));
    }
    json.push('}');
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
                code: CodeValue::parse(code.code).map_err(|e| bad(&e))?,
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
            .map(|text| PlaceOfService::parse(text).map_err(|e| bad(&e)))
            .transpose()?,
        patient_age: stored.age,
        patient_sex: stored
            .sex
            .map(|text| Sex::parse(text).map_err(|e| bad(&e)))
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
    use serde::Serialize;

    use super::*;

    fn claim_json(claim: &Claim) -> String {
        let mut json = String::new();
        write_claim_json(&mut json, claim);
        json
    }

    /// The form rows were written in by serde before `claim_json` wrote them
    /// by hand; both must give the same text, or rows stored earlier would
    /// stop matching resends.
    #[derive(Serialize)]
    struct SerdeCode {
        code: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        modifiers: Vec<String>,
        #[serde(skip_serializing_if = "is_zero")]
        units: u16,
    }

    fn is_zero(units: &u16) -> bool {
        *units == 0
    }

    #[derive(Serialize)]
    struct SerdeClaim {
        #[serde(skip_serializing_if = "Option::is_none")]
        place: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        age: Option<u8>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sex: Option<String>,
        codes: Vec<SerdeCode>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        diagnoses: Vec<String>,
    }

    fn serde_json_of(claim: &Claim) -> String {
        let stored = SerdeClaim {
            place: claim.place_of_service.map(|place| place.to_string()),
            age: claim.patient_age,
            sex: claim.patient_sex.map(|sex| sex.as_str().to_string()),
            codes: claim
                .codes
                .iter()
                .map(|code| SerdeCode {
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
        serde_json::to_string(&stored).unwrap()
    }

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

    fn claims() -> Vec<Claim> {
        let code_lists = [
            vec![],
            vec![code("99213", &[], 1)],
            vec![
                code("99213", &["25"], 0),
                code("1125F", &[], 1),
                code("0521F", &["8P"], 9999),
            ],
            vec![code("64483", &["RT", "LT", "59"], 2)],
        ];
        let diagnosis_lists = [
            vec![],
            vec![Diagnosis::parse("C50.911").unwrap()],
            vec![
                Diagnosis::parse("C50.911").unwrap(),
                Diagnosis::parse("G89.3").unwrap(),
            ],
        ];
        let mut claims = Vec::new();
        for codes in &code_lists {
            for diagnoses in &diagnosis_lists {
                for place in [None, Some(PlaceOfService::parse("11").unwrap())] {
                    for age in [None, Some(0), Some(130)] {
                        for sex in [None, Some(Sex::Female), Some(Sex::Male)] {
                            claims.push(Claim {
                                provider_id: "npi-1".into(),
                                service_date: date(2025, 3, 4),
                                place_of_service: place,
                                patient_age: age,
                                patient_sex: sex,
                                codes: codes.clone(),
                                diagnoses: diagnoses.clone(),
                            });
                        }
                    }
                }
            }
        }
        claims
    }

    #[test]
    fn claim_json_writes_what_serde_wrote() {
        for claim in claims() {
            assert_eq!(claim_json(&claim), serde_json_of(&claim), "{claim:?}");
        }
    }

    #[test]
    fn a_claim_reads_back_as_written() {
        for claim in claims() {
            let json = claim_json(&claim);
            let read = read_claim(claim.provider_id.clone(), "2025-03-04", &json).unwrap();
            assert_eq!(read, claim);
        }
    }
}
