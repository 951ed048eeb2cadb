//! Ranking the usual way: the codes that match every required word, found by
//! intersection.
//!
//! The required word with the fewest postings gives the candidates. Each further
//! word keeps and scores only those candidates: by looking each candidate up in
//! its postings (binary search) when the candidates are few, or by spreading its
//! postings into the per-document slots when they are fewer than that. So a query
//! costs about what its rarest word costs, however common its other words are.

use jiff::civil::Date;

use super::{
    index::SearchIndex,
    plan::{QueryPlan, Role},
    rank::{Accumulators, Candidate, CandidateSink, expansion_score, named_histories, spread_word},
    standing::Admission,
    weights::{self, field_weight},
};
use crate::codes::{CodeFilter, CodeHistory, CodeRegistry};

/// A posting visited while spreading is this much cheaper than one binary search.
const SEARCH_COST: usize = 8;

/// The codes passing `filter` on `as_of` that match every required word of
/// `plan`, scored, given to `sink`; false when there is none (and `sink` got
/// nothing), so that the caller falls back.
pub(crate) fn full_matches(
    registry: &CodeRegistry,
    plan: &QueryPlan,
    filter: &CodeFilter,
    as_of: Date,
    scratch: &mut Accumulators,
    sink: &mut impl CandidateSink,
) -> bool {
    let index = registry.search_index();
    let histories = registry.histories();
    let words = plan.words.len();
    let costs: Vec<usize> = (0..words)
        .map(|word| spread_cost(index, histories, plan, word))
        .collect();
    // A required word that no document matches cannot count for any code: the
    // codes matching every other required word are then those matching the
    // most, as the fallback would find them, at the cost of an intersection.
    let mut required: Vec<usize> = (0..words)
        .filter(|word| plan.words[*word].required && costs[*word] > 0)
        .collect();
    required.sort_by_key(|word| costs[*word]);
    let Some((&driver, others)) = required.split_first() else {
        return false;
    };

    spread_word(scratch, index, histories, plan, driver);
    // In the order first touched; nothing below needs document order.
    let mut docs = std::mem::take(&mut scratch.word_touched);
    // Row `i` holds candidate `docs[i]`'s best score for each query word.
    let mut scores = std::mem::take(&mut scratch.scores);
    scores.clear();
    scores.resize(docs.len() * words, 0.0);
    for (row, doc) in docs.iter().enumerate() {
        let slot = &mut scratch.word_best[*doc as usize];
        scores[row * words + driver] = *slot;
        *slot = 0.0;
    }

    let optional = (0..words).filter(|word| !plan.words[*word].required && costs[*word] > 0);
    for word in others.iter().copied().chain(optional) {
        if docs.is_empty() {
            return false;
        }
        if probe_cost(plan, word, docs.len()) < costs[word] {
            for (row, doc) in docs.iter().enumerate() {
                scores[row * words + word] = probe(index, histories, plan, word, *doc);
            }
        } else {
            spread_word(scratch, index, histories, plan, word);
            for (row, doc) in docs.iter().enumerate() {
                scores[row * words + word] = scratch.word_best[*doc as usize];
            }
            for doc in std::mem::take(&mut scratch.word_touched) {
                scratch.word_best[doc as usize] = 0.0;
            }
        }
        if plan.words[word].required {
            keep_matching(&mut docs, &mut scores, words, word);
        }
    }

    let mut phrase = std::mem::take(&mut scratch.phrase_scores);
    phrase.clear();
    phrase.resize(docs.len(), 0.0);
    if !plan.phrases.is_empty() {
        for (row, doc) in docs.iter().enumerate() {
            scratch.slot[*doc as usize] = row as u32 + 1;
        }
        for planned in &plan.phrases {
            for doc in index.phrase_docs(planned.id) {
                if let Some(row) = scratch.slot[*doc as usize].checked_sub(1) {
                    let best = &mut phrase[row as usize];
                    *best = best.max(planned.score);
                }
            }
        }
        for doc in &docs {
            scratch.slot[*doc as usize] = 0;
        }
    }
    let matched = u8::try_from(plan.required).unwrap_or(u8::MAX);
    let mut found = false;
    let admission = Admission::new(registry, filter, as_of);
    for (row, &doc) in docs.iter().enumerate() {
        let Some(prior) = admission.prior(doc) else {
            continue;
        };
        let quantities = met_quantities(plan, index, doc);
        // Summed in word order, as the accumulators and the scan sum them.
        let words_score = scores[row * words..(row + 1) * words]
            .iter()
            .fold(0.0, |sum, score| sum + score);
        let score = weights::total(words_score, phrase[row], quantities, prior);
        sink.take(Candidate {
            doc,
            score,
            matched,
        });
        found = true;
    }
    // The buffers go back for the thread's next query.
    docs.clear();
    scratch.word_touched = docs;
    scratch.scores = scores;
    scratch.phrase_scores = phrase;
    found
}

/// Drops the candidates that do not match `word`, with their rows.
fn keep_matching(docs: &mut Vec<u32>, scores: &mut Vec<f64>, words: usize, word: usize) {
    let mut kept = 0;
    for row in 0..docs.len() {
        if scores[row * words + word] > 0.0 {
            docs[kept] = docs[row];
            scores.copy_within(row * words..(row + 1) * words, kept * words);
            kept += 1;
        }
    }
    docs.truncate(kept);
    scores.truncate(kept * words);
}

/// Postings visited to spread a word.
pub(crate) fn spread_cost(
    index: &SearchIndex,
    histories: &[CodeHistory],
    plan: &QueryPlan,
    word: usize,
) -> usize {
    let terms: usize = plan
        .terms
        .iter()
        .filter(|term| term.role == Role::Word(word))
        .map(|term| index.document_frequency(term.id) as usize)
        .sum();
    let expansions: usize = plan
        .expansions
        .iter()
        .filter(|expansion| expansion.word == word)
        .map(|expansion| {
            let component = |at: &usize| index.document_frequency(plan.terms[*at].id) as usize;
            expansion
                .components
                .iter()
                .map(component)
                .min()
                .unwrap_or(0)
                * expansion.components.len()
        })
        .sum();
    let codes: usize = plan
        .codes
        .iter()
        .filter(|codes| codes.word == word)
        .map(|codes| named_histories(histories, &codes.target).len())
        .sum();
    terms + expansions + codes
}

/// Binary searches needed to look `candidates` up in a word's postings.
fn probe_cost(plan: &QueryPlan, word: usize, candidates: usize) -> usize {
    let terms = plan
        .terms
        .iter()
        .filter(|term| term.role == Role::Word(word))
        .count();
    let components: usize = plan
        .expansions
        .iter()
        .filter(|expansion| expansion.word == word)
        .map(|expansion| expansion.components.len())
        .sum();
    let codes = plan.codes.iter().filter(|codes| codes.word == word).count();
    candidates * (terms + components + codes) * SEARCH_COST
}

/// What query word `word` scores in document `doc`, by looking it up.
fn probe(
    index: &SearchIndex,
    histories: &[CodeHistory],
    plan: &QueryPlan,
    word: usize,
    doc: u32,
) -> f64 {
    let mut best = 0.0f64;
    for term in plan
        .terms
        .iter()
        .filter(|term| term.role == Role::Word(word))
    {
        let bits = index.fields_of(term.id, doc);
        if bits != 0 {
            best = best.max(term.worth * field_weight(bits));
        }
    }
    for expansion in plan
        .expansions
        .iter()
        .filter(|expansion| expansion.word == word)
    {
        let bits: Vec<u8> = expansion
            .components
            .iter()
            .map(|at| index.fields_of(plan.terms[*at].id, doc))
            .collect();
        if !bits.contains(&0) {
            best = best.max(expansion_score(plan, expansion, &bits));
        }
    }
    let mut named = plan
        .codes
        .iter()
        .filter(|codes| codes.word == word)
        .peekable();
    if named.peek().is_some() {
        let code = histories[index.locate(doc).0].code();
        for codes in named {
            if codes.target.names(code) {
                best = best.max(codes.score);
            }
        }
    }
    best
}

/// How many quantities of the query document `doc` meets.
pub(crate) fn met_quantities(plan: &QueryPlan, index: &SearchIndex, doc: u32) -> usize {
    if plan.quantities.is_empty() {
        return 0;
    }
    let stated = index.quantities(doc);
    plan.quantities
        .iter()
        .filter(|query| stated.iter().any(|own| query.quantity.meets(own)))
        .count()
}
