//! The units and totals of the groups a transaction touches.
//!
//! A claim's mark goes into its group (one measure stratum, one provider, one
//! patient, one bucket); once a transaction has written every claim it holds,
//! each group it touched is decided again ([`decide`]) from all its marks, and
//! the difference between its old and new units is applied to the totals of
//! its provider and bucket. So the units, the totals and the claims that move
//! them commit together, or not at all.

use std::collections::BTreeSet;

use jiff::civil::Date;
use rusqlite::{OptionalExtension, Transaction, params};

use super::StoreError;
use crate::{
    calendar,
    measures::{Counts, Diagnosis, MarkedClaim, MeasureSet, PerformanceKind, decide},
};

/// One group's key, as its columns are stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub measure_id: String,
    pub stratum: i64,
    pub tin: String,
    pub npi: String,
    pub patient_hash: Vec<u8>,
    pub bucket: String,
}

/// The groups a transaction touched, each decided once at its end.
pub type Touched = BTreeSet<GroupKey>;

/// The SQL condition naming one group, its values bound as `?1` to `?6`.
const IN_GROUP: &str = "measure_id = ?1 AND stratum = ?2 AND tin = ?3 AND npi = ?4 \
                        AND patient_hash = ?5 AND bucket = ?6";

macro_rules! group_params {
    ($group:expr $(, $more:expr)*) => {
        params![
            $group.measure_id,
            $group.stratum,
            $group.tin,
            $group.npi,
            $group.patient_hash,
            $group.bucket
            $(, $more)*
        ]
    };
}

/// A claim's mark in one group.
pub struct Mark<'a> {
    pub encounter_id: &'a str,
    pub service_date: &'a str,
    pub marker: Option<PerformanceKind>,
    pub weight: u32,
    /// The diagnoses that tie episodes, compact, comma-separated.
    pub diagnoses: &'a str,
}

/// Adds `mark` to `group`.
pub fn insert_mark(
    transaction: &Transaction<'_>,
    group: &GroupKey,
    mark: &Mark<'_>,
) -> Result<(), StoreError> {
    transaction
        .prepare_cached(
            "INSERT INTO claim_marks (measure_id, stratum, tin, npi, patient_hash, bucket,
                 encounter_id, service_date, marker, weight, diagnoses, unit_no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, -1)",
        )?
        .execute(group_params!(
            group,
            mark.encounter_id,
            mark.service_date,
            mark.marker.map(PerformanceKind::number),
            mark.weight,
            mark.diagnoses
        ))?;
    Ok(())
}

/// Removes every mark of `encounter_id`, adding the groups they were in to
/// `touched`.
pub fn remove_marks(
    transaction: &Transaction<'_>,
    encounter_id: &str,
    touched: &mut Touched,
) -> Result<(), StoreError> {
    let mut groups = transaction.prepare_cached(
        "SELECT measure_id, stratum, tin, npi, patient_hash, bucket
         FROM claim_marks WHERE encounter_id = ?1",
    )?;
    let mut rows = groups.query([encounter_id])?;
    while let Some(row) = rows.next()? {
        touched.insert(GroupKey {
            measure_id: row.get(0)?,
            stratum: row.get(1)?,
            tin: row.get(2)?,
            npi: row.get(3)?,
            patient_hash: row.get(4)?,
            bucket: row.get(5)?,
        });
    }
    transaction
        .prepare_cached("DELETE FROM claim_marks WHERE encounter_id = ?1")?
        .execute([encounter_id])?;
    Ok(())
}

/// A unit as stored.
#[derive(Debug, PartialEq, Eq)]
struct StoredUnit {
    marker: Option<PerformanceKind>,
    weight: u32,
    first: String,
    last: String,
}

/// Decides `group` again from its marks: its units replace the stored ones,
/// each mark learns its unit, and the totals move by the difference. A group
/// of a measure no longer in force is left as it is (opening the store
/// removes such groups).
pub fn redecide(
    transaction: &Transaction<'_>,
    group: &GroupKey,
    measures: &MeasureSet,
) -> Result<(), StoreError> {
    let Some(measure) = measures.get(&group.measure_id) else {
        return Ok(());
    };
    let mut ids = Vec::new();
    let mut stored_units_of_marks = Vec::new();
    let mut claims = Vec::new();
    {
        let mut marks = transaction.prepare_cached(&format!(
            "SELECT encounter_id, service_date, marker, weight, diagnoses, unit_no
             FROM claim_marks WHERE {IN_GROUP} ORDER BY service_date, encounter_id"
        ))?;
        let mut rows = marks.query(group_params!(group))?;
        while let Some(row) = rows.next()? {
            ids.push(row.get::<_, String>(0)?);
            claims.push(MarkedClaim {
                service_date: stored_date(&row.get::<_, String>(1)?)?,
                marker: stored_marker(row.get(2)?)?,
                weight: row.get(3)?,
                diagnoses: stored_diagnoses(&row.get::<_, String>(4)?)?,
            });
            stored_units_of_marks.push(row.get::<_, i64>(5)?);
        }
    }
    let old: Vec<StoredUnit> = {
        let mut units = transaction.prepare_cached(&format!(
            "SELECT marker, weight, first_date, last_date FROM units WHERE {IN_GROUP}
             ORDER BY unit_no"
        ))?;
        units
            .query_map(group_params!(group), |row| {
                Ok((
                    row.get::<_, Option<u8>>(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                ))
            })?
            .map(|row| {
                let (marker, weight, first, last) = row?;
                Ok(StoredUnit {
                    marker: stored_marker(marker)?,
                    weight,
                    first,
                    last,
                })
            })
            .collect::<Result<_, StoreError>>()?
    };
    let units = decide(measure.calculation, measure.inverse, &claims);
    let new: Vec<StoredUnit> = units
        .iter()
        .map(|unit| StoredUnit {
            marker: unit.marker,
            weight: unit.weight,
            first: unit.first.to_string(),
            last: unit.last.to_string(),
        })
        .collect();
    let mut unit_of_mark = vec![0i64; claims.len()];
    for (number, unit) in units.iter().enumerate() {
        for &member in &unit.members {
            unit_of_mark[member] = number as i64;
        }
    }
    if old == new && unit_of_mark == stored_units_of_marks {
        return Ok(());
    }
    transaction
        .prepare_cached(&format!("DELETE FROM units WHERE {IN_GROUP}"))?
        .execute(group_params!(group))?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO units (measure_id, stratum, tin, npi, patient_hash, bucket, unit_no,
                 marker, weight, first_date, last_date)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (number, unit) in new.iter().enumerate() {
            insert.execute(group_params!(
                group,
                number as i64,
                unit.marker.map(PerformanceKind::number),
                unit.weight,
                unit.first,
                unit.last
            ))?;
        }
    }
    {
        let mut assign = transaction.prepare_cached(&format!(
            "UPDATE claim_marks SET unit_no = ?7 WHERE {IN_GROUP} AND encounter_id = ?8"
        ))?;
        for (index, id) in ids.iter().enumerate() {
            if unit_of_mark[index] != stored_units_of_marks[index] {
                assign.execute(group_params!(group, unit_of_mark[index], id))?;
            }
        }
    }
    let mut change = Counts::default();
    for unit in &old {
        change.count(unit.marker, -i64::from(unit.weight));
    }
    for unit in &new {
        change.count(unit.marker, i64::from(unit.weight));
    }
    if change != Counts::default() {
        transaction
            .prepare_cached(
                "INSERT INTO totals (measure_id, stratum, tin, npi, bucket,
                     eligible, met, not_met, exclusions, exceptions)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (measure_id, stratum, tin, npi, bucket) DO UPDATE SET
                     eligible = eligible + excluded.eligible,
                     met = met + excluded.met,
                     not_met = not_met + excluded.not_met,
                     exclusions = exclusions + excluded.exclusions,
                     exceptions = exceptions + excluded.exceptions",
            )?
            .execute(params![
                group.measure_id,
                group.stratum,
                group.tin,
                group.npi,
                group.bucket,
                change.eligible_population,
                change.met,
                change.not_met,
                change.exclusions,
                change.exceptions,
            ])?;
    }
    Ok(())
}

/// A stored unit as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    pub marker: Option<PerformanceKind>,
    pub weight: u32,
    pub first: Date,
    pub last: Date,
}

/// The unit `unit_no` of `group`.
pub fn unit(
    connection: &rusqlite::Connection,
    group: &GroupKey,
    unit_no: i64,
) -> Result<Option<UnitRow>, StoreError> {
    let found = connection
        .prepare_cached(&format!(
            "SELECT marker, weight, first_date, last_date FROM units
             WHERE {IN_GROUP} AND unit_no = ?7"
        ))?
        .query_row(group_params!(group, unit_no), |row| {
            Ok((
                row.get::<_, Option<u8>>(0)?,
                row.get::<_, u32>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    found
        .map(|(marker, weight, first, last)| {
            Ok(UnitRow {
                marker: stored_marker(marker)?,
                weight,
                first: stored_date(&first)?,
                last: stored_date(&last)?,
            })
        })
        .transpose()
}

pub fn stored_marker(number: Option<u8>) -> Result<Option<PerformanceKind>, StoreError> {
    number
        .map(|number| {
            PerformanceKind::from_number(number)
                .ok_or_else(|| StoreError::Corrupt(format!("marker {number} is not one")))
        })
        .transpose()
}

pub fn stored_date(text: &str) -> Result<Date, StoreError> {
    calendar::parse_date(text).map_err(|error| StoreError::Corrupt(error.to_string()))
}

fn stored_diagnoses(text: &str) -> Result<Vec<Diagnosis>, StoreError> {
    text.split(',')
        .filter(|code| !code.is_empty())
        .map(|code| Diagnosis::parse(code).map_err(|error| StoreError::Corrupt(error.to_string())))
        .collect()
}
