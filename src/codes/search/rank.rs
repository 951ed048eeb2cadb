//! Ranking with the index. The usual case, codes matching every required word, is
//! found by intersection ([`super::intersect`]); when none does, every word's
//! postings are followed into per-document accumulators that count the words each
//! code matches, and the codes matching the most are kept (the graceful fallback).
//!
//! The accumulators are dense arrays, one slot per document, reused across the
//! queries of a thread; only the slots a query touched are reset, so a query
//! costs what its postings cost, not what the corpus costs.

use std::{cell::RefCell, collections::BinaryHeap};

use jiff::civil::Date;

use super::{
    index::SearchIndex,
    intersect,
    plan::{CodeTarget, Expansion, QueryPlan, Role},
    standing::Admission,
    tiers::{self, Pruning},
    weights::{self, field_weight},
};
use crate::codes::{CodeFilter, CodeHistory, CodeRegistry};

/// A document that matched, with its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    /// The document (documents are numbered in code order).
    pub doc: u32,
    /// Its score.
    pub score: f64,
    /// How many required query words it matched.
    pub matched: u8,
}

/// Best first; equal scores in code order, which is document order.
pub(crate) fn rank_order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc))
}

/// Where ranking puts each candidate it finds.
pub(crate) trait CandidateSink {
    /// One more candidate, in no particular order.
    fn take(&mut self, candidate: Candidate);
}

impl CandidateSink for Vec<Candidate> {
    fn take(&mut self, candidate: Candidate) {
        self.push(candidate);
    }
}

/// Orders a heap so that its top is the worst candidate kept.
#[derive(Debug)]
struct Ranked(Candidate);

impl PartialEq for Ranked {
    fn eq(&self, other: &Ranked) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Ranked) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Ranked) -> std::cmp::Ordering {
        rank_order(&self.0, &other.0)
    }
}

/// The `count` best candidates and how many there were, kept in one pass with
/// a heap of `count`: a broad query's ranking costs its matches, neither a sort
/// of them nor a list of them.
#[derive(Debug)]
pub(crate) struct Best {
    count: usize,
    seen: usize,
    heap: BinaryHeap<Ranked>,
}

impl Best {
    /// Keeps the best `count`.
    pub fn new(count: usize) -> Best {
        Best {
            count,
            seen: 0,
            heap: BinaryHeap::with_capacity(count.min(1024) + 1),
        }
    }

    /// How many candidates were taken or counted.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// Counts candidates left out unscored because they rank below those kept.
    pub fn count_left_out(&mut self, count: usize) {
        self.seen += count;
    }

    /// How many candidates it keeps.
    pub fn keeps(&self) -> usize {
        self.count
    }

    /// The worst candidate kept, once as many are kept as asked for: a candidate
    /// that would rank after it need not be taken.
    pub fn worst_kept(&self) -> Option<&Candidate> {
        if self.heap.len() < self.count {
            return None;
        }
        self.heap.peek().map(|ranked| &ranked.0)
    }

    /// The best candidates, in rank order.
    pub fn into_ranked(self) -> Vec<Candidate> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|ranked| ranked.0)
            .collect()
    }
}

impl CandidateSink for Best {
    fn take(&mut self, candidate: Candidate) {
        self.seen += 1;
        if self.heap.len() < self.count {
            self.heap.push(Ranked(candidate));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && rank_order(&candidate, &worst.0).is_lt()
        {
            *worst = Ranked(candidate);
        }
    }
}

/// An expansion's score from its components' field bits, in component order.
pub(crate) fn expansion_score(plan: &QueryPlan, expansion: &Expansion, bits: &[u8]) -> f64 {
    let sum: f64 = expansion
        .components
        .iter()
        .zip(bits)
        .map(|(component, bits)| plan.terms[*component].worth * field_weight(*bits))
        .sum();
    weights::EXPANSION_FACTOR * sum / expansion.components.len().max(1) as f64
}

/// Keeps the documents that match every required word; when none does, those
/// that match the most of them (the graceful fallback).
pub(crate) fn select(mut candidates: Vec<Candidate>, required: usize) -> Vec<Candidate> {
    let most = candidates
        .iter()
        .map(|found| found.matched)
        .max()
        .unwrap_or(0);
    let wanted = most.min(u8::try_from(required).unwrap_or(u8::MAX));
    candidates.retain(|found| found.matched >= wanted);
    candidates
}

/// The histories (by index) a code target names.
pub(crate) fn named_histories(
    histories: &[CodeHistory],
    target: &CodeTarget,
) -> std::ops::Range<usize> {
    match target {
        CodeTarget::Exact(code) => {
            match histories.binary_search_by(|history| history.code().cmp(code)) {
                Ok(at) => at..at + 1,
                Err(_) => 0..0,
            }
        }
        CodeTarget::Prefix(prefix) => {
            let start =
                histories.partition_point(|history| history.code().as_str() < prefix.as_str());
            let length = histories[start..]
                .iter()
                .take_while(|history| history.code().as_str().starts_with(prefix.as_str()))
                .count();
            start..start + length
        }
    }
}

/// Per-document slots reused across the queries of a thread.
#[derive(Debug, Default)]
pub(crate) struct Accumulators {
    /// The current word's best score per document.
    pub word_best: Vec<f64>,
    /// The documents whose `word_best` the current word set.
    pub word_touched: Vec<u32>,
    /// Candidate number + 1 per document, 0 for none (the intersection path).
    pub slot: Vec<u32>,
    /// Per candidate and query word, its score (the intersection path).
    pub scores: Vec<f64>,
    /// Per candidate, its synonym phrase score (the intersection path).
    pub phrase_scores: Vec<f64>,
    total: Vec<f64>,
    phrase: Vec<f64>,
    matched: Vec<u8>,
    seen: Vec<bool>,
    touched: Vec<u32>,
}

impl Accumulators {
    fn ready(&mut self, documents: usize) {
        if self.total.len() < documents {
            self.word_best.resize(documents, 0.0);
            self.total.resize(documents, 0.0);
            self.phrase.resize(documents, 0.0);
            self.matched.resize(documents, 0);
            self.seen.resize(documents, false);
            self.slot.resize(documents, 0);
        }
    }

    fn touch(&mut self, doc: u32) {
        if !self.seen[doc as usize] {
            self.seen[doc as usize] = true;
            self.touched.push(doc);
        }
    }

    pub(crate) fn raise(&mut self, doc: u32, score: f64) {
        let slot = &mut self.word_best[doc as usize];
        if *slot == 0.0 {
            self.word_touched.push(doc);
        }
        if score > *slot {
            *slot = score;
        }
    }

    fn end_word(&mut self, required: bool) {
        for at in std::mem::take(&mut self.word_touched) {
            self.touch(at);
            let doc = at as usize;
            self.total[doc] += self.word_best[doc];
            self.word_best[doc] = 0.0;
            if required {
                self.matched[doc] = self.matched[doc].saturating_add(1);
            }
        }
    }

    fn clear(&mut self) {
        for at in std::mem::take(&mut self.touched) {
            let doc = at as usize;
            self.total[doc] = 0.0;
            self.phrase[doc] = 0.0;
            self.matched[doc] = 0;
            self.seen[doc] = false;
        }
    }
}

thread_local! {
    static ACCUMULATORS: RefCell<Accumulators> = RefCell::new(Accumulators::default());
}

/// The documents matching `plan` that pass `filter` on `as_of`, selected, given
/// to `sink` in no particular order.
pub(crate) fn with_index(
    registry: &CodeRegistry,
    plan: &QueryPlan,
    filter: &CodeFilter,
    as_of: Date,
    sink: &mut impl CandidateSink,
) {
    let full = ACCUMULATORS.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.ready(registry.search_index().documents());
        intersect::full_matches(registry, plan, filter, as_of, &mut scratch, sink)
    });
    if !full {
        most_matched(registry, plan, filter, as_of, sink);
    }
}

/// The best `best.keeps()` documents of what [`with_index`] selects, and how
/// many it selects: a broad query's page is found by pruning
/// ([`super::tiers`]), without scoring every match.
pub(crate) fn best_with_index(
    registry: &CodeRegistry,
    plan: &QueryPlan,
    filter: &CodeFilter,
    as_of: Date,
    best: &mut Best,
) {
    match tiers::full_matches(registry, plan, filter, as_of, best) {
        Pruning::Ranked => {}
        Pruning::NoFullMatch => most_matched(registry, plan, filter, as_of, best),
        Pruning::NotWorthIt => with_index(registry, plan, filter, as_of, best),
    }
}

/// The graceful fallback, for when no code passing the filters matches every
/// required word: count how many each code matches, and return those matching
/// the most.
fn most_matched(
    registry: &CodeRegistry,
    plan: &QueryPlan,
    filter: &CodeFilter,
    as_of: Date,
    sink: &mut impl CandidateSink,
) {
    let index = registry.search_index();
    let histories = registry.histories();
    ACCUMULATORS.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.ready(index.documents());
        for (position, word) in plan.words.iter().enumerate() {
            spread_word(&mut scratch, index, histories, plan, position);
            scratch.end_word(word.required);
        }
        for phrase in &plan.phrases {
            for doc in index.phrase_docs(phrase.id) {
                scratch.touch(*doc);
                let slot = &mut scratch.phrase[*doc as usize];
                *slot = slot.max(phrase.score);
            }
        }

        let admission = Admission::new(registry, filter, as_of);
        let mut candidates = Vec::new();
        for &doc in &scratch.touched {
            let Some(prior) = admission.prior(doc) else {
                continue;
            };
            let quantities = intersect::met_quantities(plan, index, doc);
            let at = doc as usize;
            let score = weights::total(scratch.total[at], scratch.phrase[at], quantities, prior);
            candidates.push(Candidate {
                doc,
                score,
                matched: scratch.matched[at],
            });
        }
        scratch.clear();
        for candidate in select(candidates, plan.required) {
            sink.take(candidate);
        }
    })
}

/// Raises each document's `word_best` to what query word `position` scores in it,
/// following every posting of the word's terms, expansions and codes.
pub(crate) fn spread_word(
    scratch: &mut Accumulators,
    index: &SearchIndex,
    histories: &[CodeHistory],
    plan: &QueryPlan,
    position: usize,
) {
    each_word_score(index, histories, plan, position, |doc, score| {
        scratch.raise(doc, score)
    });
}

/// Calls `visit` with every document that query word `position` matches and
/// what one of the word's terms, expansions or codes scores there; a document
/// matched several ways is visited once for each, and the word scores the best.
pub(crate) fn each_word_score(
    index: &SearchIndex,
    histories: &[CodeHistory],
    plan: &QueryPlan,
    position: usize,
    mut visit: impl FnMut(u32, f64),
) {
    for term in plan
        .terms
        .iter()
        .filter(|term| term.role == Role::Word(position))
    {
        let (docs, fields) = index.postings(term.id);
        for (doc, bits) in docs.iter().zip(fields) {
            visit(*doc, term.worth * field_weight(*bits));
        }
    }
    for expansion in plan
        .expansions
        .iter()
        .filter(|expansion| expansion.word == position)
    {
        each_expansion_doc(index, plan, expansion, &mut visit);
    }
    for codes in plan.codes.iter().filter(|codes| codes.word == position) {
        for history in named_histories(histories, &codes.target) {
            for doc in index.docs_of(history) {
                visit(doc, codes.score);
            }
        }
    }
}

/// The first position from `from` on at which the ordered `docs` hold `doc` or
/// a later document. Gallops: the lists walked together are often about as
/// dense, and the next match is then a step or two away, where a binary search
/// of all that is left would touch memory far off each time.
pub(crate) fn seek(docs: &[u32], from: usize, doc: u32) -> usize {
    let rest = &docs[from..];
    let mut bound = 1;
    while bound < rest.len() && rest[bound] < doc {
        bound *= 2;
    }
    let window = &rest[..rest.len().min(bound + 1)];
    from + window.partition_point(|candidate| *candidate < doc)
}

/// Calls `visit` with each document holding every word of `expansion`, and its
/// score, walking the shortest postings and seeking in the others.
pub(crate) fn each_expansion_doc(
    index: &SearchIndex,
    plan: &QueryPlan,
    expansion: &Expansion,
    mut visit: impl FnMut(u32, f64),
) {
    if let [only] = expansion.components[..] {
        // One word ("shot" means injection): its postings are the matches, and
        // the score is the expansion score of one component, computed alike.
        let worth = plan.terms[only].worth;
        let (docs, fields) = index.postings(plan.terms[only].id);
        for (doc, bits) in docs.iter().zip(fields) {
            let sum = worth * field_weight(*bits);
            visit(*doc, weights::EXPANSION_FACTOR * sum / 1.0);
        }
        return;
    }
    let lists: Vec<(&[u32], &[u8])> = expansion
        .components
        .iter()
        .map(|component| index.postings(plan.terms[*component].id))
        .collect();
    let Some(shortest) = (0..lists.len()).min_by_key(|at| lists[*at].0.len()) else {
        return;
    };
    let mut cursors = vec![0usize; lists.len()];
    let mut bits = vec![0u8; lists.len()];
    'docs: for &doc in lists[shortest].0 {
        for (at, (docs, fields)) in lists.iter().enumerate() {
            cursors[at] = seek(docs, cursors[at], doc);
            match docs.get(cursors[at]) {
                Some(found) if *found == doc => bits[at] = fields[cursors[at]],
                _ => continue 'docs,
            }
        }
        visit(doc, expansion_score(plan, expansion, &bits));
    }
}
