//! Ranking with the index: follow each planned term's postings into per-document
//! accumulators, keep the documents that match every required word (or, when
//! none does, those that match the most), and score them.
//!
//! The accumulators are dense arrays, one slot per document, reused across the
//! queries of a thread; only the slots a query touched are reset, so a query
//! costs what its postings cost, not what the corpus costs.

use std::cell::RefCell;

use jiff::civil::Date;

use super::{
    index::SearchIndex,
    plan::{CodeTarget, Expansion, QueryPlan, Role},
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

#[derive(Debug, Default)]
struct Accumulators {
    word_best: Vec<f64>,
    total: Vec<f64>,
    phrase: Vec<f64>,
    matched: Vec<u8>,
    seen: Vec<bool>,
    touched: Vec<u32>,
    word_touched: Vec<u32>,
}

impl Accumulators {
    fn ready(&mut self, documents: usize) {
        if self.total.len() < documents {
            self.word_best.resize(documents, 0.0);
            self.total.resize(documents, 0.0);
            self.phrase.resize(documents, 0.0);
            self.matched.resize(documents, 0);
            self.seen.resize(documents, false);
        }
    }

    fn touch(&mut self, doc: u32) {
        if !self.seen[doc as usize] {
            self.seen[doc as usize] = true;
            self.touched.push(doc);
        }
    }

    fn raise(&mut self, doc: u32, score: f64) {
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

/// The documents matching `plan` that pass `filter` on `as_of`, selected but not
/// yet sorted.
pub(crate) fn with_index(
    registry: &CodeRegistry,
    plan: &QueryPlan,
    filter: &CodeFilter,
    as_of: Date,
) -> Vec<Candidate> {
    let index = registry.search_index();
    let histories = registry.histories();
    ACCUMULATORS.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.ready(index.documents());
        for (position, word) in plan.words.iter().enumerate() {
            for term in plan
                .terms
                .iter()
                .filter(|term| term.role == Role::Word(position))
            {
                let (docs, fields) = index.postings(term.id);
                for (doc, bits) in docs.iter().zip(fields) {
                    scratch.raise(*doc, term.worth * field_weight(*bits));
                }
            }
            for expansion in plan
                .expansions
                .iter()
                .filter(|expansion| expansion.word == position)
            {
                each_expansion_doc(index, plan, expansion, |doc, score| {
                    scratch.raise(doc, score)
                });
            }
            for codes in plan.codes.iter().filter(|codes| codes.word == position) {
                for history in named_histories(histories, &codes.target) {
                    for doc in index.docs_of(history) {
                        scratch.raise(doc, codes.score);
                    }
                }
            }
            scratch.end_word(word.required);
        }
        for phrase in &plan.phrases {
            for doc in index.phrase_docs(phrase.id) {
                scratch.touch(*doc);
                let slot = &mut scratch.phrase[*doc as usize];
                *slot = slot.max(phrase.score);
            }
        }

        let mut candidates = Vec::new();
        for &doc in &scratch.touched {
            let (history, version) = index.locate(doc);
            let history = &histories[history];
            let found = history.as_of(as_of);
            if !std::ptr::eq(found.version, &history.versions()[version]) || !filter.admits(&found)
            {
                continue;
            }
            let stated = index.quantities(doc);
            let quantities = plan
                .quantities
                .iter()
                .filter(|query| stated.iter().any(|own| query.quantity.meets(own)))
                .count();
            let at = doc as usize;
            let score = weights::total(
                scratch.total[at],
                scratch.phrase[at],
                quantities,
                weights::prior(&found),
            );
            candidates.push(Candidate {
                doc,
                score,
                matched: scratch.matched[at],
            });
        }
        scratch.clear();
        select(candidates, plan.required)
    })
}

/// Calls `visit` with each document holding every word of `expansion`, and its
/// score, walking the shortest postings and seeking in the others.
fn each_expansion_doc(
    index: &SearchIndex,
    plan: &QueryPlan,
    expansion: &Expansion,
    mut visit: impl FnMut(u32, f64),
) {
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
            let rest = &docs[cursors[at]..];
            let skip = rest.partition_point(|candidate| *candidate < doc);
            cursors[at] += skip;
            match rest.get(skip) {
                Some(found) if *found == doc => bits[at] = fields[cursors[at]],
                _ => continue 'docs,
            }
        }
        visit(doc, expansion_score(plan, expansion, &bits));
    }
}
