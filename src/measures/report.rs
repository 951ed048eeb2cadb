//! Running totals of outcomes per measure, option group, provider and day, and
//! the performance reports read from them.
//!
//! Totals are updated as encounters are recorded and rebuilt from the store at
//! start-up, so a report sums at most one entry per day of its period and never
//! reads encounters.

use std::{collections::BTreeMap, sync::Arc};

use jiff::civil::Date;

use super::{FastMap, definition::Measure, engine::Outcome};

/// Counts of one population. Signed so that a replaced encounter can be taken
/// back out; they never go below zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Performance met.
    pub met: i64,
    /// Performance not met.
    pub not_met: i64,
    /// Denominator exceptions.
    pub exceptions: i64,
    /// Denominator exclusions.
    pub exclusions: i64,
    /// Eligible with no quality data.
    pub incomplete: i64,
}

impl Tally {
    fn count(&mut self, outcome: Outcome, delta: i64) {
        let slot = match outcome {
            Outcome::NotInDenominator => return,
            Outcome::DenominatorExclusion => &mut self.exclusions,
            Outcome::DenominatorException => &mut self.exceptions,
            Outcome::PerformanceMet => &mut self.met,
            Outcome::PerformanceNotMet => &mut self.not_met,
            Outcome::DataIncomplete => &mut self.incomplete,
        };
        *slot += delta;
        debug_assert!(*slot >= 0, "a tally went below zero");
    }

    fn add(&mut self, other: &Tally) {
        self.met += other.met;
        self.not_met += other.not_met;
        self.exceptions += other.exceptions;
        self.exclusions += other.exclusions;
        self.incomplete += other.incomplete;
    }

    /// Encounters in the denominator, exclusions removed.
    pub fn eligible(&self) -> i64 {
        self.met + self.not_met + self.exceptions + self.incomplete
    }

    /// (met + exceptions + not met) / eligible; `None` when nothing is eligible.
    ///
    /// ```
    /// use cptd::measures::Tally;
    ///
    /// let tally = Tally { met: 3, not_met: 1, incomplete: 4, ..Tally::default() };
    /// assert_eq!(tally.data_completeness(), Some(0.5));
    /// assert_eq!(tally.performance_rate(), Some(0.75));
    /// assert_eq!(Tally::default().performance_rate(), None);
    /// ```
    pub fn data_completeness(&self) -> Option<f64> {
        ratio(self.met + self.exceptions + self.not_met, self.eligible())
    }

    /// met / (met + not met); `None` when both are zero.
    pub fn performance_rate(&self) -> Option<f64> {
        ratio(self.met, self.met + self.not_met)
    }
}

fn ratio(numerator: i64, divisor: i64) -> Option<f64> {
    // Counts stay far below 2^53, so the conversions are exact.
    (divisor > 0).then(|| numerator as f64 / divisor as f64)
}

type DailyTallies = BTreeMap<Date, Tally>;

#[derive(Debug, Default)]
struct GroupTotals {
    all_providers: DailyTallies,
    by_provider: FastMap<Box<str>, DailyTallies>,
}

fn sum(days: &DailyTallies, start: Date, end: Date) -> Tally {
    let mut total = Tally::default();
    for tally in days.range(start..=end).map(|(_, tally)| tally) {
        total.add(tally);
    }
    total
}

/// The running totals of every option group of one measure set, by the
/// group's position in the set: its measures in id order, each measure's
/// groups in turn, as [`MeasureSet::outcomes`](super::MeasureSet::outcomes)
/// gives them. So counting an encounter hashes no measure or group name.
#[derive(Debug, Default)]
pub struct PerformanceTotals {
    groups: Vec<GroupTotals>,
}

/// One population's counts and rates over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    /// The option group, or `None` for the sum over a measure's groups.
    pub option_group: Option<Arc<str>>,
    /// The counts.
    pub tally: Tally,
}

/// A measure's performance over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformanceReport {
    /// The measure.
    pub measure_id: Arc<str>,
    /// The provider asked about, or all.
    pub provider_id: Option<String>,
    /// First day counted.
    pub period_start: Date,
    /// Last day counted.
    pub period_end: Date,
    /// The whole measure: its only group, or the sum over its groups.
    pub total: GroupReport,
    /// One report per group when there are several; empty otherwise.
    pub groups: Vec<GroupReport>,
}

impl PerformanceTotals {
    /// Adds (`delta` 1) or takes back (`delta` -1) one encounter's outcomes,
    /// given by group position.
    pub fn apply(
        &mut self,
        provider_id: &str,
        service_date: Date,
        outcomes: &[Outcome],
        delta: i64,
    ) {
        for (position, &outcome) in outcomes.iter().enumerate() {
            if outcome == Outcome::NotInDenominator {
                continue;
            }
            if self.groups.len() <= position {
                self.groups.resize_with(position + 1, GroupTotals::default);
            }
            let totals = &mut self.groups[position];
            totals
                .all_providers
                .entry(service_date)
                .or_default()
                .count(outcome, delta);
            let provider = match totals.by_provider.get_mut(provider_id) {
                Some(days) => days,
                None => totals.by_provider.entry(provider_id.into()).or_default(),
            };
            provider
                .entry(service_date)
                .or_default()
                .count(outcome, delta);
        }
    }

    /// Adds every count of `other` to these totals.
    pub fn merge(&mut self, other: PerformanceTotals) {
        if self.groups.len() < other.groups.len() {
            self.groups
                .resize_with(other.groups.len(), GroupTotals::default);
        }
        for (mine, group) in self.groups.iter_mut().zip(other.groups) {
            for (day, tally) in group.all_providers {
                mine.all_providers.entry(day).or_default().add(&tally);
            }
            for (provider, days) in group.by_provider {
                let provider_days = mine.by_provider.entry(provider).or_default();
                for (day, tally) in days {
                    provider_days.entry(day).or_default().add(&tally);
                }
            }
        }
    }

    /// The report of `measure` for `provider_id` (or all) over `start..=end`.
    /// `first_group` is the position of the measure's first group in the set
    /// these totals count; `None` (a measure outside the set) reports nothing
    /// counted.
    pub fn report(
        &self,
        measure: &Measure,
        first_group: Option<usize>,
        provider_id: Option<&str>,
        start: Date,
        end: Date,
    ) -> PerformanceReport {
        let groups: Vec<GroupReport> = measure
            .groups
            .iter()
            .enumerate()
            .map(|(index, group)| {
                let totals = first_group.and_then(|first| self.groups.get(first + index));
                let days = totals.and_then(|totals| match provider_id {
                    None => Some(&totals.all_providers),
                    Some(provider) => totals.by_provider.get(provider),
                });
                GroupReport {
                    option_group: Some(group.name.clone()),
                    tally: days.map(|days| sum(days, start, end)).unwrap_or_default(),
                }
            })
            .collect();
        let (total, groups) = if groups.len() == 1 {
            (groups[0].clone(), Vec::new())
        } else {
            let mut tally = Tally::default();
            for group in &groups {
                tally.add(&group.tally);
            }
            (
                GroupReport {
                    option_group: None,
                    tally,
                },
                groups,
            )
        };
        PerformanceReport {
            measure_id: measure.id.clone(),
            provider_id: provider_id.map(str::to_string),
            period_start: start,
            period_end: end,
            total,
            groups,
        }
    }
}
