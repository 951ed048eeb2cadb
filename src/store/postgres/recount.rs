//! Counting again, at start, the measures whose definitions changed, as the
//! embedded store does (see `store::recount`), in one transaction under the
//! write lock so no replica writes meanwhile. The measure set counted is
//! recorded, and every writer checks it, so a replica left running with
//! other definitions stops writing instead of counting otherwise.

use std::collections::{BTreeSet, HashMap};

use deadpool_postgres::Object;

use super::{
    super::{
        PreparedMark, StoreError,
        claim_json::read_claim,
        recount::{changes, marks_under, set_version},
    },
    schema::WRITE_LOCK,
    writer::{GroupRef, MEASURE_SET_NAME, NewMark, add_marks},
};
use crate::measures::{Measure, MeasureSet};

/// Encounters judged per statement.
const CHUNK: usize = 5_000;

/// Counts again every measure of `measures` whose definition changed and
/// forgets those no longer in force; answers how many it counted.
pub async fn changed_measures(
    client: &mut Object,
    measures: &MeasureSet,
) -> Result<usize, StoreError> {
    let stored: HashMap<String, String> = client
        .query("SELECT measure_id, fingerprint FROM measure_versions", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let (changed, gone) = changes(measures, &stored);
    let version = set_version(measures);
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await?;
    let changed_ids: Vec<&str> = changed.iter().map(|(measure, _)| &*measure.id).collect();
    let forgotten: Vec<&str> = gone.iter().copied().chain(changed_ids.clone()).collect();
    if !forgotten.is_empty() {
        transaction
            .batch_execute("CREATE TEMPORARY TABLE forgotten (group_id BIGINT) ON COMMIT DROP")
            .await?;
        transaction
            .execute(
                "INSERT INTO forgotten SELECT group_id FROM groups WHERE measure_id = ANY($1)",
                &[&forgotten],
            )
            .await?;
        for table in ["claim_marks", "units"] {
            transaction
                .execute(
                    &format!(
                        "DELETE FROM {table} WHERE group_id IN (SELECT group_id FROM forgotten)"
                    ),
                    &[],
                )
                .await?;
        }
        for table in ["groups", "totals", "measure_versions"] {
            transaction
                .execute(
                    &format!("DELETE FROM {table} WHERE measure_id = ANY($1)"),
                    &[&forgotten],
                )
                .await?;
        }
    }
    if !changed.is_empty() {
        mark_every_claim(&transaction, &changed, measures).await?;
        let prints: Vec<&str> = changed.iter().map(|(_, print)| print.as_str()).collect();
        transaction
            .execute(
                "INSERT INTO measure_versions SELECT * FROM unnest($1::text[], $2::text[])",
                &[&changed_ids, &prints],
            )
            .await?;
        tracing::info!(measures = ?changed_ids, "counted the stored claims under new or changed measures");
    }
    transaction
        .execute(
            "INSERT INTO meta (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            &[&MEASURE_SET_NAME, &version.as_bytes()],
        )
        .await?;
    transaction.commit().await?;
    Ok(changed.len())
}

/// Judges every stored claim that is not voided under `changed` and marks
/// it, a chunk of encounters at a time, deciding the units of the groups
/// each chunk adds to.
async fn mark_every_claim(
    transaction: &deadpool_postgres::Transaction<'_>,
    changed: &[(&Measure, String)],
    measures: &MeasureSet,
) -> Result<(), StoreError> {
    let mut after = String::new();
    loop {
        let rows = transaction
            .query(
                "SELECT encounter_id, patient_hash, provider_id, tin, service_date, claim
                 FROM encounters WHERE NOT voided AND encounter_id > $1
                 ORDER BY encounter_id LIMIT $2",
                &[&after, &(CHUNK as i64)],
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        let mut prepared: Vec<(usize, PreparedMark)> = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let claim = read_claim(row.get(2), row.get(3), row.get(4), row.get(5))?;
            prepared.extend(
                marks_under(changed, &claim)
                    .into_iter()
                    .map(|mark| (index, mark)),
            );
        }
        let marks: Vec<NewMark<'_>> = prepared
            .iter()
            .map(|(index, mark)| {
                let row = &rows[*index];
                NewMark {
                    group: GroupRef {
                        measure_id: &mark.measure_id,
                        stratum: mark.stratum,
                        tin: row.get(3),
                        npi: row.get(2),
                        patient_hash: row.get(1),
                        bucket: &mark.bucket,
                    },
                    encounter_id: row.get(0),
                    service_date: row.get(4),
                    marker: mark.marker,
                    weight: mark.weight,
                    diagnoses: &mark.diagnoses,
                }
            })
            .collect();
        add_marks(transaction, &marks, BTreeSet::new(), measures).await?;
    }
}
