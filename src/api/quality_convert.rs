//! Conversions from the quality-measure domain to its protobuf messages.

use crate::{
    measures::{
        Claim, Counts, Measure, Outcome, PerformanceKind, PerformanceOption, PerformanceReport,
        QualityCode, Verdict, eligibility, performance_option, rules,
    },
    pb,
    store::{CareGap, EncounterUnit, StoredEncounter},
};

impl From<Outcome> for pb::Outcome {
    fn from(outcome: Outcome) -> pb::Outcome {
        match outcome {
            Outcome::NotInDenominator => pb::Outcome::NotInDenominator,
            Outcome::DenominatorExclusion => pb::Outcome::DenominatorExclusion,
            Outcome::DenominatorException => pb::Outcome::DenominatorException,
            Outcome::PerformanceMet => pb::Outcome::PerformanceMet,
            Outcome::PerformanceNotMet => pb::Outcome::PerformanceNotMet,
            Outcome::DataIncomplete => pb::Outcome::DataIncomplete,
        }
    }
}

/// The outcome of an eligible claim or unit with `marker`.
fn marker_outcome(marker: Option<PerformanceKind>) -> pb::Outcome {
    marker.map_or(Outcome::DataIncomplete, Outcome::from).into()
}

impl From<PerformanceKind> for pb::PerformanceOptionType {
    fn from(kind: PerformanceKind) -> pb::PerformanceOptionType {
        match kind {
            PerformanceKind::Met => pb::PerformanceOptionType::PerformanceMet,
            PerformanceKind::NotMet => pb::PerformanceOptionType::PerformanceNotMet,
            PerformanceKind::Exclusion => pb::PerformanceOptionType::DenominatorExclusion,
            PerformanceKind::Exception => pb::PerformanceOptionType::DenominatorException,
        }
    }
}

impl From<&QualityCode> for pb::QualityCode {
    fn from(quality: &QualityCode) -> pb::QualityCode {
        pb::QualityCode {
            code: quality.code.to_string(),
            modifiers: quality.modifiers.iter().map(ToString::to_string).collect(),
            modifier_exclusions: quality
                .modifier_exclusions
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

impl From<&PerformanceOption> for pb::PerformanceOption {
    fn from(option: &PerformanceOption) -> pb::PerformanceOption {
        pb::PerformanceOption {
            option_type: pb::PerformanceOptionType::from(option.kind).into(),
            quality_codes: option.codes.iter().map(pb::QualityCode::from).collect(),
            description: performance_option(option),
        }
    }
}

impl From<&Measure> for pb::Measure {
    fn from(measure: &Measure) -> pb::Measure {
        pb::Measure {
            id: measure.id.to_string(),
            title: measure.title.clone(),
            reference: measure.reference.clone(),
            description: measure.description.clone(),
            rules: rules(measure),
            strata: measure
                .strata
                .iter()
                .map(|stratum| pb::MeasureStratum {
                    name: stratum.name.as_deref().unwrap_or_default().to_string(),
                    option_groups: stratum
                        .option_groups
                        .iter()
                        .map(|g| g.to_string())
                        .collect(),
                    eligibility: eligibility(stratum),
                    performance_options: stratum
                        .performance
                        .iter()
                        .map(pb::PerformanceOption::from)
                        .collect(),
                })
                .collect(),
            calculation_type: measure.calculation.name().to_string(),
            inverse: measure.inverse,
            overall_algorithm: measure
                .overall
                .map(|algorithm| algorithm.name().to_string())
                .unwrap_or_default(),
        }
    }
}

impl From<&Verdict> for pb::MeasureOutcome {
    fn from(verdict: &Verdict) -> pb::MeasureOutcome {
        pb::MeasureOutcome {
            measure_id: verdict.measure_id.to_string(),
            stratum: verdict.stratum.as_deref().unwrap_or_default().to_string(),
            outcome: pb::Outcome::from(verdict.outcome).into(),
            missing_field: verdict
                .missing_field()
                .map(|field| field.name().to_string())
                .unwrap_or_default(),
            reason: verdict.reason.to_string(),
        }
    }
}

/// A report message with `counts`, or the rates alone.
fn report_message(
    report: &PerformanceReport,
    stratum: Option<&str>,
    counts: Option<&Counts>,
    data_completeness: Option<f64>,
    performance_rate: Option<f64>,
) -> pb::PerformanceReport {
    let counts = counts.copied().unwrap_or_default();
    pb::PerformanceReport {
        measure_id: report.measure.id.to_string(),
        provider_id: report.providers.npi.clone().unwrap_or_default(),
        tin: report.providers.tin.clone().unwrap_or_default(),
        period_start: report.period.start.to_string(),
        period_end: report.period.end.to_string(),
        stratum: stratum.unwrap_or_default().to_string(),
        eligible_population: counts.eligible_population,
        met: counts.met,
        not_met: counts.not_met,
        exclusions: counts.exclusions,
        exceptions: counts.exceptions,
        unreported: counts.unreported(),
        data_completeness,
        performance_rate,
        strata: Vec::new(),
        calculation_type: report.measure.calculation.name().to_string(),
        overall_algorithm: report
            .measure
            .overall
            .map(|algorithm| algorithm.name().to_string())
            .unwrap_or_default(),
    }
}

impl From<&PerformanceReport> for pb::PerformanceReport {
    fn from(report: &PerformanceReport) -> pb::PerformanceReport {
        let overall = &report.overall;
        let mut message = report_message(
            report,
            None,
            overall.counts.as_ref(),
            overall.data_completeness,
            overall.performance_rate,
        );
        if report.strata.len() > 1 {
            message.strata = report
                .strata
                .iter()
                .map(|stratum| {
                    report_message(
                        report,
                        stratum.name.as_deref(),
                        Some(&stratum.counts),
                        stratum.counts.data_completeness(),
                        stratum.counts.performance_rate(),
                    )
                })
                .collect();
        }
        message
    }
}

/// The encounter message of a stored claim: no patient id, ever.
fn encounter_message(encounter_id: &str, claim: &Claim) -> pb::Encounter {
    pb::Encounter {
        encounter_id: encounter_id.to_string(),
        patient_id: String::new(),
        provider_id: claim.provider_id.clone(),
        tin: claim
            .tin
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        service_date: claim.service_date.to_string(),
        place_of_service: claim
            .place_of_service
            .map(|place| place.to_string())
            .unwrap_or_default(),
        patient_age: claim.patient_age.map(i32::from),
        patient_sex: claim
            .patient_sex
            .map(|sex| sex.as_str().to_string())
            .unwrap_or_default(),
        codes: claim
            .codes
            .iter()
            .map(|code| pb::EncounterCode {
                code: code.code.to_string(),
                modifiers: code.modifiers.iter().map(ToString::to_string).collect(),
                units: i32::from(code.units),
            })
            .collect(),
        diagnoses: claim.diagnoses.iter().map(ToString::to_string).collect(),
    }
}

fn unit_encounters(encounters: &[(String, jiff::civil::Date)]) -> Vec<pb::UnitEncounter> {
    encounters
        .iter()
        .map(|(encounter_id, date)| pb::UnitEncounter {
            encounter_id: encounter_id.clone(),
            service_date: date.to_string(),
        })
        .collect()
}

impl From<&EncounterUnit> for pb::EncounterUnit {
    fn from(unit: &EncounterUnit) -> pb::EncounterUnit {
        pb::EncounterUnit {
            measure_id: unit.measure_id.to_string(),
            stratum: unit.stratum_name.as_deref().unwrap_or_default().to_string(),
            encounter_outcome: marker_outcome(unit.claim_marker).into(),
            unit_outcome: marker_outcome(unit.marker).into(),
            weight: i64::from(unit.weight),
            first_date: unit.first.to_string(),
            last_date: unit.last.to_string(),
            encounters: unit_encounters(&unit.encounters),
        }
    }
}

impl From<&StoredEncounter> for pb::StoredEncounter {
    fn from(stored: &StoredEncounter) -> pb::StoredEncounter {
        pb::StoredEncounter {
            encounter: Some(encounter_message(&stored.encounter_id, &stored.claim)),
            revision: stored.revision,
            voided: stored.voided,
            outcomes: stored
                .verdicts
                .iter()
                .map(pb::MeasureOutcome::from)
                .collect(),
            units: stored.units.iter().map(pb::EncounterUnit::from).collect(),
        }
    }
}

/// The message of `gap`, a gap of `measure`: what would close it is the good
/// result, an exception or an exclusion.
pub fn care_gap_message(measure: &Measure, gap: &CareGap) -> pb::CareGap {
    let good = if measure.inverse {
        PerformanceKind::NotMet
    } else {
        PerformanceKind::Met
    };
    let stratum = measure.strata.get(gap.stratum);
    pb::CareGap {
        stratum: stratum
            .and_then(|stratum| stratum.name.as_deref())
            .unwrap_or_default()
            .to_string(),
        kind: match gap.marker {
            None => pb::GapKind::Unreported,
            Some(_) => pb::GapKind::PoorResult,
        }
        .into(),
        tin: gap.tin.clone(),
        provider_id: gap.npi.clone(),
        first_date: gap.first.to_string(),
        last_date: gap.last.to_string(),
        encounters: unit_encounters(&gap.encounters),
        closing_options: stratum
            .into_iter()
            .flat_map(|stratum| &stratum.performance)
            .filter(|option| {
                matches!(
                    option.kind,
                    PerformanceKind::Exception | PerformanceKind::Exclusion
                ) || option.kind == good
            })
            .map(pb::PerformanceOption::from)
            .collect(),
    }
}
