//! What the shared store answers: reports, care gaps and stored encounters,
//! read from the units and totals every replica's writer keeps; the same
//! questions, and the same answers, as the embedded store's `reads`.

use std::sync::Arc;

use deadpool_postgres::GenericClient;
use jiff::civil::Date;
use tokio_postgres::Row;

use super::super::{
    AuditRecord, BrokenChain, CareGap, CareGapsPage, ChainHead, EncounterUnit, StoreError,
    StoredEncounter,
    audit::{ChainCheck, hex},
    claim_json::read_claim,
    counting::{StoredMark, stored_date, stored_diagnoses},
    reads::{ReportPart, gap_marker, report_parts},
};
use crate::measures::{
    Counts, MarkedClaim, Measure, MeasureSet, PerformanceKind, PerformanceReport, Period,
    ProviderFilter,
};

/// The provider condition of a query of `groups` whose TIN and NPI are bound
/// as `$3` and `$4`, either `NULL` for any.
const FOR_PROVIDERS: &str = "($3::text IS NULL OR tin = $3) AND ($4::text IS NULL OR npi = $4)";

pub fn stored_marker(number: Option<i64>) -> Result<Option<PerformanceKind>, StoreError> {
    number
        .map(|number| {
            u8::try_from(number)
                .ok()
                .and_then(PerformanceKind::from_number)
                .ok_or_else(|| StoreError::Corrupt(format!("marker {number} is not one")))
        })
        .transpose()
}

/// A mark read as `group_id, encounter_id, service_date, marker, weight,
/// diagnoses, unit_no`.
pub fn stored_mark(row: &Row) -> Result<StoredMark, StoreError> {
    Ok(StoredMark {
        encounter_id: row.get(1),
        claim: MarkedClaim {
            service_date: stored_date(row.get(2))?,
            marker: stored_marker(row.get(3))?,
            weight: stored_weight(row.get(4))?,
            diagnoses: stored_diagnoses(row.get(5))?,
        },
        unit_no: row.get(6),
    })
}

fn stored_weight(weight: i64) -> Result<u32, StoreError> {
    u32::try_from(weight).map_err(|_| StoreError::Corrupt(format!("weight {weight} is not one")))
}

/// The report of `measure` for `providers` over `period`.
pub async fn report(
    client: &impl GenericClient,
    measure: Arc<Measure>,
    providers: ProviderFilter,
    period: Period,
) -> Result<PerformanceReport, StoreError> {
    let mut counts = Vec::with_capacity(measure.strata.len());
    for stratum in 0..measure.strata.len() as i64 {
        let mut stratum_counts = Counts::default();
        for part in report_parts(&measure, period) {
            stratum_counts.add(&match part {
                ReportPart::Totals(first, last) => {
                    let row = client
                        .query_one(
                            &format!(
                                "SELECT coalesce(sum(eligible), 0)::bigint,
                                        coalesce(sum(met), 0)::bigint,
                                        coalesce(sum(not_met), 0)::bigint,
                                        coalesce(sum(exclusions), 0)::bigint,
                                        coalesce(sum(exceptions), 0)::bigint
                                 FROM totals
                                 WHERE measure_id = $1 AND stratum = $2 AND {FOR_PROVIDERS}
                                   AND bucket BETWEEN $5 AND $6"
                            ),
                            &[
                                &&*measure.id,
                                &stratum,
                                &providers.tin,
                                &providers.npi,
                                &first,
                                &last,
                            ],
                        )
                        .await?;
                    Counts {
                        eligible_population: row.get(0),
                        met: row.get(1),
                        not_met: row.get(2),
                        exclusions: row.get(3),
                        exceptions: row.get(4),
                    }
                }
                ReportPart::PartialYear(year) => {
                    let mut counts = Counts::default();
                    for row in client
                        .query(
                            &format!(
                                "SELECT marker, sum(weight)::bigint
                                 FROM groups JOIN units USING (group_id)
                                 WHERE measure_id = $1 AND stratum = $2 AND {FOR_PROVIDERS}
                                   AND bucket = $5 AND first_date >= $6 AND last_date <= $7
                                 GROUP BY marker"
                            ),
                            &[
                                &&*measure.id,
                                &stratum,
                                &providers.tin,
                                &providers.npi,
                                &format!("{year:04}"),
                                &period.start.to_string(),
                                &period.end.to_string(),
                            ],
                        )
                        .await?
                    {
                        counts.count(stored_marker(row.get(0))?, row.get(1));
                    }
                    counts
                }
            });
        }
        counts.push(stratum_counts);
    }
    Ok(PerformanceReport::new(measure, providers, period, counts))
}

/// A page of the care gaps of `measure`: `limit` from the `offset`-th, in the
/// order the embedded store gives them.
pub async fn care_gaps(
    client: &impl GenericClient,
    measure: &Measure,
    providers: &ProviderFilter,
    period: Period,
    offset: usize,
    limit: usize,
) -> Result<CareGapsPage, StoreError> {
    let gap = i64::from(gap_marker(measure).number());
    let condition = format!(
        "measure_id = $1 AND (marker IS NULL OR marker = $2) AND {FOR_PROVIDERS}
         AND first_date >= $5 AND last_date <= $6"
    );
    let start = period.start.to_string();
    let end = period.end.to_string();
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM groups JOIN units USING (group_id) WHERE {condition}"),
            &[
                &&*measure.id,
                &gap,
                &providers.tin,
                &providers.npi,
                &start,
                &end,
            ],
        )
        .await?
        .get(0);
    // Text ordered byte by byte, as SQLite orders it, so that both stores
    // page alike.
    let mut rows = client
        .query(
            &format!(
                "SELECT group_id, stratum, tin, npi, unit_no, marker, first_date, last_date
                 FROM groups JOIN units USING (group_id)
                 WHERE {condition}
                 ORDER BY stratum, tin COLLATE \"C\", npi COLLATE \"C\", patient_hash,
                          bucket COLLATE \"C\", unit_no
                 LIMIT $7 OFFSET $8"
            ),
            &[
                &&*measure.id,
                &gap,
                &providers.tin,
                &providers.npi,
                &start,
                &end,
                &((limit + 1) as i64),
                &(offset as i64),
            ],
        )
        .await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut gaps = Vec::with_capacity(rows.len());
    for row in rows {
        gaps.push(CareGap {
            stratum: usize::try_from(row.get::<_, i64>(1)).unwrap_or_default(),
            tin: row.get(2),
            npi: row.get(3),
            marker: stored_marker(row.get(5))?,
            first: stored_date(row.get(6))?,
            last: stored_date(row.get(7))?,
            encounters: unit_claims(client, row.get(0), row.get(4)).await?,
        });
    }
    Ok(CareGapsPage { gaps, more, total })
}

/// The encounter ids and dates of the claims of unit `unit_no` of the group
/// numbered `group`, in date order.
async fn unit_claims(
    client: &impl GenericClient,
    group: i64,
    unit_no: i64,
) -> Result<Vec<(String, Date)>, StoreError> {
    client
        .query(
            "SELECT encounter_id, service_date FROM claim_marks
             WHERE group_id = $1 AND unit_no = $2
             ORDER BY service_date, encounter_id COLLATE \"C\"",
            &[&group, &unit_no],
        )
        .await?
        .iter()
        .map(|row| Ok((row.get(0), stored_date(row.get(1))?)))
        .collect()
}

/// What is stored for `encounter_id`.
pub async fn encounter(
    client: &impl GenericClient,
    measures: &MeasureSet,
    encounter_id: &str,
) -> Result<Option<StoredEncounter>, StoreError> {
    let Some(stored) = client
        .query_opt(
            "SELECT provider_id, tin, service_date, claim, revision, voided
             FROM encounters WHERE encounter_id = $1",
            &[&encounter_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let claim = read_claim(stored.get(0), stored.get(1), stored.get(2), stored.get(3))?;
    let voided: bool = stored.get(5);
    let marks = client
        .query(
            "SELECT g.group_id, g.measure_id, g.stratum, c.marker, c.unit_no,
                    u.marker, u.weight, u.first_date, u.last_date
             FROM claim_marks c JOIN groups g USING (group_id)
                 JOIN units u ON u.group_id = c.group_id AND u.unit_no = c.unit_no
             WHERE c.encounter_id = $1
             ORDER BY g.measure_id COLLATE \"C\", g.stratum",
            &[&encounter_id],
        )
        .await?;
    let mut units = Vec::with_capacity(marks.len());
    for row in marks {
        let Some(measure) = measures.get(row.get(1)) else {
            continue;
        };
        let stratum = usize::try_from(row.get::<_, i64>(2)).unwrap_or_default();
        units.push(EncounterUnit {
            measure_id: measure.id.clone(),
            stratum,
            stratum_name: measure.strata.get(stratum).and_then(|s| s.name.clone()),
            claim_marker: stored_marker(row.get(3))?,
            marker: stored_marker(row.get(5))?,
            weight: stored_weight(row.get(6))?,
            first: stored_date(row.get(7))?,
            last: stored_date(row.get(8))?,
            encounters: unit_claims(client, row.get(0), row.get(4)).await?,
        });
    }
    Ok(Some(StoredEncounter::new(
        measures,
        encounter_id,
        claim,
        stored.get(4),
        voided,
        units,
    )))
}

/// The number of audit records and the last one's hash.
pub async fn audit_head(client: &impl GenericClient) -> Result<ChainHead, StoreError> {
    let last = client
        .query_opt(
            "SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(match last {
        Some(row) => ChainHead {
            records: row.get(0),
            hash: hex(row.get(1)),
        },
        None => ChainHead {
            records: 0,
            hash: String::new(),
        },
    })
}

/// Audit records read per statement.
const AUDIT_PAGE: i64 = 10_000;

/// The audit trail checked from its first record, with the records written
/// at or after `since`.
pub async fn audit_trail(
    client: &impl GenericClient,
    since: &str,
) -> Result<Result<Vec<AuditRecord>, BrokenChain>, StoreError> {
    let mut check = ChainCheck::new(since);
    let mut after = 0i64;
    loop {
        let rows = client
            .query(
                "SELECT seq, at, caller, method, subject, outcome, hash FROM audit_trail
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &AUDIT_PAGE],
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(Ok(check.records));
        };
        after = last.get(0);
        for row in rows {
            let record = AuditRecord {
                seq: row.get(0),
                at: row.get(1),
                caller: row.get(2),
                method: row.get(3),
                subject: row.get(4),
                outcome: row.get(5),
                hash: String::new(),
            };
            if let Err(broken) = check.next(record, row.get(6)) {
                return Ok(Err(broken));
            }
        }
    }
}
