//! A measure's rules in plain terms, for people reading `GetMeasure`.

use super::{
    definition::{
        CalculationType, EligibilityOption, Measure, PerformanceKind, PerformanceOption, Stratum,
    },
    engine::describe_quality_code,
};
use crate::codes::CodeValue;

/// How many items of a long list a sentence shows before "and N more".
const SHOWN_ITEMS: usize = 12;

fn some_of<T: ToString>(items: impl ExactSizeIterator<Item = T>) -> String {
    let total = items.len();
    let shown: Vec<String> = items
        .take(SHOWN_ITEMS)
        .map(|item| item.to_string())
        .collect();
    let mut text = shown.join(", ");
    if total > SHOWN_ITEMS {
        text.push_str(&format!(" and {} more", total - SHOWN_ITEMS));
    }
    text
}

/// Codes in order, runs of consecutive numeric codes written as ranges
/// (`99202-99205`), as people read code lists.
fn code_ranges<'a>(codes: impl Iterator<Item = &'a CodeValue>) -> Vec<String> {
    let mut ranges: Vec<(CodeValue, CodeValue)> = Vec::new();
    let number = |code: &CodeValue| code.as_str().parse::<u32>().ok();
    for code in codes {
        match ranges.last_mut() {
            Some((_, last))
                if number(last)
                    .zip(number(code))
                    .is_some_and(|(a, b)| b == a + 1) =>
            {
                *last = *code;
            }
            _ => ranges.push((*code, *code)),
        }
    }
    ranges
        .into_iter()
        .map(|(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect()
}

fn age_text(option: &EligibilityOption) -> Option<String> {
    if !option.needs_age() {
        return None;
    }
    Some(match (option.min_age, option.max_age) {
        (Some(min), Some(max)) => format!("patients aged {min} to {max}"),
        (Some(min), None) => format!("patients aged {min} or older"),
        (None, Some(max)) => format!("patients aged {max} or younger"),
        (None, None) => return None,
    })
}

/// One eligibility option in plain terms.
pub fn eligibility_option(option: &EligibilityOption) -> String {
    let mut parts = Vec::new();
    if let Some(age) = age_text(option) {
        parts.push(age);
    }
    if let Some(sex) = option.sex {
        parts.push(format!("sex {}", sex.as_str()));
    }
    let visit = {
        let mut text = format!(
            "one of these codes: {}",
            some_of(code_ranges(option.procedures.keys()).into_iter())
        );
        let mut modifiers: Vec<String> = option
            .procedures
            .values()
            .flat_map(|rule| rule.modifier_exclusions.iter().map(ToString::to_string))
            .collect();
        modifiers.sort();
        modifiers.dedup();
        if !modifiers.is_empty() {
            text.push_str(&format!(", not with modifier {}", modifiers.join(" or ")));
        }
        let mut places: Vec<String> = option
            .procedures
            .values()
            .flat_map(|rule| rule.place_exclusions.iter().map(ToString::to_string))
            .collect();
        places.sort();
        places.dedup();
        if !places.is_empty() {
            text.push_str(&format!(
                ", not at place of service {}",
                places.join(" or ")
            ));
        }
        text
    };
    parts.push(visit);
    if option.needs_diagnosis() {
        let mut choices = Vec::new();
        if !option.diagnoses.is_empty() {
            choices.push(format!(
                "one of {} listed codes ({})",
                option.diagnoses.len(),
                some_of(option.diagnoses.iter())
            ));
        }
        if !option.diagnosis_prefixes.is_empty() {
            choices.push(format!(
                "any code beginning {}",
                option.diagnosis_prefixes.join(" or ")
            ));
        }
        parts.push(format!("a diagnosis: {}", choices.join(", or ")));
    }
    if !option.diagnosis_exclusions.is_empty() {
        parts.push(format!(
            "none of {} excluded diagnoses ({})",
            option.diagnosis_exclusions.len(),
            some_of(option.diagnosis_exclusions.iter())
        ));
    }
    if !option.required.is_empty() {
        let codes: Vec<String> = option.required.iter().map(describe_quality_code).collect();
        parts.push(format!("also reporting {}", codes.join(" and ")));
    }
    parts.join("; ")
}

/// Who a stratum admits, in plain terms.
pub fn eligibility(stratum: &Stratum) -> String {
    let options: Vec<String> = stratum.eligibility.iter().map(eligibility_option).collect();
    format!("Claims with {}.", options.join("; or claims with "))
}

/// How claims become the units counted, in plain terms.
pub fn units(calculation: CalculationType) -> &'static str {
    match calculation {
        CalculationType::PatientProcess => {
            "Counted once per patient and performance year, per provider (TIN and NPI): the \
             patient keeps the most advantageous result of all their eligible claims of the year."
        }
        CalculationType::PatientIntermediate => {
            "Counted once per patient and performance year, per provider (TIN and NPI): the \
             latest eligible claim that reports a result decides, even when it is worse than an \
             earlier one."
        }
        CalculationType::Procedure => {
            "Counted once per patient and date of service, per provider (TIN and NPI): several \
             claims or procedures on one date are one, keeping the most advantageous result."
        }
        CalculationType::Visit => {
            "Counted per patient and date of service, per provider (TIN and NPI), once for each \
             eligible procedure line, with the most advantageous result of that date."
        }
        CalculationType::IntersectingDiagnosis => {
            "Counted once per episode, per provider (TIN and NPI): a patient's eligible claims of \
             the year that share a diagnosis the measure names, directly or through other claims, \
             are one episode, keeping its most advantageous result."
        }
    }
}

fn kind_text(kind: PerformanceKind) -> &'static str {
    match kind {
        PerformanceKind::Met => "Performance met",
        PerformanceKind::NotMet => "Performance not met",
        PerformanceKind::Exception => "Denominator exception",
        PerformanceKind::Exclusion => "Denominator exclusion",
    }
}

/// One performance option in plain terms, e.g. "0521F with 8P".
pub fn performance_option(option: &PerformanceOption) -> String {
    let codes: Vec<String> = option.codes.iter().map(describe_quality_code).collect();
    codes.join(" and ")
}

/// The whole measure as sentences: eligibility and each kind of option per
/// stratum, then how results are ranked and how units are counted.
pub fn rules(measure: &Measure) -> Vec<String> {
    let mut lines = Vec::new();
    for stratum in &measure.strata {
        let prefix = match &stratum.name {
            Some(name) => format!("Stratum {name}: "),
            None => String::new(),
        };
        lines.push(format!("{prefix}Eligible: {}", eligibility(stratum)));
        for kind in [
            PerformanceKind::Met,
            PerformanceKind::Exclusion,
            PerformanceKind::Exception,
            PerformanceKind::NotMet,
        ] {
            let options: Vec<String> = stratum
                .performance
                .iter()
                .filter(|option| option.kind == kind)
                .map(performance_option)
                .collect();
            if !options.is_empty() {
                lines.push(format!(
                    "{prefix}{}: {}.",
                    kind_text(kind),
                    options.join("; or ")
                ));
            }
        }
    }
    lines.push(if measure.inverse {
        "A lower rate is better (an inverse measure): when several results apply, not met wins \
         over exception, exception over exclusion, and exclusion over met."
            .to_string()
    } else {
        "When several results apply, met wins over exclusion, exclusion over exception, and \
         exception over not met."
            .to_string()
    });
    lines.push(units(measure.calculation).to_string());
    lines.push(
        "An eligible unit without any result is unreported: it lowers data completeness, not the \
         performance rate."
            .to_string(),
    );
    lines
}
