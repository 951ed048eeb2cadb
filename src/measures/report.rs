//! Running totals of outcomes per measure, option group, provider and day, and
//! the performance reports read from them.
//!
//! Totals are updated as encounters are recorded and rebuilt from the store at
//! start-up, so a report sums at most one entry per day its population has and
//! never reads encounters.

use std::sync::Arc;

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

/// One population's tallies, by day. Hashed rather than ordered: counting,
/// done for every encounter recorded, is then one look-up instead of a walk
/// down a tree whose nodes are rarely in cache, while a report, far rarer,
/// reads every day the population has and keeps those in its period; a few
/// thousand at most for a practice's years of data.
type DailyTallies = FastMap<Date, Tally>;

fn sum(days: &DailyTallies, start: Date, end: Date) -> Tally {
    let mut total = Tally::default();
    for (_, tally) in days.iter().filter(|(day, _)| (start..=end).contains(*day)) {
        total.add(tally);
    }
    total
}

/// Adds every tally of `other` to `days`.
fn add_days(days: &mut DailyTallies, other: DailyTallies) {
    for (day, tally) in other {
        days.entry(day).or_default().add(&tally);
    }
}

/// The daily tallies of each option group, by the group's position in the
/// set: its measures in id order, each measure's groups in turn, as
/// [`MeasureSet::outcomes`](super::MeasureSet::outcomes) gives them. So
/// counting an encounter hashes no measure or group name.
type GroupsDailyTallies = Vec<DailyTallies>;

/// The tallies of `position`, made if the groups do not reach that far yet.
fn group_at(groups: &mut GroupsDailyTallies, position: usize) -> &mut DailyTallies {
    if groups.len() <= position {
        groups.resize_with(position + 1, DailyTallies::default);
    }
    &mut groups[position]
}

/// Adds every group's tallies of `other` to `groups`.
fn add_groups(groups: &mut GroupsDailyTallies, other: GroupsDailyTallies) {
    for (position, days) in other.into_iter().enumerate() {
        add_days(group_at(groups, position), days);
    }
}

/// The running totals of every option group of one measure set, for all
/// providers together and for each provider.
#[derive(Debug, Default)]
pub struct PerformanceTotals {
    all_providers: GroupsDailyTallies,
    by_provider: FastMap<Box<str>, GroupsDailyTallies>,
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
        let counted = |outcome: &Outcome| *outcome != Outcome::NotInDenominator;
        if !outcomes.iter().any(counted) {
            return;
        }
        let provider = match self.by_provider.get_mut(provider_id) {
            Some(groups) => groups,
            None => self.by_provider.entry(provider_id.into()).or_default(),
        };
        for (position, &outcome) in outcomes.iter().enumerate() {
            if !counted(&outcome) {
                continue;
            }
            for groups in [&mut self.all_providers, &mut *provider] {
                group_at(groups, position)
                    .entry(service_date)
                    .or_default()
                    .count(outcome, delta);
            }
        }
    }

    /// Adds every count of `other` to these totals.
    pub fn merge(&mut self, other: PerformanceTotals) {
        add_groups(&mut self.all_providers, other.all_providers);
        for (provider, groups) in other.by_provider {
            add_groups(self.by_provider.entry(provider).or_default(), groups);
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
                let groups = match provider_id {
                    None => Some(&self.all_providers),
                    Some(provider) => self.by_provider.get(provider),
                };
                let days = groups
                    .zip(first_group)
                    .and_then(|(groups, first)| groups.get(first + index));
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
