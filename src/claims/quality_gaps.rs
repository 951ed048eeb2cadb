//! Quality gaps: measures whose denominator a claim enters but for which it
//! reports no quality code, with the options that would report them.

use std::sync::Arc;

use super::claim::Claim;
use crate::measures::{
    Measure, MeasureSet, Outcome, PerformanceKind, PerformanceOption, describe_quality_code,
};

/// One measure (or stratum) the claim leaves unreported.
#[derive(Debug, Clone)]
pub struct QualityGap {
    /// The measure.
    pub measure: Arc<Measure>,
    /// The stratum's position in the measure.
    pub stratum: usize,
}

impl QualityGap {
    /// Every performance option of the stratum: met, not met, exception and
    /// exclusion; any one of them reports the measure.
    pub fn reporting_options(&self) -> &[PerformanceOption] {
        &self.measure.strata[self.stratum].performance
    }

    /// What to add, in plain words.
    pub fn message(&self) -> String {
        let list = |kind: PerformanceKind| -> Vec<String> {
            self.reporting_options()
                .iter()
                .filter(|option| option.kind == kind)
                .map(|option| {
                    let codes: Vec<String> =
                        option.codes.iter().map(describe_quality_code).collect();
                    codes.join(" and ")
                })
                .collect()
        };
        let mut parts = Vec::new();
        for (kind, label) in [
            (PerformanceKind::Met, "met"),
            (PerformanceKind::NotMet, "not met"),
            (PerformanceKind::Exception, "an exception"),
            (PerformanceKind::Exclusion, "an exclusion"),
        ] {
            let options = list(kind);
            if !options.is_empty() {
                parts.push(format!("{label}: {}", options.join("; or ")));
            }
        }
        format!(
            "the claim enters the denominator of {} ({}) but reports none of its quality codes; \
             add the one that fits before submission ({})",
            self.measure.id,
            self.measure.title,
            parts.join(" | ")
        )
    }
}

/// The gaps of `claim` under `measures`, in measure id order.
pub fn quality_gaps(claim: &Claim, measures: &MeasureSet) -> Vec<QualityGap> {
    measures
        .judge(&claim.as_measured())
        .into_iter()
        .filter(|judged| judged.judgement.outcome == Outcome::DataIncomplete)
        .map(|judged| QualityGap {
            measure: judged.measure,
            stratum: judged.stratum,
        })
        .collect()
}
