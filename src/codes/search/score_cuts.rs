//! Where a pruned query's component scores lie, and where each is cut.
//!
//! [`super::tiers`] ranks a broad query's first page by scoring only the codes
//! whose component scores are at or above a cut. It learns where the scores lie
//! from a histogram per component in steps of 1/16 of a point, and lowers one
//! cut at a time; a [`Cut`] knows the highest score left below it (the
//! ceiling that unscored codes cannot pass) and what lowering it would gain
//! for the work.

/// Scoring a document costs about this many postings read in a pass.
const SCORE_COST: usize = 64;

/// Histogram steps per point of score.
pub(super) const STEPS_PER_POINT: f64 = 16.0;

/// Histogram steps; the last holds every higher score too (a code named
/// outright scores hundreds).
pub(super) const STEPS: usize = 64 * 16;

/// The histogram step of a component score.
pub(super) fn step(score: f64) -> usize {
    // Multiplying by a power of two is exact, so `step(score) >= cut` exactly
    // when `score >= cut / STEPS_PER_POINT`.
    ((score * STEPS_PER_POINT) as usize).min(STEPS - 1)
}

/// Where a component's scores are cut: the documents scoring at or above step
/// `step` in it are scored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cut {
    pub(super) step: usize,
    /// One past the highest step below `step` that holds a score: the
    /// component's scores below the cut are below this step.
    below: usize,
    /// How many scores lowering the cut should reach next.
    reach: usize,
    /// The postings a pass over the component reads.
    postings: usize,
    /// Ceiling gained per unit of work, when this is a lowered cut.
    pub(super) worth: f64,
}

impl Cut {
    /// Nothing scored yet.
    pub(super) fn new(counts: &[u32], postings: usize, reach: usize) -> Cut {
        Cut {
            step: STEPS,
            below: below(counts, STEPS),
            reach,
            postings,
            worth: 0.0,
        }
    }

    pub(super) fn ceiling(&self) -> f64 {
        self.below as f64 / STEPS_PER_POINT
    }

    /// The cut lowered to reach `reach` more scores (or every one left), with
    /// what that gains for its work; `None` when every score is above it.
    pub(super) fn lowered(&self, counts: &[u32]) -> Option<Cut> {
        let mut held = 0usize;
        let mut lowest = None;
        for (step, count) in counts[..self.below].iter().enumerate().rev() {
            if *count > 0 {
                held += *count as usize;
                lowest = Some(step);
                if held >= self.reach {
                    break;
                }
            }
        }
        let step = lowest?;
        let below = below(counts, step);
        let gain = (self.below - below) as f64 / STEPS_PER_POINT;
        Some(Cut {
            step,
            below,
            reach: self.reach.saturating_mul(4),
            postings: self.postings,
            worth: gain / (held * SCORE_COST + self.postings) as f64,
        })
    }
}

/// One past the highest step below `step` that holds a score; 0 for none.
fn below(counts: &[u32], step: usize) -> usize {
    counts[..step]
        .iter()
        .rposition(|count| *count > 0)
        .map_or(0, |at| at + 1)
}

/// How many postings hold each set of field bits.
pub(super) fn field_counts(fields: &[u8]) -> [u32; 128] {
    let mut counts = [0u32; 128];
    for bits in fields {
        counts[usize::from(bits & 0x7f)] += 1;
    }
    counts
}
