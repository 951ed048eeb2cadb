//! The same ranking computed without postings: every admitted code version's text
//! is split and compared with the query plan, document by document.
//!
//! This is the baseline the benchmarks hold the index against, and the oracle the
//! property tests check the index with. It shares the plan (the terms a query
//! word stands for, and their document frequencies) and the weights with the
//! indexed path; only how matches are found differs.

use std::collections::HashMap;

use jiff::civil::Date;

use super::{
    index::{field_texts, version_quantities},
    plan::{QueryPlan, Role},
    rank::{Candidate, expansion_score, select},
    tokenize::{phrase_key, terms},
    weights::{self, field_weight},
};
use crate::codes::{CodeFilter, CodeRegistry};

/// The documents matching `plan` that pass `filter` on `as_of`, found by reading
/// every document; selected but not yet sorted.
pub(crate) fn by_scan(
    registry: &CodeRegistry,
    plan: &QueryPlan,
    filter: &CodeFilter,
    as_of: Date,
) -> Vec<Candidate> {
    let index = registry.search_index();
    let mut wanted: HashMap<&str, Vec<usize>> = HashMap::new();
    for (at, term) in plan.terms.iter().enumerate() {
        wanted.entry(term.text.as_str()).or_default().push(at);
    }
    let mut bits = vec![0u8; plan.terms.len()];
    let mut best = vec![0.0f64; plan.words.len()];
    let mut candidates = Vec::new();
    for (position, history) in registry.histories().iter().enumerate() {
        let found = history.as_of(as_of);
        if !filter.admits(&found) {
            continue;
        }
        let Some(version_at) = history
            .versions()
            .iter()
            .position(|version| std::ptr::eq(version, found.version))
        else {
            continue;
        };
        let doc = index.docs_of(position).start + version_at as u32;
        let version = found.version;

        bits.iter_mut().for_each(|slot| *slot = 0);
        best.iter_mut().for_each(|slot| *slot = 0.0);
        field_texts(version, |field, text| {
            for (term, _) in terms(text) {
                for at in wanted.get(term.as_str()).into_iter().flatten() {
                    bits[*at] |= field.bit();
                }
            }
        });
        for (at, term) in plan.terms.iter().enumerate() {
            if let (Role::Word(word), true) = (term.role, bits[at] != 0) {
                best[word] = best[word].max(term.worth * field_weight(bits[at]));
            }
        }
        for expansion in &plan.expansions {
            let own: Vec<u8> = expansion.components.iter().map(|at| bits[*at]).collect();
            if !own.contains(&0) {
                let score = expansion_score(plan, expansion, &own);
                best[expansion.word] = best[expansion.word].max(score);
            }
        }
        for codes in &plan.codes {
            if codes.target.names(version.code) {
                best[codes.word] = best[codes.word].max(codes.score);
            }
        }
        let keys: Vec<String> = version
            .synonyms
            .iter()
            .map(|synonym| phrase_key(synonym))
            .collect();
        let phrase = plan
            .phrases
            .iter()
            .filter(|phrase| keys.contains(&phrase.key))
            .map(|phrase| phrase.score)
            .fold(0.0, f64::max);

        let mut words = 0.0;
        let mut matched = 0u8;
        for (word, score) in plan.words.iter().zip(&best) {
            if *score > 0.0 {
                words += score;
                matched += u8::from(word.required);
            }
        }
        if words == 0.0 && phrase == 0.0 {
            continue;
        }
        let stated = version_quantities(version);
        let quantities = plan
            .quantities
            .iter()
            .filter(|query| stated.iter().any(|own| query.quantity.meets(own)))
            .count();
        let score = weights::total(words, phrase, quantities, weights::prior(&found));
        candidates.push(Candidate {
            doc,
            score,
            matched,
        });
    }
    select(candidates, plan.required)
}
