//! The counting thread: adds each commit's outcomes to the running totals, then
//! answers the commit's callers.
//!
//! It runs beside the writer so that the writer goes back to SQLite as soon as a
//! commit is durable: judging replaced versions again, updating the totals,
//! answering and freeing the rows all happen here, while the writer fills the
//! next transaction. Commits arrive in the order they were made, so totals
//! change in that order too, and a caller is answered only once its rows are
//! counted (a report asked for after an answer includes the encounter).

use std::sync::{Arc, RwLock, mpsc};

use super::{Recorded, pending::PendingRows, writer::Reply};
use crate::{
    measures::{Claim, MeasureSet, PerformanceTotals},
    scheduling::CooperativeYield,
};

/// Committed batches waiting to be counted; the writer waits when this many
/// are, so totals and answers never fall far behind the disk.
pub const QUEUED_COMMITS: usize = 4;

/// A change to the totals that a commit made.
pub enum TotalsChange {
    /// The row at this index of the commit was stored for the first time.
    Add(usize),
    /// The row at `index` replaced `previous`, which no longer counts.
    Replace { index: usize, previous: Claim },
}

/// One durable commit: its callers' rows, a result per row, and what changed.
pub struct Commit {
    pub batch: Vec<(PendingRows, Reply)>,
    pub results: Vec<Recorded>,
    pub changes: Vec<TotalsChange>,
}

pub struct Counter {
    pub commits: mpsc::Receiver<Commit>,
    pub totals: Arc<RwLock<PerformanceTotals>>,
    pub measures: Arc<MeasureSet>,
}

impl Counter {
    /// Counts and answers commits until the writer hangs up.
    pub fn run(self) {
        while let Ok(commit) = self.commits.recv() {
            self.count(&commit.batch, commit.changes);
            let mut results = commit.results.into_iter();
            let mut turns = CooperativeYield::new();
            for (rows, reply) in commit.batch {
                turns.between_items();
                let answer: Vec<Recorded> = results.by_ref().take(rows.len()).collect();
                let _ = reply.send(Ok(answer));
            }
        }
    }

    /// Adds a commit's changes to the running totals. Readers take the same
    /// lock from async code, so it is held for at most a few dozen changes at
    /// a time, and replaced versions are judged before it is taken. A report
    /// may see part of a commit whose callers are not answered yet; every row
    /// it sees is durable.
    fn count(&self, batch: &[(PendingRows, Reply)], changes: Vec<TotalsChange>) {
        // About a tenth of a millisecond of counting: a look-up that wakes
        // meanwhile waits no longer for this thread to yield its core.
        const CHANGES_PER_LOCK: usize = 64;
        // Changes come in row order, so one pass over the rows finds them all.
        let mut rows = batch.iter().flat_map(|(rows, _)| rows.iter()).enumerate();
        let mut deltas = Vec::with_capacity(changes.len());
        let mut judged = Vec::new();
        for change in changes {
            match change {
                TotalsChange::Add(index) => deltas.push((index, None)),
                TotalsChange::Replace { index, previous } => {
                    let before = self.measures.outcomes(&previous);
                    judged.push((previous, before));
                    deltas.push((index, Some(judged.len() - 1)));
                }
            }
        }
        let mut turns = CooperativeYield::new();
        for part in deltas.chunks(CHANGES_PER_LOCK) {
            // Never while holding the lock: readers would wait longer.
            turns.between_items();
            let mut totals = self.totals.write().unwrap_or_else(|p| p.into_inner());
            for (index, replaced) in part {
                if let Some(replaced) = replaced {
                    let (previous, before) = &judged[*replaced];
                    totals.apply(&previous.provider_id, previous.service_date, before, -1);
                }
                let Some((_, row)) = rows.find(|(position, _)| position == index) else {
                    unreachable!("a change names a row of its commit, in row order");
                };
                totals.apply(row.provider_id, row.service_date, row.outcomes, 1);
            }
        }
    }
}
