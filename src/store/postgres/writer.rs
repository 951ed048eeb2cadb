//! The writer of one replica: group commits of multi-row statements, each
//! transaction under [`WRITE_LOCK`] so that replicas write one at a time.
//!
//! A commit reads the stored state of every encounter its jobs name, plays
//! its jobs against that state in order (so two sends of one id in a batch
//! behave as they would one after the other), and then writes the outcome
//! in a handful of statements whatever the batch's size: new encounters,
//! changed ones, their marks, the units and totals of every group they
//! touched, and the audit records.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use deadpool_postgres::{Pool, Transaction};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::Row;

use super::{
    super::{
        PreparedRow, Recorded, StoreError, Voided,
        audit::{AuditEntry, chain},
        counting::{
            Redecision, StoredMark, StoredUnit, TotalsChanges, TotalsKey, redecision, stored_date,
            stored_diagnoses,
        },
        writer::{Done, Job, answer, gather, recording},
    },
    reads::{stored_mark, stored_marker},
    schema::WRITE_LOCK,
};
use crate::measures::{Counts, MarkedClaim, MeasureSet, PerformanceKind};

/// The meta row naming the measure set the database is counted under.
pub const MEASURE_SET_NAME: &str = "measure_set_version";

/// Why a commit failed, as its callers are told.
#[derive(Debug, Clone, Copy)]
enum Failure {
    Unreachable,
    OtherMeasures,
    Failed,
}

impl Failure {
    fn of(error: &StoreError) -> Failure {
        match error {
            StoreError::Unavailable(_) => Failure::Unreachable,
            StoreError::MeasuresDiffer => Failure::OtherMeasures,
            _ => Failure::Failed,
        }
    }

    fn error(self) -> StoreError {
        match self {
            Failure::Unreachable => StoreError::Unavailable("the write was not committed".into()),
            Failure::OtherMeasures => StoreError::MeasuresDiffer,
            Failure::Failed => StoreError::CommitFailed,
        }
    }
}

/// Commits the queued jobs until the store asks it to stop.
pub async fn run(
    pool: Pool,
    mut jobs: mpsc::Receiver<Job>,
    measures: std::sync::Arc<MeasureSet>,
    set_version: String,
    reachable: watch::Receiver<bool>,
) {
    let mut stopping: Option<oneshot::Sender<()>> = None;
    while let Some(first) = jobs.recv().await {
        let batch = gather(&mut jobs, first, &mut stopping);
        if batch.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let written = if *reachable.borrow() {
            write(&pool, &batch, &measures, &set_version).await
        } else {
            Err(StoreError::Unavailable(
                "the watcher cannot reach it".into(),
            ))
        };
        crate::metrics::store_committed(started.elapsed());
        let written = written.map_err(|error| {
            tracing::error!(%error, jobs = batch.len(), "store commit failed; the batch was rolled back");
            Failure::of(&error)
        });
        answer(batch, written, Failure::error);
    }
    if let Some(done) = stopping {
        let _ = done.send(());
    }
}

/// An encounter's content: as stored, or as a row of this batch.
enum Content<'a> {
    Stored(&'a Row),
    Written(&'a PreparedRow),
}

impl Content<'_> {
    fn columns(&self) -> (&[u8], &str, &str, &str, &str) {
        match self {
            Content::Stored(row) => (row.get(1), row.get(2), row.get(3), row.get(4), row.get(5)),
            Content::Written(row) => (
                &row.patient_hash,
                &row.npi,
                &row.tin,
                &row.service_date_text,
                &row.claim_json,
            ),
        }
    }

    fn same_as(&self, row: &PreparedRow) -> bool {
        self.columns() == Content::Written(row).columns()
    }
}

/// One encounter as the batch leaves it.
struct State<'a> {
    content: Content<'a>,
    voided: bool,
    revision: i64,
    in_database: bool,
    changed: bool,
}

/// The encounters a statement writes, column by column.
#[derive(Default)]
struct EncounterColumns<'a> {
    ids: Vec<&'a str>,
    hashes: Vec<&'a [u8]>,
    npis: Vec<&'a str>,
    tins: Vec<&'a str>,
    dates: Vec<&'a str>,
    claims: Vec<&'a str>,
    voided: Vec<bool>,
    revisions: Vec<i64>,
}

impl<'a> EncounterColumns<'a> {
    fn push(&mut self, id: &'a str, state: &'a State<'a>) {
        let (hash, npi, tin, date, claim) = state.content.columns();
        self.ids.push(id);
        self.hashes.push(hash);
        self.npis.push(npi);
        self.tins.push(tin);
        self.dates.push(date);
        self.claims.push(claim);
        self.voided.push(state.voided);
        self.revisions.push(state.revision);
    }
}

/// The columns of the unnested rows the encounter statements read.
const ENCOUNTER_ROWS: &str = "unnest($1::text[], $2::bytea[], $3::text[], $4::text[], \
     $5::text[], $6::text[], $7::bool[], $8::bigint[]) AS v(encounter_id, patient_hash, \
     provider_id, tin, service_date, claim, voided, revision)";

/// Applies a batch in one transaction and commits: what each job did.
async fn write(
    pool: &Pool,
    batch: &[Job],
    measures: &MeasureSet,
    set_version: &str,
) -> Result<Vec<Done>, StoreError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let counted: Option<Vec<u8>> = transaction
        .query_one(
            "SELECT (SELECT value FROM meta WHERE name = $2) FROM pg_advisory_xact_lock($1)",
            &[&WRITE_LOCK, &MEASURE_SET_NAME],
        )
        .await?
        .get(0);
    if counted.as_deref() != Some(set_version.as_bytes()) {
        return Err(StoreError::MeasuresDiffer);
    }
    let mut ids: Vec<&str> = batch
        .iter()
        .flat_map(|job| match job {
            Job::Write { rows, .. } => rows.iter().map(|row| row.encounter_id.as_str()).collect(),
            Job::Void { encounter_id, .. } => vec![encounter_id.as_str()],
            _ => Vec::new(),
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let stored = if ids.is_empty() {
        Vec::new()
    } else {
        transaction
            .query(
                "SELECT encounter_id, patient_hash, provider_id, tin, service_date, claim, voided,
                        revision
                 FROM encounters WHERE encounter_id = ANY($1)",
                &[&ids],
            )
            .await?
    };
    let mut states: BTreeMap<&str, State<'_>> = stored
        .iter()
        .map(|row| {
            let state = State {
                content: Content::Stored(row),
                voided: row.get(6),
                revision: row.get(7),
                in_database: true,
                changed: false,
            };
            (row.get(0), state)
        })
        .collect();
    let done = play(batch, &mut states);

    let mut inserted = EncounterColumns::default();
    let mut updated = EncounterColumns::default();
    let mut marked = Vec::new();
    for (&id, state) in &states {
        if !state.changed {
            continue;
        }
        if state.in_database {
            updated.push(id, state);
        } else {
            inserted.push(id, state);
        }
        if let (Content::Written(row), false) = (&state.content, state.voided) {
            marked.push(*row);
        }
    }
    for (statement, columns) in [
        (
            format!("INSERT INTO encounters SELECT * FROM {ENCOUNTER_ROWS}"),
            &inserted,
        ),
        (
            format!(
                "UPDATE encounters AS e SET patient_hash = v.patient_hash,
                     provider_id = v.provider_id, tin = v.tin, service_date = v.service_date,
                     claim = v.claim, voided = v.voided, revision = v.revision
                 FROM {ENCOUNTER_ROWS} WHERE e.encounter_id = v.encounter_id"
            ),
            &updated,
        ),
    ] {
        if !columns.ids.is_empty() {
            transaction
                .execute(
                    &statement,
                    &[
                        &columns.ids,
                        &columns.hashes,
                        &columns.npis,
                        &columns.tins,
                        &columns.dates,
                        &columns.claims,
                        &columns.voided,
                        &columns.revisions,
                    ],
                )
                .await?;
        }
    }
    let mut touched = BTreeSet::new();
    if !updated.ids.is_empty() {
        for row in transaction
            .query(
                "DELETE FROM claim_marks WHERE encounter_id = ANY($1) RETURNING group_id",
                &[&updated.ids],
            )
            .await?
        {
            touched.insert(row.get::<_, i64>(0));
        }
    }
    let marks: Vec<NewMark<'_>> = marked
        .iter()
        .flat_map(|row| {
            row.marks.iter().map(|mark| NewMark {
                group: GroupRef {
                    measure_id: &mark.measure_id,
                    stratum: mark.stratum,
                    tin: &row.tin,
                    npi: &row.npi,
                    patient_hash: &row.patient_hash,
                    bucket: &mark.bucket,
                },
                encounter_id: &row.encounter_id,
                service_date: &row.service_date_text,
                marker: mark.marker,
                weight: mark.weight,
                diagnoses: &mark.diagnoses,
            })
        })
        .collect();
    add_marks(&transaction, &marks, touched, measures).await?;
    append_audit(&transaction, batch).await?;
    transaction.commit().await?;
    Ok(done)
}

/// Plays the batch's jobs in order against `states`, the stored state of
/// every encounter they name: what each did.
fn play<'a>(batch: &'a [Job], states: &mut BTreeMap<&'a str, State<'a>>) -> Vec<Done> {
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Write { rows, .. } => {
                let results = rows
                    .iter()
                    .map(|row| {
                        let id = row.encounter_id.as_str();
                        let before = states
                            .get(id)
                            .map(|state| (state.content.same_as(row), state.voided));
                        let recorded = recording(before, row.replace);
                        match recorded {
                            Recorded::Stored => {
                                let state = State {
                                    content: Content::Written(row),
                                    voided: false,
                                    revision: 1,
                                    in_database: false,
                                    changed: true,
                                };
                                states.insert(id, state);
                            }
                            Recorded::Replaced => {
                                if let Some(state) = states.get_mut(id) {
                                    state.content = Content::Written(row);
                                    state.voided = false;
                                    state.revision += 1;
                                    state.changed = true;
                                }
                            }
                            _ => {}
                        }
                        recorded
                    })
                    .collect();
                done.push(Done::Written(results));
            }
            Job::Void { encounter_id, .. } => {
                let voided = match states.get_mut(encounter_id.as_str()) {
                    None => Voided::NotFound,
                    Some(state) if state.voided => Voided::AlreadyVoided,
                    Some(state) => {
                        state.voided = true;
                        state.revision += 1;
                        state.changed = true;
                        Voided::Voided
                    }
                };
                done.push(Done::Voided(voided));
            }
            Job::Audit { .. } => done.push(Done::Audited),
            Job::Stop { .. } => {}
        }
    }
    done
}

/// A group's key, borrowed from the rows of a batch.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupRef<'a> {
    pub measure_id: &'a str,
    pub stratum: i64,
    pub tin: &'a str,
    pub npi: &'a str,
    pub patient_hash: &'a [u8],
    pub bucket: &'a str,
}

/// A claim's mark to add to its group.
pub struct NewMark<'a> {
    pub group: GroupRef<'a>,
    pub encounter_id: &'a str,
    pub service_date: &'a str,
    pub marker: Option<PerformanceKind>,
    pub weight: u32,
    pub diagnoses: &'a str,
}

/// Adds `marks` to their groups, making the groups that do not exist yet,
/// and decides again those groups and the `touched` ones (whose marks were
/// removed): see [`redecide`].
pub async fn add_marks(
    transaction: &Transaction<'_>,
    marks: &[NewMark<'_>],
    touched: BTreeSet<i64>,
    measures: &MeasureSet,
) -> Result<(), StoreError> {
    let numbered = group_ids(transaction, marks).await?;
    let mut groups: BTreeMap<i64, Touched> = touched
        .into_iter()
        .map(|group| (group, Touched::default()))
        .collect();
    for (&(group, made), mark) in numbered.iter().zip(marks) {
        let touched = groups.entry(group).or_default();
        touched.made |= made;
        touched.key.get_or_insert_with(|| TotalsKey {
            measure_id: mark.group.measure_id.to_string(),
            stratum: mark.group.stratum,
            tin: mark.group.tin.to_string(),
            npi: mark.group.npi.to_string(),
            bucket: mark.group.bucket.to_string(),
        });
    }
    let new_marks: Vec<(i64, &NewMark<'_>)> = numbered
        .into_iter()
        .map(|(group, _)| group)
        .zip(marks)
        .collect();
    redecide(transaction, groups, &new_marks, measures).await
}

/// A group a transaction touched, as far as it knows it already.
#[derive(Default)]
struct Touched {
    /// Made in this transaction: nothing of it is stored yet.
    made: bool,
    /// Its totals key, when a new mark named it.
    key: Option<TotalsKey>,
}

/// The number of each mark's group, making the groups that do not exist yet,
/// and whether it was made now.
async fn group_ids<'a>(
    transaction: &Transaction<'_>,
    marks: &[NewMark<'a>],
) -> Result<Vec<(i64, bool)>, StoreError> {
    if marks.is_empty() {
        return Ok(Vec::new());
    }
    let mut position: HashMap<GroupRef<'a>, usize> = HashMap::new();
    let mut groups = Vec::new();
    let key_of_mark: Vec<usize> = marks
        .iter()
        .map(|mark| {
            *position.entry(mark.group).or_insert_with(|| {
                groups.push(mark.group);
                groups.len() - 1
            })
        })
        .collect();
    let keys: Vec<[u8; GROUP_KEY_BYTES]> = groups.iter().map(GroupRef::key).collect();
    let key_columns: Vec<&[u8]> = keys.iter().map(|key| &key[..]).collect();
    let mut numbers: HashMap<[u8; GROUP_KEY_BYTES], (i64, bool)> =
        HashMap::with_capacity(groups.len());
    for row in transaction
        .query(
            "SELECT group_key, group_id FROM groups WHERE group_key = ANY($1)",
            &[&key_columns],
        )
        .await?
    {
        numbers.insert(stored_group_key(row.get(0))?, (row.get(1), false));
    }
    let missing: Vec<usize> = (0..groups.len())
        .filter(|&position| !numbers.contains_key(&keys[position]))
        .collect();
    if !missing.is_empty() {
        // The write lock keeps every other writer out, so no group can
        // appear between the look-up and the insert.
        let column = |pick: fn(&GroupRef<'a>) -> &'a str| {
            missing
                .iter()
                .map(|&position| pick(&groups[position]))
                .collect::<Vec<_>>()
        };
        let made_keys: Vec<&[u8]> = missing
            .iter()
            .map(|&position| key_columns[position])
            .collect();
        let stratums: Vec<i64> = missing
            .iter()
            .map(|&position| groups[position].stratum)
            .collect();
        let hashes: Vec<&[u8]> = missing
            .iter()
            .map(|&position| groups[position].patient_hash)
            .collect();
        let made = transaction
            .query(
                "INSERT INTO groups (group_key, measure_id, stratum, tin, npi, patient_hash, bucket)
                 SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::text[],
                                      $5::text[], $6::bytea[], $7::text[])
                 RETURNING group_key, group_id",
                &[
                    &made_keys,
                    &column(|group| group.measure_id),
                    &stratums,
                    &column(|group| group.tin),
                    &column(|group| group.npi),
                    &hashes,
                    &column(|group| group.bucket),
                ],
            )
            .await?;
        for row in made {
            numbers.insert(stored_group_key(row.get(0))?, (row.get(1), true));
        }
    }
    key_of_mark
        .iter()
        .map(|&position| {
            numbers
                .get(&keys[position])
                .copied()
                .ok_or_else(|| StoreError::Corrupt("a group was neither found nor made".into()))
        })
        .collect()
}

fn stored_group_key(key: &[u8]) -> Result<[u8; GROUP_KEY_BYTES], StoreError> {
    key.try_into()
        .map_err(|_| StoreError::Corrupt(format!("a group key of {} bytes", key.len())))
}

/// Bytes of a group's key: SHA-256 cut to 128 bits, where two groups of
/// the same key would take billions of billions of groups.
const GROUP_KEY_BYTES: usize = 16;

impl GroupRef<'_> {
    /// The group's key: a hash of its six columns, each with its length, so
    /// that no two groups' columns run together alike.
    fn key(&self) -> [u8; GROUP_KEY_BYTES] {
        let mut hasher = Sha256::new();
        for field in [
            self.measure_id.as_bytes(),
            &self.stratum.to_be_bytes(),
            self.tin.as_bytes(),
            self.npi.as_bytes(),
            self.patient_hash,
            self.bucket.as_bytes(),
        ] {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field);
        }
        let digest = hasher.finalize();
        let mut key = [0; GROUP_KEY_BYTES];
        key.copy_from_slice(&digest[..GROUP_KEY_BYTES]);
        key
    }
}

/// Decides the `groups` again from their stored marks and `new_marks` (each
/// with its group), stores the new marks in the units
/// decided for them, moves the stored marks whose unit changed, replaces
/// the units that changed, and adds the differences to the totals. Groups
/// of a measure no longer in force are left as they are.
///
/// The new marks are written once, already placed, rather than written and
/// then placed: an import's every mark is new. Groups made in this
/// transaction have nothing stored to read, and the keys new marks named
/// need no reading either: an import of new patients reads little.
async fn redecide(
    transaction: &Transaction<'_>,
    groups: BTreeMap<i64, Touched>,
    new_marks: &[(i64, &NewMark<'_>)],
    measures: &MeasureSet,
) -> Result<(), StoreError> {
    if groups.is_empty() {
        return Ok(());
    }
    let stored: Vec<i64> = groups
        .iter()
        .filter(|(_, touched)| !touched.made)
        .map(|(&group, _)| group)
        .collect();
    let unnamed: Vec<i64> = groups
        .iter()
        .filter(|(_, touched)| touched.key.is_none())
        .map(|(&group, _)| group)
        .collect();
    let mut marks: HashMap<i64, Vec<StoredMark>> = HashMap::new();
    for row in transaction
        .query(
            "SELECT group_id, encounter_id, service_date, marker, weight, diagnoses, unit_no
             FROM claim_marks WHERE group_id = ANY($1)",
            &[&stored],
        )
        .await?
    {
        marks
            .entry(row.get(0))
            .or_default()
            .push(stored_mark(&row)?);
    }
    let mut unplaced: HashMap<i64, HashMap<&str, &NewMark<'_>>> = HashMap::new();
    for &(group, mark) in new_marks {
        marks.entry(group).or_default().push(StoredMark {
            encounter_id: mark.encounter_id.to_string(),
            claim: MarkedClaim {
                service_date: stored_date(mark.service_date)?,
                marker: mark.marker,
                weight: mark.weight,
                diagnoses: stored_diagnoses(mark.diagnoses)?,
            },
            unit_no: UNPLACED,
        });
        unplaced
            .entry(group)
            .or_default()
            .insert(mark.encounter_id, mark);
    }
    let mut units: HashMap<i64, Vec<StoredUnit>> = HashMap::new();
    for row in transaction
        .query(
            "SELECT group_id, marker, weight, first_date, last_date
             FROM units WHERE group_id = ANY($1) ORDER BY group_id, unit_no",
            &[&stored],
        )
        .await?
    {
        units.entry(row.get(0)).or_default().push(StoredUnit {
            marker: stored_marker(row.get(1))?,
            weight: u32::try_from(row.get::<_, i64>(2)).unwrap_or_default(),
            first: row.get(3),
            last: row.get(4),
        });
    }
    let mut changes = TotalsChanges::new();
    let mut replaced = Vec::new();
    let mut new_units = UnitColumns::default();
    let mut moved = (Vec::new(), Vec::new(), Vec::new());
    let mut placed_new = MarkColumns::default();
    let mut keys: HashMap<i64, TotalsKey> = HashMap::new();
    for row in transaction
        .query(
            "SELECT group_id, measure_id, stratum, tin, npi, bucket
             FROM groups WHERE group_id = ANY($1)",
            &[&unnamed],
        )
        .await?
    {
        let key = TotalsKey {
            measure_id: row.get(1),
            stratum: row.get(2),
            tin: row.get(3),
            npi: row.get(4),
            bucket: row.get(5),
        };
        keys.insert(row.get(0), key);
    }
    for (group, touched) in groups {
        let made = touched.made;
        let Some(totals) = touched.key.or_else(|| keys.remove(&group)) else {
            return Err(StoreError::Corrupt(format!("group {group} is not stored")));
        };
        let Some(measure) = measures.get(&totals.measure_id) else {
            continue;
        };
        let Redecision {
            units: decided,
            moved: placed,
            change,
        } = redecision(
            measure,
            marks.remove(&group).unwrap_or_default(),
            units.get(&group).map_or(&[], Vec::as_slice),
        );
        if let Some(decided) = decided {
            if !made {
                replaced.push(group);
            }
            for (number, unit) in decided.into_iter().enumerate() {
                new_units.push(group, number as i64, unit);
            }
        }
        for (encounter_id, unit_no) in placed {
            let new = unplaced
                .get_mut(&group)
                .and_then(|marks| marks.remove(encounter_id.as_str()));
            match new {
                Some(mark) => placed_new.push(group, mark, unit_no),
                None => {
                    moved.0.push(group);
                    moved.1.push(encounter_id);
                    moved.2.push(unit_no);
                }
            }
        }
        if change != Counts::default() {
            changes.entry(totals).or_default().add(&change);
        }
    }
    if !replaced.is_empty() {
        transaction
            .execute("DELETE FROM units WHERE group_id = ANY($1)", &[&replaced])
            .await?;
    }
    if !new_units.groups.is_empty() {
        transaction
            .execute(
                "INSERT INTO units (group_id, unit_no, marker, weight, first_date, last_date)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],
                                      $5::text[], $6::text[])",
                &[
                    &new_units.groups,
                    &new_units.numbers,
                    &new_units.markers,
                    &new_units.weights,
                    &new_units.firsts,
                    &new_units.lasts,
                ],
            )
            .await?;
    }
    if !moved.0.is_empty() {
        transaction
            .execute(
                "UPDATE claim_marks AS c SET unit_no = v.unit_no
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[])
                     AS v(group_id, encounter_id, unit_no)
                 WHERE c.group_id = v.group_id AND c.encounter_id = v.encounter_id",
                &[&moved.0, &moved.1, &moved.2],
            )
            .await?;
    }
    // Marks in groups of a measure no longer in force are kept unplaced,
    // as the embedded store keeps them.
    for (group, marks) in unplaced {
        for mark in marks.into_values() {
            placed_new.push(group, mark, UNPLACED);
        }
    }
    if !placed_new.groups.is_empty() {
        transaction
            .execute(
                "INSERT INTO claim_marks
                     (group_id, encounter_id, service_date, marker, weight, diagnoses, unit_no)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[],
                                      $5::bigint[], $6::text[], $7::bigint[])",
                &[
                    &placed_new.groups,
                    &placed_new.ids,
                    &placed_new.dates,
                    &placed_new.markers,
                    &placed_new.weights,
                    &placed_new.diagnoses,
                    &placed_new.units,
                ],
            )
            .await?;
    }
    apply(transaction, changes).await
}

/// The unit number of a mark not yet placed in a unit.
const UNPLACED: i64 = -1;

/// New marks, column by column.
#[derive(Default)]
struct MarkColumns<'a> {
    groups: Vec<i64>,
    ids: Vec<&'a str>,
    dates: Vec<&'a str>,
    markers: Vec<Option<i64>>,
    weights: Vec<i64>,
    diagnoses: Vec<&'a str>,
    units: Vec<i64>,
}

impl<'a> MarkColumns<'a> {
    fn push(&mut self, group: i64, mark: &NewMark<'a>, unit: i64) {
        self.groups.push(group);
        self.ids.push(mark.encounter_id);
        self.dates.push(mark.service_date);
        self.markers
            .push(mark.marker.map(|marker| i64::from(marker.number())));
        self.weights.push(i64::from(mark.weight));
        self.diagnoses.push(mark.diagnoses);
        self.units.push(unit);
    }
}

/// New units, column by column.
#[derive(Default)]
struct UnitColumns {
    groups: Vec<i64>,
    numbers: Vec<i64>,
    markers: Vec<Option<i64>>,
    weights: Vec<i64>,
    firsts: Vec<String>,
    lasts: Vec<String>,
}

impl UnitColumns {
    fn push(&mut self, group: i64, number: i64, unit: StoredUnit) {
        self.groups.push(group);
        self.numbers.push(number);
        self.markers
            .push(unit.marker.map(|marker| i64::from(marker.number())));
        self.weights.push(i64::from(unit.weight));
        self.firsts.push(unit.first);
        self.lasts.push(unit.last);
    }
}

/// Adds `changes` to the totals, in key order so that no two writers could
/// wait on each other's rows.
async fn apply(transaction: &Transaction<'_>, changes: TotalsChanges) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let changes: BTreeMap<TotalsKey, Counts> = changes.into_iter().collect();
    let text = |pick: fn(&TotalsKey) -> &str| changes.keys().map(pick).collect::<Vec<_>>();
    let count = |pick: fn(&Counts) -> i64| changes.values().map(pick).collect::<Vec<_>>();
    let stratums: Vec<i64> = changes.keys().map(|key| key.stratum).collect();
    transaction
        .execute(
            "INSERT INTO totals (measure_id, stratum, tin, npi, bucket,
                 eligible, met, not_met, exclusions, exceptions)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                                  $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[],
                                  $10::bigint[])
             ON CONFLICT (measure_id, stratum, tin, npi, bucket) DO UPDATE SET
                 eligible = totals.eligible + excluded.eligible,
                 met = totals.met + excluded.met,
                 not_met = totals.not_met + excluded.not_met,
                 exclusions = totals.exclusions + excluded.exclusions,
                 exceptions = totals.exceptions + excluded.exceptions",
            &[
                &text(|key| &key.measure_id),
                &stratums,
                &text(|key| &key.tin),
                &text(|key| &key.npi),
                &text(|key| &key.bucket),
                &count(|counts| counts.eligible_population),
                &count(|counts| counts.met),
                &count(|counts| counts.not_met),
                &count(|counts| counts.exclusions),
                &count(|counts| counts.exceptions),
            ],
        )
        .await?;
    Ok(())
}

/// Appends the batch's audit records, chained to the last one stored.
async fn append_audit(transaction: &Transaction<'_>, batch: &[Job]) -> Result<(), StoreError> {
    let entries: Vec<&[AuditEntry]> = batch
        .iter()
        .filter_map(|job| match job {
            Job::Audit { entries, .. } => Some(entries.as_slice()),
            _ => None,
        })
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let (mut seq, mut previous) = transaction
        .query_opt(
            "SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?
        .map_or((0, Vec::new()), |row| (row.get(0), row.get(1)));
    let at = jiff::Timestamp::now().to_string();
    let mut links = Vec::new();
    for entries in entries {
        let chained = chain(seq, &previous, &at, entries);
        if let Some(last) = chained.last() {
            seq = last.seq;
            previous = last.hash.to_vec();
        }
        links.extend(chained);
    }
    let seqs: Vec<i64> = links.iter().map(|link| link.seq).collect();
    let ats: Vec<&str> = links.iter().map(|_| at.as_str()).collect();
    let callers: Vec<&str> = links.iter().map(|link| link.caller).collect();
    let methods: Vec<&str> = links.iter().map(|link| link.method).collect();
    let subjects: Vec<&str> = links.iter().map(|link| link.subject).collect();
    let outcomes: Vec<&str> = links.iter().map(|link| link.outcome).collect();
    let hashes: Vec<&[u8]> = links.iter().map(|link| &link.hash[..]).collect();
    transaction
        .execute(
            "INSERT INTO audit_trail (seq, at, caller, method, subject, outcome, hash)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::bytea[])",
            &[
                &seqs, &ats, &callers, &methods, &subjects, &outcomes, &hashes,
            ],
        )
        .await?;
    Ok(())
}
