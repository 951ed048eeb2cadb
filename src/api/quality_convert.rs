//! Conversions from the quality-measure domain to its protobuf messages.

use crate::{
    measures::{
        GroupReport, Measure, Outcome, PerformanceKind, PerformanceReport, QualityCode, Verdict,
        eligibility, performance_option, rules,
    },
    pb,
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
            option_groups: measure
                .groups
                .iter()
                .map(|group| pb::MeasureOptionGroup {
                    option_group: group.name.to_string(),
                    eligibility: eligibility(group),
                    qualifying_codes: group.qualifying.iter().map(pb::QualityCode::from).collect(),
                    performance_options: group
                        .performance
                        .iter()
                        .map(|option| pb::PerformanceOption {
                            option_type: pb::PerformanceOptionType::from(option.kind).into(),
                            quality_codes: option.codes.iter().map(pb::QualityCode::from).collect(),
                            description: performance_option(option),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

impl From<&Verdict> for pb::MeasureOutcome {
    fn from(verdict: &Verdict) -> pb::MeasureOutcome {
        pb::MeasureOutcome {
            measure_id: verdict.measure_id.to_string(),
            option_group: verdict.option_group.to_string(),
            outcome: pb::Outcome::from(verdict.outcome).into(),
            missing_field: verdict
                .missing_field()
                .map(|field| field.name().to_string())
                .unwrap_or_default(),
            reason: verdict.reason.to_string(),
        }
    }
}

fn group_message(report: &PerformanceReport, group: &GroupReport) -> pb::PerformanceReport {
    let tally = &group.tally;
    pb::PerformanceReport {
        measure_id: report.measure_id.to_string(),
        provider_id: report.provider_id.clone().unwrap_or_default(),
        period_start: report.period_start.to_string(),
        period_end: report.period_end.to_string(),
        option_group: group
            .option_group
            .as_deref()
            .map(str::to_string)
            .unwrap_or_default(),
        eligible: tally.eligible(),
        met: tally.met,
        not_met: tally.not_met,
        exceptions: tally.exceptions,
        exclusions: tally.exclusions,
        incomplete: tally.incomplete,
        data_completeness: tally.data_completeness(),
        performance_rate: tally.performance_rate(),
        option_groups: Vec::new(),
    }
}

impl From<&PerformanceReport> for pb::PerformanceReport {
    fn from(report: &PerformanceReport) -> pb::PerformanceReport {
        let mut message = group_message(report, &report.total);
        message.option_groups = report
            .groups
            .iter()
            .map(|group| group_message(report, group))
            .collect();
        message
    }
}
