//! CMS's counts of a measure's units, and the rates computed from them as the
//! QPP Submissions API computes them.

use std::sync::Arc;

use jiff::civil::Date;

use super::definition::{Measure, OverallAlgorithm, PerformanceKind};

/// The counts of one population of units. Signed so that a change can be
/// applied as a difference; a stored count never goes below zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every unit, exclusions and unreported ones included.
    pub eligible_population: i64,
    /// Units whose marker is performance met.
    pub met: i64,
    /// Units whose marker is performance not met.
    pub not_met: i64,
    /// Units whose marker is a denominator exclusion.
    pub exclusions: i64,
    /// Units whose marker is a denominator exception.
    pub exceptions: i64,
}

impl Counts {
    /// Counts `weight` units (negative: takes them back) with `marker`.
    pub fn count(&mut self, marker: Option<PerformanceKind>, weight: i64) {
        self.eligible_population += weight;
        let slot = match marker {
            None => return,
            Some(PerformanceKind::Met) => &mut self.met,
            Some(PerformanceKind::NotMet) => &mut self.not_met,
            Some(PerformanceKind::Exclusion) => &mut self.exclusions,
            Some(PerformanceKind::Exception) => &mut self.exceptions,
        };
        *slot += weight;
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Counts) {
        self.eligible_population += other.eligible_population;
        self.met += other.met;
        self.not_met += other.not_met;
        self.exclusions += other.exclusions;
        self.exceptions += other.exceptions;
    }

    /// Units eligible but without a marker: they lower data completeness, not
    /// the performance rate.
    pub fn unreported(&self) -> i64 {
        self.eligible_population - self.reported()
    }

    fn reported(&self) -> i64 {
        self.met + self.not_met + self.exclusions + self.exceptions
    }

    /// (met + not met + exclusions + exceptions) / eligible population;
    /// `None` when the population is empty.
    ///
    /// ```
    /// use cptd::measures::Counts;
    ///
    /// let counts = Counts { eligible_population: 8, met: 3, not_met: 1, exclusions: 2, ..Counts::default() };
    /// assert_eq!(counts.data_completeness(), Some(0.75));
    /// assert_eq!(counts.performance_rate(), Some(0.75));
    /// assert_eq!(Counts::default().performance_rate(), None);
    /// ```
    pub fn data_completeness(&self) -> Option<f64> {
        ratio(self.reported(), self.eligible_population)
    }

    /// met / (met + not met); `None` when both are zero. Exclusions and
    /// exceptions leave both sides.
    pub fn performance_rate(&self) -> Option<f64> {
        ratio(self.met, self.met + self.not_met)
    }
}

fn ratio(numerator: i64, divisor: i64) -> Option<f64> {
    // Counts stay far below 2^53, so the conversions are exact.
    (divisor > 0).then(|| numerator as f64 / divisor as f64)
}

/// Whose units a report counts: one provider (TIN and NPI), every NPI of a
/// TIN, every TIN of an NPI, or everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProviderFilter {
    /// The billing TIN, or any.
    pub tin: Option<String>,
    /// The rendering NPI, or any.
    pub npi: Option<String>,
}

/// The days a report covers, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    /// The first day.
    pub start: Date,
    /// The last day.
    pub end: Date,
}

impl Period {
    /// The calendar year `year`: a performance year.
    pub fn year(year: i16) -> Period {
        Period {
            start: Date::new(year, 1, 1).unwrap_or(Date::MIN),
            end: Date::new(year, 12, 31).unwrap_or(Date::MAX),
        }
    }
}

/// One stratum's counts.
#[derive(Debug, Clone, PartialEq)]
pub struct StratumReport {
    /// The stratum's name, for a multi-strata measure.
    pub name: Option<Arc<str>>,
    /// Its counts.
    pub counts: Counts,
}

/// A measure's figure as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Overall {
    /// The counts, when the overall algorithm has counts of its own (not for
    /// `split`, whose two rates come from two strata).
    pub counts: Option<Counts>,
    /// Data completeness.
    pub data_completeness: Option<f64>,
    /// Performance rate.
    pub performance_rate: Option<f64>,
}

/// A measure's performance over a period, for some providers.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceReport {
    /// The measure.
    pub measure: Arc<Measure>,
    /// Whose units.
    pub providers: ProviderFilter,
    /// Which days.
    pub period: Period,
    /// Each stratum, in the measure's order.
    pub strata: Vec<StratumReport>,
    /// The figure as a whole, by the measure's overall algorithm.
    pub overall: Overall,
}

impl PerformanceReport {
    /// The report of `measure` whose strata counted `counts`, in order.
    pub fn new(
        measure: Arc<Measure>,
        providers: ProviderFilter,
        period: Period,
        counts: Vec<Counts>,
    ) -> PerformanceReport {
        let strata: Vec<StratumReport> = measure
            .strata
            .iter()
            .zip(counts)
            .map(|(stratum, counts)| StratumReport {
                name: stratum.name.clone(),
                counts,
            })
            .collect();
        let overall = overall(measure.overall, &strata);
        PerformanceReport {
            measure,
            providers,
            period,
            strata,
            overall,
        }
    }
}

/// The whole figure of `strata` by `algorithm` (none for one stratum).
fn overall(algorithm: Option<OverallAlgorithm>, strata: &[StratumReport]) -> Overall {
    let of = |counts: Counts| Overall {
        counts: Some(counts),
        data_completeness: counts.data_completeness(),
        performance_rate: counts.performance_rate(),
    };
    let stratum = |index: usize| strata.get(index).map(|s| s.counts).unwrap_or_default();
    let mut sum = Counts::default();
    for stratum in strata {
        sum.add(&stratum.counts);
    }
    match algorithm {
        None => of(stratum(0)),
        Some(OverallAlgorithm::WeightedAverage | OverallAlgorithm::SumNumerators) => of(sum),
        Some(OverallAlgorithm::SimpleAverage) => {
            let rates: Vec<f64> = strata
                .iter()
                .filter_map(|stratum| stratum.counts.performance_rate())
                .collect();
            Overall {
                performance_rate: (!rates.is_empty())
                    .then(|| rates.iter().sum::<f64>() / rates.len() as f64),
                ..of(sum)
            }
        }
        Some(OverallAlgorithm::OverallStratumOnly) => {
            let named = strata
                .iter()
                .position(|stratum| stratum.name.as_deref() == Some("overall"));
            of(stratum(named.unwrap_or(strata.len().saturating_sub(1))))
        }
        Some(OverallAlgorithm::Split) => Overall {
            counts: None,
            data_completeness: stratum(0).data_completeness(),
            performance_rate: stratum(1).performance_rate(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stratum(name: &str, met: i64, not_met: i64, eligible: i64) -> StratumReport {
        StratumReport {
            name: Some(name.into()),
            counts: Counts {
                eligible_population: eligible,
                met,
                not_met,
                ..Counts::default()
            },
        }
    }

    #[test]
    fn each_overall_algorithm_combines_the_strata_as_cms_does() {
        let strata = [stratum("a", 1, 1, 4), stratum("b", 3, 1, 4)];
        let weighted = overall(Some(OverallAlgorithm::WeightedAverage), &strata);
        assert_eq!(weighted.performance_rate, Some(4.0 / 6.0));
        assert_eq!(weighted.data_completeness, Some(6.0 / 8.0));
        let simple = overall(Some(OverallAlgorithm::SimpleAverage), &strata);
        assert_eq!(simple.performance_rate, Some((0.5 + 0.75) / 2.0));
        let split = overall(Some(OverallAlgorithm::Split), &strata);
        assert_eq!(split.counts, None);
        assert_eq!(split.data_completeness, Some(0.5));
        assert_eq!(split.performance_rate, Some(0.75));
        let only = overall(
            Some(OverallAlgorithm::OverallStratumOnly),
            &[stratum("x", 1, 0, 2), stratum("overall", 0, 2, 2)],
        );
        assert_eq!(only.performance_rate, Some(0.0));
    }

    #[test]
    fn a_rate_over_nothing_is_absent() {
        let empty = overall(None, &[stratum("a", 0, 0, 0)]);
        assert_eq!(
            (empty.data_completeness, empty.performance_rate),
            (None, None)
        );
    }
}
