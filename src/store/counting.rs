//! The units and totals of the groups a transaction touches.
//!
//! A claim's mark goes into its group (one measure stratum, one provider, one
//! patient, one bucket); once a transaction has written every claim it holds,
//! each group it touched is decided again ([`decide`]) from all its marks, the
//! difference between its old and new units is added up per provider and
//! bucket, and the totals take those differences at the end. So the units,
//! the totals and the claims that move them commit together, or not at all.

use std::collections::{BTreeSet, HashMap};

use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::StoreError;
use crate::{
    calendar,
    measures::{Counts, Diagnosis, MarkedClaim, Measure, MeasureSet, PerformanceKind, decide},
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

/// The groups a transaction touched, by number, each decided once at its end.
pub type Touched = BTreeSet<i64>;

/// The number of `group`, given it if it has none yet.
pub fn group_id(transaction: &Transaction<'_>, group: &GroupKey) -> Result<i64, StoreError> {
    let key = params![
        group.measure_id,
        group.stratum,
        group.tin,
        group.npi,
        group.patient_hash,
        group.bucket
    ];
    let known = transaction
        .prepare_cached(
            "SELECT group_id FROM groups WHERE measure_id = ?1 AND stratum = ?2 AND tin = ?3
               AND npi = ?4 AND patient_hash = ?5 AND bucket = ?6",
        )?
        .query_row(key, |row| row.get(0))
        .optional()?;
    if let Some(id) = known {
        return Ok(id);
    }
    transaction
        .prepare_cached(
            "INSERT INTO groups (measure_id, stratum, tin, npi, patient_hash, bucket)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(key)?;
    Ok(transaction.last_insert_rowid())
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

/// Adds `mark` to the group numbered `group`.
pub fn insert_mark(
    transaction: &Transaction<'_>,
    group: i64,
    mark: &Mark<'_>,
) -> Result<(), StoreError> {
    transaction
        .prepare_cached(
            "INSERT INTO claim_marks
                 (group_id, encounter_id, service_date, marker, weight, diagnoses, unit_no)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, -1)",
        )?
        .execute(params![
            group,
            mark.encounter_id,
            mark.service_date,
            mark.marker.map(PerformanceKind::number),
            mark.weight,
            mark.diagnoses
        ])?;
    Ok(())
}

/// Removes every mark of `encounter_id`, adding the groups they were in to
/// `touched`.
pub fn remove_marks(
    transaction: &Transaction<'_>,
    encounter_id: &str,
    touched: &mut Touched,
) -> Result<(), StoreError> {
    let mut groups =
        transaction.prepare_cached("SELECT group_id FROM claim_marks WHERE encounter_id = ?1")?;
    let mut rows = groups.query([encounter_id])?;
    while let Some(row) = rows.next()? {
        touched.insert(row.get(0)?);
    }
    transaction
        .prepare_cached("DELETE FROM claim_marks WHERE encounter_id = ?1")?
        .execute([encounter_id])?;
    Ok(())
}

/// A unit as stored.
#[derive(Debug, PartialEq, Eq)]
pub struct StoredUnit {
    pub marker: Option<PerformanceKind>,
    pub weight: u32,
    pub first: String,
    pub last: String,
}

/// Where the totals a group counts in are kept: its provider and bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TotalsKey {
    pub measure_id: String,
    pub stratum: i64,
    pub tin: String,
    pub npi: String,
    pub bucket: String,
}

/// The changes a transaction makes to the totals, applied once at its end.
pub type TotalsChanges = HashMap<TotalsKey, Counts>;

/// A claim's mark as stored: its encounter, its claim as the measure sees
/// it, and the unit it was last placed in.
pub struct StoredMark {
    pub encounter_id: String,
    pub claim: MarkedClaim,
    pub unit_no: i64,
}

/// What deciding one group again changes; the same for every store.
#[derive(Debug, Default)]
pub struct Redecision {
    /// The group's units, when they differ from the stored ones.
    pub units: Option<Vec<StoredUnit>>,
    /// The marks placed in another unit than before: encounter id, unit.
    pub moved: Vec<(String, i64)>,
    /// The difference in counts, old units out and new ones in.
    pub change: Counts,
}

/// Decides a group of `measure` again from its `marks`, given its `old`
/// units in order.
pub fn redecision(measure: &Measure, mut marks: Vec<StoredMark>, old: &[StoredUnit]) -> Redecision {
    marks.sort_by(|a, b| {
        (a.claim.service_date, &a.encounter_id).cmp(&(b.claim.service_date, &b.encounter_id))
    });
    let claims: Vec<MarkedClaim> = marks.iter().map(|mark| mark.claim.clone()).collect();
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
    let mut unit_of_mark = vec![0i64; marks.len()];
    for (number, unit) in units.iter().enumerate() {
        for &member in &unit.members {
            unit_of_mark[member] = number as i64;
        }
    }
    let moved = marks
        .into_iter()
        .zip(unit_of_mark)
        .filter(|(mark, decided)| mark.unit_no != *decided)
        .map(|(mark, decided)| (mark.encounter_id, decided))
        .collect();
    if old == new.as_slice() {
        return Redecision {
            moved,
            ..Redecision::default()
        };
    }
    let mut change = Counts::default();
    for unit in old {
        change.count(unit.marker, -i64::from(unit.weight));
    }
    for unit in &new {
        change.count(unit.marker, i64::from(unit.weight));
    }
    Redecision {
        units: Some(new),
        moved,
        change,
    }
}

/// Decides the group numbered `group` again from its marks: its units replace
/// the stored ones, each mark learns its unit, and `changes` takes the
/// difference in counts. A group of a measure no longer in force is left as
/// it is (opening the store removes such groups).
pub fn redecide(
    transaction: &Transaction<'_>,
    group: i64,
    measures: &MeasureSet,
    changes: &mut TotalsChanges,
) -> Result<(), StoreError> {
    let totals = transaction
        .prepare_cached(
            "SELECT measure_id, stratum, tin, npi, bucket FROM groups WHERE group_id = ?1",
        )?
        .query_row([group], |row| {
            Ok(TotalsKey {
                measure_id: row.get(0)?,
                stratum: row.get(1)?,
                tin: row.get(2)?,
                npi: row.get(3)?,
                bucket: row.get(4)?,
            })
        })?;
    let Some(measure) = measures.get(&totals.measure_id) else {
        return Ok(());
    };
    // Sorted by `redecision` rather than by ORDER BY: with an ORDER BY, SQLite
    // prepares these statements anew at every binding.
    let mut marks = Vec::new();
    {
        let mut statement = transaction.prepare_cached(
            "SELECT encounter_id, service_date, marker, weight, diagnoses, unit_no
             FROM claim_marks WHERE group_id = ?1",
        )?;
        let mut rows = statement.query([group])?;
        while let Some(row) = rows.next()? {
            marks.push(StoredMark {
                encounter_id: row.get(0)?,
                claim: MarkedClaim {
                    service_date: stored_date(&row.get::<_, String>(1)?)?,
                    marker: stored_marker(row.get(2)?)?,
                    weight: row.get(3)?,
                    diagnoses: stored_diagnoses(&row.get::<_, String>(4)?)?,
                },
                unit_no: row.get(5)?,
            });
        }
    }
    let old: Vec<StoredUnit> = {
        let mut statement = transaction.prepare_cached(
            "SELECT unit_no, marker, weight, first_date, last_date FROM units WHERE group_id = ?1",
        )?;
        let mut rows = statement.query([group])?;
        let mut numbered = Vec::new();
        while let Some(row) = rows.next()? {
            let unit = StoredUnit {
                marker: stored_marker(row.get(1)?)?,
                weight: row.get(2)?,
                first: row.get(3)?,
                last: row.get(4)?,
            };
            numbered.push((row.get::<_, i64>(0)?, unit));
        }
        numbered.sort_by_key(|(number, _)| *number);
        numbered.into_iter().map(|(_, unit)| unit).collect()
    };
    let decided = redecision(measure, marks, &old);
    if let Some(units) = &decided.units {
        transaction
            .prepare_cached("DELETE FROM units WHERE group_id = ?1")?
            .execute([group])?;
        let mut insert = transaction.prepare_cached(
            "INSERT INTO units (group_id, unit_no, marker, weight, first_date, last_date)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (number, unit) in units.iter().enumerate() {
            insert.execute(params![
                group,
                number as i64,
                unit.marker.map(PerformanceKind::number),
                unit.weight,
                unit.first,
                unit.last
            ])?;
        }
    }
    let mut assign = transaction.prepare_cached(
        "UPDATE claim_marks SET unit_no = ?3 WHERE group_id = ?1 AND encounter_id = ?2",
    )?;
    for (encounter_id, unit_no) in &decided.moved {
        assign.execute(params![group, encounter_id, unit_no])?;
    }
    changes.entry(totals).or_default().add(&decided.change);
    Ok(())
}

/// Adds `changes` to the totals.
pub fn apply(transaction: &Transaction<'_>, changes: TotalsChanges) -> Result<(), StoreError> {
    let mut upsert = transaction.prepare_cached(
        "INSERT INTO totals (measure_id, stratum, tin, npi, bucket,
             eligible, met, not_met, exclusions, exceptions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (measure_id, stratum, tin, npi, bucket) DO UPDATE SET
             eligible = eligible + excluded.eligible,
             met = met + excluded.met,
             not_met = not_met + excluded.not_met,
             exclusions = exclusions + excluded.exclusions,
             exceptions = exceptions + excluded.exceptions",
    )?;
    for (key, change) in changes {
        if change == Counts::default() {
            continue;
        }
        upsert.execute(params![
            key.measure_id,
            key.stratum,
            key.tin,
            key.npi,
            key.bucket,
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

/// The unit `unit_no` of the group numbered `group`.
pub fn unit(
    connection: &Connection,
    group: i64,
    unit_no: i64,
) -> Result<Option<UnitRow>, StoreError> {
    let found = connection
        .prepare_cached(
            "SELECT marker, weight, first_date, last_date FROM units
             WHERE group_id = ?1 AND unit_no = ?2",
        )?
        .query_row(params![group, unit_no], |row| {
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

pub fn stored_diagnoses(text: &str) -> Result<Vec<Diagnosis>, StoreError> {
    text.split(',')
        .filter(|code| !code.is_empty())
        .map(|code| Diagnosis::parse(code).map_err(|error| StoreError::Corrupt(error.to_string())))
        .collect()
}
