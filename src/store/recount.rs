//! Counting again, at start, the measures whose definitions changed.
//!
//! Units and totals are kept in the database under the measures in force when
//! each claim was recorded. Each measure's definition is fingerprinted; when a
//! server starts with a measure that is new, or defined otherwise than when
//! it was last counted, every stored claim is judged again under it and its
//! units are decided anew, in one transaction. A measure no longer in force
//! leaves no units behind.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::{
    PreparedMark, StoreError,
    claim_json::read_claim,
    counting::{GroupKey, Mark, TotalsChanges, apply, group_id, insert_mark, redecide},
};
use crate::measures::{Claim, Measure, MeasureSet, judge};

/// Changes whenever how cptd turns claims into units changes, so that every
/// measure is counted again by the first server that counts the new way.
const COUNTING_VERSION: &str = "cms-units-1";

/// Identifies how `measure` counts: its whole compiled definition.
pub(super) fn fingerprint(measure: &Measure) -> String {
    let digest = Sha256::digest(format!("{COUNTING_VERSION} {measure:?}").as_bytes());
    digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Identifies the measure set as counted: changes when any measure is added,
/// removed or defined otherwise.
pub fn set_version(measures: &MeasureSet) -> String {
    let mut fingerprints: Vec<String> =
        measures.measures().iter().map(|m| fingerprint(m)).collect();
    fingerprints.sort();
    let digest = Sha256::digest(fingerprints.join(" ").as_bytes());
    digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The ids of the measures whose counts in the database differ from
/// `measures`: new or defined otherwise than when last counted, or counted
/// there but not in `measures`.
pub fn differences(
    connection: &Connection,
    measures: &MeasureSet,
) -> Result<Vec<String>, StoreError> {
    let stored = stored_fingerprints(connection)?;
    let mut ids: Vec<String> = measures
        .measures()
        .iter()
        .filter(|measure| stored.get(&*measure.id) != Some(&fingerprint(measure)))
        .map(|measure| measure.id.to_string())
        .chain(
            stored
                .keys()
                .filter(|id| measures.get(id).is_none())
                .cloned(),
        )
        .collect();
    ids.sort();
    Ok(ids)
}

fn stored_fingerprints(connection: &Connection) -> Result<HashMap<String, String>, StoreError> {
    let mut statement =
        connection.prepare("SELECT measure_id, fingerprint FROM measure_versions")?;
    let stored = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(stored)
}

/// The measures of `measures` counted otherwise than the `stored`
/// fingerprints say, with their new fingerprints, and the ids of the
/// measures counted but no longer in force.
pub(super) fn changes<'a>(
    measures: &'a MeasureSet,
    stored: &'a HashMap<String, String>,
) -> (Vec<(&'a Measure, String)>, Vec<&'a str>) {
    let changed = measures
        .measures()
        .iter()
        .map(|measure| (&**measure, fingerprint(measure)))
        .filter(|(measure, print)| stored.get(&*measure.id) != Some(print))
        .collect();
    let gone = stored
        .keys()
        .filter(|id| measures.get(id).is_none())
        .map(String::as_str)
        .collect();
    (changed, gone)
}

/// The marks `claim` leaves under the `changed` measures: one per stratum
/// it is eligible in.
pub(super) fn marks_under(changed: &[(&Measure, String)], claim: &Claim) -> Vec<PreparedMark> {
    let mut marks = Vec::new();
    for (measure, _) in changed {
        for (index, stratum) in measure.strata.iter().enumerate() {
            let judgement = judge(measure, stratum, claim);
            if judgement.is_eligible() {
                marks.push(PreparedMark::new(
                    measure,
                    index,
                    judgement.marker,
                    judgement.weight,
                    claim,
                ));
            }
        }
    }
    marks
}

/// Counts again every measure of `measures` whose definition changed and
/// forgets those no longer in force; answers how many it counted.
pub fn changed_measures(
    connection: &mut Connection,
    measures: &MeasureSet,
) -> Result<usize, StoreError> {
    let stored = stored_fingerprints(connection)?;
    let (changed, gone) = changes(measures, &stored);
    if changed.is_empty() && gone.is_empty() {
        return Ok(0);
    }
    let transaction = connection.transaction()?;
    for id in gone
        .iter()
        .copied()
        .chain(changed.iter().map(|(measure, _)| &*measure.id))
    {
        for table in ["claim_marks", "units"] {
            transaction.execute(
                &format!(
                    "DELETE FROM {table} WHERE group_id IN
                         (SELECT group_id FROM groups WHERE measure_id = ?1)"
                ),
                [id],
            )?;
        }
        for table in ["groups", "totals", "measure_versions"] {
            transaction.execute(&format!("DELETE FROM {table} WHERE measure_id = ?1"), [id])?;
        }
    }
    if !changed.is_empty() {
        mark_every_claim(&transaction, &changed)?;
        for (measure, print) in &changed {
            let mut changes = TotalsChanges::new();
            for group in groups_of(&transaction, &measure.id)? {
                redecide(&transaction, group, measures, &mut changes)?;
            }
            apply(&transaction, changes)?;
            transaction.execute(
                "INSERT INTO measure_versions (measure_id, fingerprint) VALUES (?1, ?2)",
                params![&*measure.id, print],
            )?;
        }
    }
    transaction.commit()?;
    let names: Vec<&str> = changed.iter().map(|(measure, _)| &*measure.id).collect();
    tracing::info!(measures = ?names, "counted the stored claims under new or changed measures");
    Ok(changed.len())
}

/// Judges every stored claim that is not voided under `changed` and marks it.
fn mark_every_claim(
    transaction: &rusqlite::Transaction<'_>,
    changed: &[(&Measure, String)],
) -> Result<(), StoreError> {
    let mut statement = transaction.prepare(
        "SELECT encounter_id, patient_hash, provider_id, tin, service_date, claim
         FROM encounters WHERE voided = 0",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let encounter_id: String = row.get(0)?;
        let patient_hash: Vec<u8> = row.get(1)?;
        let tin: String = row.get(3)?;
        let service_date: String = row.get(4)?;
        let claim = read_claim(row.get(2)?, &tin, &service_date, &row.get::<_, String>(5)?)?;
        for mark in marks_under(changed, &claim) {
            let group = GroupKey {
                measure_id: mark.measure_id.to_string(),
                stratum: mark.stratum,
                tin: tin.clone(),
                npi: claim.provider_id.clone(),
                patient_hash: patient_hash.clone(),
                bucket: mark.bucket.clone(),
            };
            let group = group_id(transaction, &group)?;
            insert_mark(
                transaction,
                group,
                &Mark {
                    encounter_id: &encounter_id,
                    service_date: &service_date,
                    marker: mark.marker,
                    weight: mark.weight,
                    diagnoses: &mark.diagnoses,
                },
            )?;
        }
    }
    Ok(())
}

/// The number of every group of `measure_id`.
fn groups_of(
    transaction: &rusqlite::Transaction<'_>,
    measure_id: &str,
) -> Result<Vec<i64>, StoreError> {
    let mut statement = transaction.prepare("SELECT group_id FROM groups WHERE measure_id = ?1")?;
    let groups = statement
        .query_map([measure_id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(groups)
}
