//! `CheckClaim` requests parsed into a domain [`Claim`], every problem named
//! by its field path (`claim.lines[2].modifiers[0]`).
//!
//! Only input that is not a claim at all is refused here: a malformed code,
//! modifier, diagnosis or date, or a list past its limit. What a payer would
//! deny (a deleted code, a diagnosis header, a pointer past the diagnoses) is
//! a finding of the check, not an error.

use super::error::Violations;
use crate::{
    calendar,
    claims::{
        Claim, ClaimLine, MAX_CLAIM_DIAGNOSES, MAX_CLAIM_LINES, MAX_DIAGNOSIS_POINTERS,
        MAX_LINE_MODIFIERS, MAX_LINE_UNITS,
    },
    codes::CodeValue,
    measures::{Diagnosis, MAX_PATIENT_AGE, Modifier, PlaceOfService, Sex, Tin, parse_id},
    pb,
};

/// Parses one optional field that is empty when not known.
fn optional<T, E: ToString>(
    text: &str,
    field: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    violations: &mut Violations,
) -> Option<T> {
    if text.trim().is_empty() {
        return None;
    }
    parse(text)
        .map_err(|error| violations.add(field, error.to_string()))
        .ok()
}

fn line(index: usize, line: &pb::ClaimLine, violations: &mut Violations) -> Option<ClaimLine> {
    let path = |field: &str| format!("claim.lines[{index}].{field}");
    let code = CodeValue::parse(&line.code)
        .map_err(|error| violations.add(path("code"), error.to_string()))
        .ok();
    if line.modifiers.len() > MAX_LINE_MODIFIERS {
        violations.add(
            path("modifiers"),
            format!("at most {MAX_LINE_MODIFIERS} modifiers per line"),
        );
    }
    let mut modifiers = Vec::with_capacity(line.modifiers.len().min(MAX_LINE_MODIFIERS));
    for (position, text) in line.modifiers.iter().take(MAX_LINE_MODIFIERS).enumerate() {
        match Modifier::parse(text) {
            Ok(modifier) => modifiers.push(modifier),
            Err(error) => {
                violations.add(path(&format!("modifiers[{position}]")), error.to_string())
            }
        }
    }
    let units = u16::try_from(line.units)
        .ok()
        .filter(|units| *units <= MAX_LINE_UNITS);
    if units.is_none() {
        violations.add(
            path("units"),
            format!("units must be 0 to {MAX_LINE_UNITS}"),
        );
    }
    if line.diagnosis_pointers.len() > MAX_DIAGNOSIS_POINTERS {
        violations.add(
            path("diagnosis_pointers"),
            format!("at most {MAX_DIAGNOSIS_POINTERS} diagnosis pointers per line"),
        );
    }
    let mut pointers = Vec::with_capacity(line.diagnosis_pointers.len());
    for (position, pointer) in line
        .diagnosis_pointers
        .iter()
        .take(MAX_DIAGNOSIS_POINTERS)
        .enumerate()
    {
        match u8::try_from(*pointer) {
            Ok(pointer) if (1..=MAX_CLAIM_DIAGNOSES).contains(&usize::from(pointer)) => {
                pointers.push(pointer)
            }
            _ => violations.add(
                path(&format!("diagnosis_pointers[{position}]")),
                format!(
                    "{pointer} is not a diagnosis position: pointers count from 1 and go to \
                     {MAX_CLAIM_DIAGNOSES}"
                ),
            ),
        }
    }
    Some(ClaimLine {
        code: code?,
        modifiers,
        // A line sent without units bills one.
        units: units?.max(1),
        diagnosis_pointers: pointers,
    })
}

/// Parses the claim of a `CheckClaim` request, or names every problem.
pub fn parse_claim(request: &pb::CheckClaimRequest) -> Result<Claim, Violations> {
    let mut violations = Violations::default();
    let Some(claim) = request.claim.as_ref() else {
        violations.add("claim", "claim is required");
        return Err(violations);
    };
    let service_date = if claim.service_date.trim().is_empty() {
        violations.add(
            "claim.service_date",
            "service_date is required (YYYY-MM-DD)",
        );
        None
    } else {
        calendar::parse_date(&claim.service_date)
            .map_err(|error| violations.add("claim.service_date", error.to_string()))
            .ok()
    };
    let place_of_service = optional(
        &claim.place_of_service,
        "claim.place_of_service",
        PlaceOfService::parse,
        &mut violations,
    );
    let provider_id = optional(
        &claim.provider_id,
        "claim.provider_id",
        |text| parse_id(text, "provider_id"),
        &mut violations,
    )
    .unwrap_or_default();
    let tin = optional(&claim.tin, "claim.tin", Tin::parse, &mut violations);
    let patient_sex = optional(
        &claim.patient_sex,
        "claim.patient_sex",
        Sex::parse,
        &mut violations,
    );
    let patient_age = claim.patient_age.and_then(|age| {
        let parsed = u8::try_from(age).ok().filter(|age| *age <= MAX_PATIENT_AGE);
        if parsed.is_none() {
            violations.add(
                "claim.patient_age",
                format!("patient_age must be 0 to {MAX_PATIENT_AGE} whole years, or unset"),
            );
        }
        parsed
    });
    if claim.diagnoses.len() > MAX_CLAIM_DIAGNOSES {
        violations.add(
            "claim.diagnoses",
            format!(
                "{} diagnoses is more than the limit of {MAX_CLAIM_DIAGNOSES} per claim",
                claim.diagnoses.len()
            ),
        );
    }
    let mut diagnoses = Vec::with_capacity(claim.diagnoses.len().min(MAX_CLAIM_DIAGNOSES));
    for (index, text) in claim.diagnoses.iter().take(MAX_CLAIM_DIAGNOSES).enumerate() {
        match Diagnosis::parse(text) {
            Ok(diagnosis) => diagnoses.push(diagnosis),
            Err(error) => violations.add(format!("claim.diagnoses[{index}]"), error.to_string()),
        }
    }
    if claim.lines.is_empty() {
        violations.add("claim.lines", "a claim has at least one line");
    }
    if claim.lines.len() > MAX_CLAIM_LINES {
        violations.add(
            "claim.lines",
            format!(
                "{} lines is more than the limit of {MAX_CLAIM_LINES} per claim",
                claim.lines.len()
            ),
        );
    }
    let lines: Vec<Option<ClaimLine>> = claim
        .lines
        .iter()
        .take(MAX_CLAIM_LINES)
        .enumerate()
        .map(|(index, parsed)| line(index, parsed, &mut violations))
        .collect();
    let service_date = match service_date {
        Some(date) if violations.is_empty() => date,
        _ => return Err(violations),
    };
    Ok(Claim {
        service_date,
        place_of_service,
        provider_id,
        tin,
        patient_age,
        patient_sex,
        diagnoses,
        // Every line parsed, or a violation returned above.
        lines: lines.into_iter().flatten().collect(),
    })
}
