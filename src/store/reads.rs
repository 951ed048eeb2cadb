//! What the store answers from its units and totals: reports, care gaps and
//! stored encounters.
//!
//! A report counts the units whose claims all lie in its period. For a period
//! made of whole performance years (and, for measures whose units live within
//! a date, any period) that is the sum of the totals of its buckets, a few
//! rows per provider; a year the period covers only in part is counted from
//! its units, by their first and last dates.

use std::sync::Arc;

use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    StoreError,
    claim_json::read_claim,
    counting::{stored_date, stored_marker, unit},
};
use crate::measures::{
    Claim, Counts, Measure, MeasureSet, PerformanceKind, PerformanceReport, Period, ProviderFilter,
    Verdict,
};

/// The provider condition of a query of `groups` whose TIN and NPI are bound
/// as `?3` and `?4`, either `NULL` for any.
const FOR_PROVIDERS: &str = "(?3 IS NULL OR tin = ?3) AND (?4 IS NULL OR npi = ?4)";

/// The years whose buckets lie whole inside `period`, first and last.
fn whole_years(period: Period) -> Option<(i16, i16)> {
    let first = if period.start.day_of_year() == 1 {
        period.start.year()
    } else {
        period.start.year() + 1
    };
    let last = if period.end.day_of_year() == period.end.days_in_year() {
        period.end.year()
    } else {
        period.end.year() - 1
    };
    (first <= last).then_some((first, last))
}

/// The report of `measure` for `providers` over `period`.
pub fn report(
    connection: &Connection,
    measure: Arc<Measure>,
    providers: ProviderFilter,
    period: Period,
) -> Result<PerformanceReport, StoreError> {
    let counts = (0..measure.strata.len())
        .map(|stratum| stratum_counts(connection, &measure, stratum, &providers, period))
        .collect::<Result<_, _>>()?;
    Ok(PerformanceReport::new(measure, providers, period, counts))
}

/// Where a report's counts come from: sums of totals over a range of
/// buckets, or, for a year the period covers only in part, its units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReportPart {
    /// The totals of the buckets from the first to the last, as text.
    Totals(String, String),
    /// The units of the year whose claims all lie in the period.
    PartialYear(i16),
}

/// The parts a report of `measure` over `period` adds up.
pub(super) fn report_parts(measure: &Measure, period: Period) -> Vec<ReportPart> {
    if measure.calculation.unit_is_one_date() {
        return vec![ReportPart::Totals(
            period.start.to_string(),
            period.end.to_string(),
        )];
    }
    let whole = whole_years(period);
    let mut parts: Vec<ReportPart> = whole
        .map(|(first, last)| ReportPart::Totals(format!("{first:04}"), format!("{last:04}")))
        .into_iter()
        .collect();
    for year in period.start.year()..=period.end.year() {
        let inside = whole.is_some_and(|(first, last)| (first..=last).contains(&year));
        if !inside {
            parts.push(ReportPart::PartialYear(year));
        }
    }
    parts
}

fn stratum_counts(
    connection: &Connection,
    measure: &Measure,
    stratum: usize,
    providers: &ProviderFilter,
    period: Period,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    for part in report_parts(measure, period) {
        match part {
            ReportPart::Totals(first, last) => {
                counts.add(&totals_counts(
                    connection, measure, stratum, providers, &first, &last,
                )?);
            }
            ReportPart::PartialYear(year) => counts.add(&partial_year_counts(
                connection, measure, stratum, providers, period, year,
            )?),
        }
    }
    Ok(counts)
}

/// The sum of the totals of the buckets from `first` to `last`.
fn totals_counts(
    connection: &Connection,
    measure: &Measure,
    stratum: usize,
    providers: &ProviderFilter,
    first: &str,
    last: &str,
) -> Result<Counts, StoreError> {
    let counts = connection
        .prepare_cached(&format!(
            "SELECT coalesce(sum(eligible), 0), coalesce(sum(met), 0),
                    coalesce(sum(not_met), 0), coalesce(sum(exclusions), 0),
                    coalesce(sum(exceptions), 0)
             FROM totals
             WHERE measure_id = ?1 AND stratum = ?2 AND {FOR_PROVIDERS}
               AND bucket BETWEEN ?5 AND ?6"
        ))?
        .query_row(
            params![
                &*measure.id,
                stratum as i64,
                providers.tin,
                providers.npi,
                first,
                last
            ],
            |row| {
                Ok(Counts {
                    eligible_population: row.get(0)?,
                    met: row.get(1)?,
                    not_met: row.get(2)?,
                    exclusions: row.get(3)?,
                    exceptions: row.get(4)?,
                })
            },
        )?;
    Ok(counts)
}

/// The counts of the units of `year` whose claims all lie in `period`.
fn partial_year_counts(
    connection: &Connection,
    measure: &Measure,
    stratum: usize,
    providers: &ProviderFilter,
    period: Period,
    year: i16,
) -> Result<Counts, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT marker, sum(weight) FROM groups JOIN units USING (group_id)
         WHERE measure_id = ?1 AND stratum = ?2 AND {FOR_PROVIDERS} AND bucket = ?5
           AND first_date >= ?6 AND last_date <= ?7
         GROUP BY marker"
    ))?;
    let mut rows = statement.query(params![
        &*measure.id,
        stratum as i64,
        providers.tin,
        providers.npi,
        format!("{year:04}"),
        period.start.to_string(),
        period.end.to_string()
    ])?;
    let mut counts = Counts::default();
    while let Some(row) = rows.next()? {
        counts.count(stored_marker(row.get(0)?)?, row.get(1)?);
    }
    Ok(counts)
}

/// One unit that is a care gap.
#[derive(Debug, Clone, PartialEq)]
pub struct CareGap {
    /// The stratum's position in the measure.
    pub stratum: usize,
    /// The provider's billing TIN.
    pub tin: String,
    /// The provider's NPI.
    pub npi: String,
    /// Its marker: `None` unreported, else the one that is a gap.
    pub marker: Option<PerformanceKind>,
    /// Its first and last dates of service.
    pub first: Date,
    /// See `first`.
    pub last: Date,
    /// Its claims: encounter id and date of service, in date order.
    pub encounters: Vec<(String, Date)>,
}

/// One page of care gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct CareGapsPage {
    /// The gaps, in a stable order.
    pub gaps: Vec<CareGap>,
    /// Whether more follow.
    pub more: bool,
    /// Every gap, over all pages.
    pub total: i64,
}

/// The marker that makes a reported unit a gap: not met, or met for an
/// inverse measure (where performance met is the poor result).
pub(super) fn gap_marker(measure: &Measure) -> PerformanceKind {
    if measure.inverse {
        PerformanceKind::Met
    } else {
        PerformanceKind::NotMet
    }
}

/// A page of the care gaps of `measure`: `limit` from the `offset`-th. Pages
/// go by position rather than by the last unit's key, so that no token a
/// caller holds carries a patient's hash; a gap closed between two pages may
/// move the rest by one.
pub fn care_gaps(
    connection: &Connection,
    measure: &Measure,
    providers: &ProviderFilter,
    period: Period,
    offset: usize,
    limit: usize,
) -> Result<CareGapsPage, StoreError> {
    let gap = gap_marker(measure).number();
    let condition = format!(
        "measure_id = ?1 AND (marker IS NULL OR marker = ?2) AND {FOR_PROVIDERS}
         AND first_date >= ?5 AND last_date <= ?6"
    );
    let total: i64 = connection
        .prepare_cached(&format!(
            "SELECT count(*) FROM groups JOIN units USING (group_id) WHERE {condition}"
        ))?
        .query_row(
            params![
                &*measure.id,
                gap,
                providers.tin,
                providers.npi,
                period.start.to_string(),
                period.end.to_string()
            ],
            |row| row.get(0),
        )?;
    let mut units = Vec::new();
    {
        let mut statement = connection.prepare_cached(&format!(
            "SELECT group_id, stratum, tin, npi, unit_no, marker, first_date, last_date
             FROM groups JOIN units USING (group_id)
             WHERE {condition}
             ORDER BY stratum, tin, npi, patient_hash, bucket, unit_no
             LIMIT ?7 OFFSET ?8"
        ))?;
        let mut rows = statement.query(params![
            &*measure.id,
            gap,
            providers.tin,
            providers.npi,
            period.start.to_string(),
            period.end.to_string(),
            (limit + 1) as i64,
            offset as i64
        ])?;
        while let Some(row) = rows.next()? {
            units.push((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                stored_marker(row.get(5)?)?,
                stored_date(&row.get::<_, String>(6)?)?,
                stored_date(&row.get::<_, String>(7)?)?,
            ));
        }
    }
    let more = units.len() > limit;
    units.truncate(limit);
    let mut gaps = Vec::with_capacity(units.len());
    for (group, stratum, tin, npi, unit_no, marker, first, last) in units {
        gaps.push(CareGap {
            stratum: usize::try_from(stratum).unwrap_or_default(),
            encounters: unit_claims(connection, group, unit_no)?,
            tin,
            npi,
            marker,
            first,
            last,
        });
    }
    Ok(CareGapsPage { gaps, more, total })
}

/// The encounter ids and dates of the claims of unit `unit_no` of the group
/// numbered `group`, in date order.
fn unit_claims(
    connection: &Connection,
    group: i64,
    unit_no: i64,
) -> Result<Vec<(String, Date)>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT encounter_id, service_date FROM claim_marks
         WHERE group_id = ?1 AND unit_no = ?2
         ORDER BY service_date, encounter_id",
    )?;
    let mut rows = statement.query(params![group, unit_no])?;
    let mut claims = Vec::new();
    while let Some(row) = rows.next()? {
        claims.push((row.get(0)?, stored_date(&row.get::<_, String>(1)?)?));
    }
    Ok(claims)
}

/// The unit a stored encounter belongs to under one measure stratum.
#[derive(Debug, Clone, PartialEq)]
pub struct EncounterUnit {
    /// The measure.
    pub measure_id: Arc<str>,
    /// The stratum's position in the measure.
    pub stratum: usize,
    /// The stratum's name, for a multi-strata measure.
    pub stratum_name: Option<Arc<str>>,
    /// The encounter's own marker there.
    pub claim_marker: Option<PerformanceKind>,
    /// The unit's marker, decided from all its claims.
    pub marker: Option<PerformanceKind>,
    /// How many times the unit counts.
    pub weight: u32,
    /// The unit's first and last dates of service.
    pub first: Date,
    /// See `first`.
    pub last: Date,
    /// Its claims, this one included: encounter id and date.
    pub encounters: Vec<(String, Date)>,
}

/// What is stored for one encounter.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEncounter {
    /// The caller's id.
    pub encounter_id: String,
    /// The claim as stored; no patient id.
    pub claim: Claim,
    /// 1 when first stored, one more for each replacement or void.
    pub revision: i64,
    /// Whether it was voided (then it joins no unit).
    pub voided: bool,
    /// Its verdicts under the measures in force.
    pub verdicts: Vec<Verdict>,
    /// The units it joined.
    pub units: Vec<EncounterUnit>,
}

/// What is stored for `encounter_id`.
pub fn encounter(
    connection: &Connection,
    measures: &MeasureSet,
    encounter_id: &str,
) -> Result<Option<StoredEncounter>, StoreError> {
    let stored = connection
        .prepare_cached(
            "SELECT provider_id, tin, service_date, claim, revision, voided
             FROM encounters WHERE encounter_id = ?1",
        )?
        .query_row([encounter_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, bool>(5)?,
            ))
        })
        .optional()?;
    let Some((npi, tin, service_date, claim, revision, voided)) = stored else {
        return Ok(None);
    };
    let claim = read_claim(npi, &tin, &service_date, &claim)?;
    let mut marks = Vec::new();
    {
        let mut statement = connection.prepare_cached(
            "SELECT group_id, measure_id, stratum, marker, unit_no
             FROM claim_marks JOIN groups USING (group_id)
             WHERE encounter_id = ?1 ORDER BY measure_id, stratum",
        )?;
        let mut rows = statement.query([encounter_id])?;
        while let Some(row) = rows.next()? {
            marks.push((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                stored_marker(row.get(3)?)?,
                row.get::<_, i64>(4)?,
            ));
        }
    }
    let mut units = Vec::with_capacity(marks.len());
    for (group, measure_id, stratum, claim_marker, unit_no) in marks {
        let Some(measure) = measures.get(&measure_id) else {
            continue;
        };
        let stratum = usize::try_from(stratum).unwrap_or_default();
        let Some(unit) = unit(connection, group, unit_no)? else {
            continue;
        };
        units.push(EncounterUnit {
            measure_id: measure.id.clone(),
            stratum,
            stratum_name: measure.strata.get(stratum).and_then(|s| s.name.clone()),
            claim_marker,
            marker: unit.marker,
            weight: unit.weight,
            first: unit.first,
            last: unit.last,
            encounters: unit_claims(connection, group, unit_no)?,
        });
    }
    Ok(Some(StoredEncounter::new(
        measures,
        encounter_id,
        claim,
        revision,
        voided,
        units,
    )))
}

impl StoredEncounter {
    /// What is stored for `encounter_id`, with its verdicts under
    /// `measures` (none once voided).
    pub(super) fn new(
        measures: &MeasureSet,
        encounter_id: &str,
        claim: Claim,
        revision: i64,
        voided: bool,
        units: Vec<EncounterUnit>,
    ) -> StoredEncounter {
        let verdicts = if voided {
            Vec::new()
        } else {
            measures.evaluate(&claim)
        };
        StoredEncounter {
            encounter_id: encounter_id.to_string(),
            claim,
            revision,
            voided,
            verdicts,
            units,
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn whole_years_are_those_the_period_covers_from_first_to_last_day() {
        let period = |start, end| Period { start, end };
        assert_eq!(whole_years(Period::year(2025)), Some((2025, 2025)));
        assert_eq!(
            whole_years(period(date(2024, 1, 1), date(2025, 12, 31))),
            Some((2024, 2025))
        );
        assert_eq!(
            whole_years(period(date(2025, 1, 2), date(2025, 12, 31))),
            None
        );
        assert_eq!(
            whole_years(period(date(2024, 6, 1), date(2026, 2, 1))),
            Some((2025, 2025))
        );
        assert_eq!(
            whole_years(period(date(2024, 1, 1), date(2024, 12, 30))),
            None
        );
    }
}
