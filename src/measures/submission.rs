//! The measurement set a provider submits to CMS: the QPP Submissions API's
//! JSON, as CMS's claims engine writes it for one TIN and NPI and one
//! performance year.

use serde_json::{Value, json};

use super::{report::Counts, report::PerformanceReport, values::Tin};

/// One stratum's or one measure's counts as the API names them.
fn counts(counts: &Counts) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("performanceMet".into(), counts.met.into());
    fields.insert("performanceNotMet".into(), counts.not_met.into());
    fields.insert(
        "eligiblePopulationExclusion".into(),
        counts.exclusions.into(),
    );
    fields.insert(
        "eligiblePopulationException".into(),
        counts.exceptions.into(),
    );
    fields.insert(
        "eligiblePopulation".into(),
        counts.eligible_population.into(),
    );
    fields
}

/// The measurement set of `tin` and `npi` for `year` from `reports` (one a
/// measure, each over that year for that provider). A measure goes in when
/// it can be submitted (not one of cptd's own) and any of its strata has
/// eligible units.
pub fn measurement_set(tin: &Tin, npi: &str, year: i16, reports: &[PerformanceReport]) -> Value {
    let measurements: Vec<Value> = reports
        .iter()
        .filter(|report| report.measure.submittable)
        .filter(|report| {
            report
                .strata
                .iter()
                .any(|stratum| stratum.counts.eligible_population > 0)
        })
        .map(|report| {
            let mut value = serde_json::Map::new();
            value.insert("isEndToEndReported".into(), false.into());
            if report.strata.len() == 1 {
                value.extend(counts(&report.strata[0].counts));
            } else {
                let strata: Vec<Value> = report
                    .strata
                    .iter()
                    .map(|stratum| {
                        let mut fields = counts(&stratum.counts);
                        fields.insert(
                            "stratum".into(),
                            stratum.name.as_deref().unwrap_or_default().into(),
                        );
                        Value::Object(fields)
                    })
                    .collect();
                value.insert("strata".into(), strata.into());
            }
            json!({ "measureId": &*report.measure.id, "value": value })
        })
        .collect();
    json!({
        "submission": {
            "programName": "mips",
            "entityType": "individual",
            "taxpayerIdentificationNumber": tin.as_str(),
            "nationalProviderIdentifier": npi,
            "performanceYear": year,
        },
        "category": "quality",
        "submissionMethod": "claims",
        "performanceStart": format!("{year:04}-01-01"),
        "performanceEnd": format!("{year:04}-12-31"),
        "measurements": measurements,
    })
}
