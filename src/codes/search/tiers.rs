//! The first page of a broad query without scoring every match.
//!
//! A query that matches most of a large code set (`in`, `injection`) would cost
//! a score for each of a hundred thousand codes, when a page shows twenty. Here
//! the codes matching every required word are found and counted as a set of
//! bits, one per document, which costs a pass over the postings and nothing per
//! code; only the codes that can reach the page are then scored, exactly as
//! [`super::intersect`] scores them.
//!
//! A code's score is a sum of parts: each query word's best match, the synonym
//! phrase it holds, the quantities it meets, weighed by its category, and its
//! prior. Each part that the postings give (a word, or the phrases) is a
//! component, with a cut: the codes at or above a component's cut have been
//! scored. A code below every cut scores less than the components' highest
//! scores below their cuts added up, plus the most that quantities and a prior
//! can add; once the page's worst code scores more than that, no code left
//! unscored can displace it, not even by a tie (an equal score would let its
//! code order decide), and the page is the full ranking's. Until then, each
//! round lowers one component's cut, the one that lowers that ceiling most for
//! its work, and scores the codes it reaches.
//!
//! Where each component's scores lie comes from a histogram in steps of 1/16 of
//! a point, made without a pass over the matching codes: a term scores by its
//! field bits alone, so its postings' field bytes are counted; only an
//! abbreviation's phrase, whose score depends on several postings, is scored.
//! A lowering reaches at least a few pages of codes, four times as many as
//! that component's last.

use std::{cell::RefCell, ops::Range};

use jiff::civil::Date;

use super::{
    doc_set::DocSet,
    index::SearchIndex,
    intersect::{met_quantities, spread_cost},
    plan::{QueryPlan, Role},
    rank::{
        Best, Candidate, CandidateSink, each_expansion_doc, each_word_score, expansion_score,
        named_histories, seek,
    },
    score_cuts::{Cut, STEPS, STEPS_PER_POINT, field_counts, step},
    standing::Admission,
    weights::{self, field_weight},
};
use crate::codes::{CodeFilter, CodeHistory, CodeRegistry};

/// What pruning made of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pruning {
    /// The page holds the best full matches, and every full match is counted.
    Ranked,
    /// No code passing the filters matches every required word.
    NoFullMatch,
    /// Scoring every match costs less (a narrow query, or a deep page); nothing
    /// was done.
    NotWorthIt,
}

/// Pruning pays once the rarest required word has postings for at least one
/// document in `BROAD_SHARE` (and at least `BROAD` postings): the intersection
/// then scores a match for a large part of the code set, where pruning reads
/// the query's postings once or twice and scores a few pages. Below, the
/// intersection costs less than pruning's passes and the plateaus of codes that
/// score alike (abbreviations and shared synonyms make them), which pruning
/// must score whole (measured in BENCHMARKS.md). Tests prune from far fewer postings, so that
/// the property tests' small code sets take this path too and are compared
/// with the full ranking.
const BROAD: usize = if cfg!(test) { 16 } else { 4096 };

/// See [`BROAD`].
const BROAD_SHARE: usize = if cfg!(test) { usize::MAX } else { 3 };

/// Pruning pays while the page reaches no further into the ranking than this
/// share of the rarest required word's documents.
const DEEPEST_PAGE_SHARE: usize = if cfg!(test) { 1 } else { 16 };

/// Scores a component's cut first reaches when lowered (at least four pages);
/// each later lowering reaches four times as many.
const FIRST_REACH: usize = 64;

/// Buffers reused across the queries of a thread.
#[derive(Debug, Default)]
struct Scratch {
    /// The documents matching every required word.
    matching: DocSet,
    /// The documents of one required word, while `matching` is narrowed.
    word: DocSet,
    /// The documents scored so far.
    scored: DocSet,
    /// Per component, how many of its scores fall in each step.
    histogram: Vec<u32>,
    /// The documents a round scores.
    rows: Vec<u32>,
    /// Their scores for each word and for the phrases.
    row_scores: Vec<f64>,
    /// Their field bits for each word of one expansion.
    expansion_bits: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The best `best.keeps()` codes passing `filter` on `as_of` that match every
/// required word of `plan`, ranked as [`super::intersect::full_matches`] ranks
/// them, with every such code counted in `best`; or why not.
pub(crate) fn full_matches(
    registry: &CodeRegistry,
    plan: &QueryPlan,
    filter: &CodeFilter,
    as_of: Date,
    best: &mut Best,
) -> Pruning {
    let index = registry.search_index();
    let histories = registry.histories();
    let costs: Vec<usize> = (0..plan.words.len())
        .map(|word| spread_cost(index, histories, plan, word))
        .collect();
    // As in the intersection, a required word no document holds is left out.
    let required: Vec<usize> = (0..plan.words.len())
        .filter(|word| plan.words[*word].required && costs[*word] > 0)
        .collect();
    let Some(rarest) = required.iter().map(|word| costs[*word]).min() else {
        return Pruning::NotWorthIt;
    };
    let broad = BROAD.max(index.documents() / BROAD_SHARE);
    if rarest < broad || best.keeps().saturating_mul(DEEPEST_PAGE_SHARE) > rarest {
        return Pruning::NotWorthIt;
    }
    let named_docs = plan
        .codes
        .iter()
        .map(|codes| {
            let named = named_histories(histories, &codes.target);
            match (named.start, named.end.checked_sub(1)) {
                (first, Some(last)) if first <= last => {
                    index.docs_of(first).start..index.docs_of(last).end
                }
                _ => 0..0,
            }
        })
        .collect();
    let query = Query {
        index,
        histories,
        plan,
        costs: &costs,
        named_docs,
        admission: Admission::new(registry, filter, as_of),
    };
    SCRATCH.with(|cell| query.rank(&required, &mut cell.borrow_mut(), best))
}

/// One query being pruned.
struct Query<'a> {
    index: &'a SearchIndex,
    histories: &'a [CodeHistory],
    plan: &'a QueryPlan,
    costs: &'a [usize],
    /// The documents each of the plan's codes names.
    named_docs: Vec<Range<u32>>,
    admission: Admission<'a>,
}

impl Query<'_> {
    fn rank(&self, required: &[usize], scratch: &mut Scratch, best: &mut Best) -> Pruning {
        let documents = self.index.documents();
        let Scratch {
            matching,
            word: word_docs,
            scored,
            histogram,
            rows,
            row_scores,
            expansion_bits,
        } = scratch;

        matching.reset(documents);
        for (nth, &word) in required.iter().enumerate() {
            let docs = if nth == 0 {
                &mut *matching
            } else {
                word_docs.reset(documents);
                &mut *word_docs
            };
            each_word_score(self.index, self.histories, self.plan, word, |doc, _| {
                docs.insert(doc)
            });
            if nth > 0 {
                matching.keep_common(word_docs);
            }
        }
        let total = matching
            .iter()
            .filter(|doc| self.admission.admits(*doc))
            .count();
        if total == 0 {
            return Pruning::NoFullMatch;
        }

        // Components: the words in order, then the phrases.
        let components = self.plan.words.len() + 1;
        histogram.clear();
        histogram.resize(components * STEPS, 0);
        let share = total as f64 / documents as f64;
        let reach = FIRST_REACH.max(4 * best.keeps());
        let mut cuts: Vec<Cut> = histogram
            .chunks_exact_mut(STEPS)
            .enumerate()
            .map(|(component, counts)| {
                self.estimate(component, share, counts);
                Cut::new(counts, self.postings(component), reach)
            })
            .collect();

        scored.reset(documents);
        let mut taken = 0;
        loop {
            let unscored = self.ceiling(&cuts);
            if best
                .worst_kept()
                .is_some_and(|worst| worst.score > unscored)
            {
                break;
            }
            let lowered = cuts
                .iter()
                .zip(histogram.chunks_exact(STEPS))
                .enumerate()
                .filter_map(|(component, (cut, counts))| {
                    cut.lowered(counts).map(|lowered| (component, lowered))
                })
                .max_by(|(_, a), (_, b)| a.worth.total_cmp(&b.worth));
            // Every document is scored: the page is exact.
            let Some((component, lowered)) = lowered else {
                break;
            };
            rows.clear();
            self.each_score(component, |doc, score| {
                if step(score) >= lowered.step && matching.contains(doc) && !scored.contains(doc) {
                    scored.insert(doc);
                    rows.push(doc);
                }
            });
            cuts[component] = lowered;
            rows.sort_unstable();
            taken += self.score(rows, row_scores, expansion_bits, best);
        }
        best.count_left_out(total - taken);
        Pruning::Ranked
    }

    /// Counts in `counts`, per step, about how many matching documents score
    /// that much in `component`: how many documents do, scaled by the `share`
    /// of documents that match. Every step a score of the component falls in
    /// holds a count. Terms are counted from their postings' field bits alone;
    /// abbreviations, whose scores depend on several postings, by scoring them.
    fn estimate(&self, component: usize, share: f64, counts: &mut [u32]) {
        let mut add = |score: f64, count: usize| {
            if count > 0 {
                let scaled = (count as f64 * share).ceil() as u32;
                counts[step(score)] += scaled.max(1);
            }
        };
        let (plan, index) = (self.plan, self.index);
        let Some(&cost) = self.costs.get(component) else {
            for phrase in &plan.phrases {
                add(phrase.score, index.phrase_docs(phrase.id).len());
            }
            return;
        };
        if cost == 0 {
            return;
        }
        for term in &plan.terms {
            if term.role == Role::Word(component) {
                let (_, fields) = index.postings(term.id);
                for (bits, count) in field_counts(fields).iter().enumerate() {
                    add(term.worth * field_weight(bits as u8), *count as usize);
                }
            }
        }
        let mut scored = vec![0u32; STEPS];
        for expansion in &plan.expansions {
            if expansion.word == component {
                each_expansion_doc(index, plan, expansion, |_, score| scored[step(score)] += 1);
            }
        }
        for (at, count) in scored.iter().enumerate() {
            add(at as f64 / STEPS_PER_POINT, *count as usize);
        }
        for codes in plan.codes.iter().filter(|codes| codes.word == component) {
            let named = named_histories(self.histories, &codes.target)
                .map(|history| index.docs_of(history).len())
                .sum();
            add(codes.score, named);
        }
    }

    /// Calls `visit` with each document a component scores in, and a score it
    /// gets there; the component's score is the best of them.
    fn each_score(&self, component: usize, mut visit: impl FnMut(u32, f64)) {
        if component < self.plan.words.len() {
            if self.costs[component] > 0 {
                each_word_score(self.index, self.histories, self.plan, component, visit);
            }
            return;
        }
        for phrase in &self.plan.phrases {
            for doc in self.index.phrase_docs(phrase.id) {
                visit(*doc, phrase.score);
            }
        }
    }

    /// The postings a pass over a component reads.
    fn postings(&self, component: usize) -> usize {
        match self.costs.get(component) {
            Some(cost) => *cost,
            None => self
                .plan
                .phrases
                .iter()
                .map(|phrase| self.index.phrase_docs(phrase.id).len())
                .sum(),
        }
    }

    /// Scores `rows` (in order) as the intersection would, gives the admitted
    /// ones to `best`, and answers how many it gave.
    fn score(
        &self,
        rows: &[u32],
        row_scores: &mut Vec<f64>,
        expansion_bits: &mut Vec<u8>,
        best: &mut Best,
    ) -> usize {
        // Row `i` holds document `rows[i]`'s score for each word, then its
        // phrase score.
        let width = self.plan.words.len() + 1;
        row_scores.clear();
        row_scores.resize(rows.len() * width, 0.0);
        let mut raise = |row: usize, column: usize, score: f64| {
            let slot = &mut row_scores[row * width + column];
            *slot = slot.max(score);
        };
        for term in &self.plan.terms {
            if let Role::Word(word) = term.role {
                let (docs, fields) = self.index.postings(term.id);
                each_shared(rows, docs, |row, at| {
                    raise(row, word, term.worth * field_weight(fields[at]))
                });
            }
        }
        for expansion in &self.plan.expansions {
            if self.costs[expansion.word] == 0 {
                continue;
            }
            // Row `i` holds document `rows[i]`'s field bits for each word of the
            // expansion.
            let words = expansion.components.len();
            expansion_bits.clear();
            expansion_bits.resize(rows.len() * words, 0);
            for (nth, component) in expansion.components.iter().enumerate() {
                let (docs, fields) = self.index.postings(self.plan.terms[*component].id);
                each_shared(rows, docs, |row, at| {
                    expansion_bits[row * words + nth] = fields[at];
                });
            }
            for (row, bits) in expansion_bits.chunks_exact(words).enumerate() {
                if !bits.contains(&0) {
                    raise(
                        row,
                        expansion.word,
                        expansion_score(self.plan, expansion, bits),
                    );
                }
            }
        }
        for (codes, named) in self.plan.codes.iter().zip(&self.named_docs) {
            // Documents are numbered in code order: the named ones are a run.
            let first = rows.partition_point(|doc| *doc < named.start);
            let end = rows.partition_point(|doc| *doc < named.end);
            for row in first..end {
                raise(row, codes.word, codes.score);
            }
        }
        for phrase in &self.plan.phrases {
            each_shared(rows, self.index.phrase_docs(phrase.id), |row, _| {
                raise(row, width - 1, phrase.score)
            });
        }

        let matched = u8::try_from(self.plan.required).unwrap_or(u8::MAX);
        let mut taken = 0;
        for (&doc, scores) in rows.iter().zip(row_scores.chunks_exact(width)) {
            let Some(prior) = self.admission.prior(doc) else {
                continue;
            };
            let (phrase, words) = scores.split_last().expect("a row ends with its phrase");
            // Summed in word order, as the intersection sums them.
            let words = words.iter().fold(0.0, |sum, score| sum + score);
            let quantities = met_quantities(self.plan, self.index, doc);
            let score = weights::total(words, *phrase, quantities, prior);
            best.take(Candidate {
                doc,
                score,
                matched,
            });
            taken += 1;
        }
        taken
    }

    /// The most a document below every cut can score. Each of its components
    /// scores less than its cut's ceiling, and the sum is formed in the order
    /// [`weights::total`] forms a score, so rounding cannot take a score above
    /// it; a category weight (at most 1) only lowers a score.
    fn ceiling(&self, cuts: &[Cut]) -> f64 {
        let (phrase, words) = cuts.split_last().expect("the phrases are a component");
        let words = words.iter().fold(0.0, |sum, cut| sum + cut.ceiling());
        let quantities = weights::QUANTITY * self.plan.quantities.len() as f64;
        words + phrase.ceiling() + quantities + weights::BONUS_CEILING
    }
}

/// Calls `visit` with the positions in `rows` and in `docs` of each document
/// both hold; both are in order. Walks `rows` and gallops through `docs`, so a
/// long list costs about what the rows cost.
fn each_shared(rows: &[u32], docs: &[u32], mut visit: impl FnMut(usize, usize)) {
    let mut from = 0;
    for (row, &doc) in rows.iter().enumerate() {
        from = seek(docs, from, doc);
        match docs.get(from) {
            Some(found) if *found == doc => visit(row, from),
            Some(_) => {}
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::codes::search::{Abbreviations, CodeFilter};

    #[test]
    fn broad_queries_are_pruned_and_exact() {
        let registry = CodeRegistry::built_in().unwrap();
        let filter = CodeFilter::default();
        let as_of = date(2025, 6, 1);
        let mut pruned = 0;
        for text in [
            "injection",
            "in",
            "nerve bl",
            "lumbar injection",
            "mbb",
            "spinal",
        ] {
            let plan = QueryPlan::new(text, registry.search_index(), Abbreviations::built_in());
            let mut best = Best::new(5);
            if full_matches(&registry, &plan, &filter, as_of, &mut best) != Pruning::Ranked {
                continue;
            }
            pruned += 1;
            let mut all = Vec::new();
            super::super::rank::with_index(&registry, &plan, &filter, as_of, &mut all);
            all.sort_unstable_by(super::super::rank::rank_order);
            assert_eq!(best.seen(), all.len(), "{text:?}");
            assert_eq!(best.into_ranked(), all[..all.len().min(5)], "{text:?}");
        }
        assert!(pruned >= 4, "{pruned}");
    }

    #[test]
    fn each_shared_finds_every_common_document() {
        let rows = [1, 4, 9, 10, 30, 31];
        let docs = [0, 1, 2, 3, 9, 11, 12, 13, 14, 15, 16, 17, 30, 40];
        let mut found = Vec::new();
        each_shared(&rows, &docs, |row, at| found.push((rows[row], docs[at])));
        assert_eq!(found, [(1, 1), (9, 9), (30, 30)]);
    }
}
