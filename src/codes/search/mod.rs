//! Ranked code search, for coders who type fragments of official phrases and
//! clinicians who type jargon, updated on every keystroke.
//!
//! # Overview
//!
//! A query is split into words ([`tokenize`]) and planned ([`query`]): each word
//! stands for the dictionary terms it equals, begins (the last word, still being
//! typed) or nearly spells (one edit for words of four letters or more, two from
//! eight; never for codes), for what the jargon map says it means
//! ([`abbreviations`], `data/abbreviations.csv`), and, when it looks like a code,
//! for that code or the codes it begins. Runs of words may be a code's synonym
//! phrase ("knee shot"), and counts and sides are read as quantities ("3
//! muscles", "second level", "bilat"). Ranking keeps the codes that match every
//! required word, found by intersection from the rarest word ([`intersect`]),
//! or, when none does, the codes matching the most ([`rank`]); it admits them by
//! day and filters from packed per-version facts ([`standing`]) and orders them
//! by score ([`weights`]), then code. The first pages of a broad query (one whose
//! rarest required word is in a third of a large code set) are found by pruning
//! ([`tiers`]): every match is counted, as a set of bits, but only the codes that
//! can reach the page are scored (where their scores lie: [`score_cuts`]), and
//! the page is the one the full ranking would show. [`explain`] says, for each code shown,
//! which words hit which fields and how. [`scan`] ranks the same way without the
//! index, as the benchmarks' baseline and the property tests' oracle.
//!
//! # Why `fst`
//!
//! The corpus is a few hundred to a few hundred thousand short, hand-written code
//! descriptions that change only when a code set is loaded, and each query is a
//! handful of words that must find exact, prefix and misspelt terms at once. An
//! `fst` map is the right dictionary for that: built once per registry snapshot,
//! a few bytes per term, and searched by any automaton without allocating, so a
//! prefix is a range walk and a typo is one automaton run over the whole
//! dictionary rather than a comparison with every word. The Levenshtein
//! automata come from `levenshtein_automata` (tantivy's), run over the fst through
//! a small adapter: it counts a transposition ("epidrual") as one edit, and
//! builds a word's automaton in microseconds from a table made once per process,
//! where `fst`'s own Levenshtein builds it per query in 0.1 to 4 ms, more than
//! the whole latency budget. A full engine such as tantivy would bring segments,
//! a schema and an on-disk format that an immutable in-memory snapshot of this
//! size does not need, and could not rank by this domain's own rules (code
//! prefixes first, quantities, priors) without fighting its scorer.
//!
//! # Memory usage
//!
//! One fst of distinct terms, then five bytes per (term, document) posting (a
//! `u32` document and a byte of field bits), one fst of synonym phrases with `u32`
//! postings, and a few bytes per document for its quantities. No string is kept
//! per document: explanations re-read the code's own text for the page shown.
//! Queries reuse per-thread scratch: a few per-document slots for ranking, and
//! three sets of one bit per document for pruning.
//!
//! # Example
//!
//! ```
//! use cptd::codes::{CodeFilter, CodeRegistry, Explain, SearchQuery};
//! use jiff::civil::date;
//!
//! let registry = CodeRegistry::built_in().unwrap();
//! let filter = CodeFilter::default();
//! let query = SearchQuery { text: "lumbar mbb", filter: &filter, as_of: date(2025, 6, 1) };
//! let page = registry.search_page(&query, 0, 3, Explain::Matches);
//! assert_eq!(page.hits[0].hit.found.version.code.as_str(), "64493");
//! assert!(!page.hits[0].matches.is_empty());
//! ```

mod abbreviations;
mod doc_set;
mod explain;
mod index;
mod indexing;
mod intersect;
mod plan;
mod quantity;
mod query;
mod rank;
mod scan;
mod score_cuts;
mod standing;
mod tiers;
mod tokenize;
mod weights;

use jiff::civil::Date;

use self::{abbreviations::Abbreviations, plan::QueryPlan, rank::Candidate};
use super::{filter::CodeFilter, record::CodeAsOf, registry::CodeRegistry};

pub use explain::{MatchKind, SearchField, SearchMatch};
pub use index::SearchIndex;

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;

/// Most words of a query that are matched; the rest are ignored.
pub const MAX_QUERY_WORDS: usize = 16;

/// What a person typed, with the filters and the day to search as of.
#[derive(Debug, Clone)]
pub struct SearchQuery<'a> {
    /// The typed text.
    pub text: &'a str,
    /// Filters every result passes.
    pub filter: &'a CodeFilter,
    /// Day the code set is searched as of.
    pub as_of: Date,
}

/// Whether a page of results says why each code matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// Each hit's matches: which query word met which field, and how.
    Matches,
    /// No matches.
    Nothing,
}

/// One code found, with its relevance.
#[derive(Debug, Clone, Copy)]
pub struct SearchHit<'a> {
    /// The code as it stands on the day searched.
    pub found: CodeAsOf<'a>,
    /// Relevance; higher is better.
    pub score: f64,
}

/// A code found, with why.
#[derive(Debug, Clone)]
pub struct ExplainedHit<'a> {
    /// The code and its score.
    pub hit: SearchHit<'a>,
    /// Why it matched: the best match of each query word that matched, then the
    /// synonym phrase and quantities it met.
    pub matches: Vec<SearchMatch>,
}

/// One page of a ranked search.
#[derive(Debug, Clone)]
pub struct SearchPage<'a> {
    /// The codes of the page, best first.
    pub hits: Vec<ExplainedHit<'a>>,
    /// How many codes match in all pages.
    pub total: usize,
}

impl CodeRegistry {
    /// Every code that matches `query`, best first, ties in code order. An empty
    /// query lists the filtered codes in code order with score 0; a query of
    /// punctuation or symbols alone finds nothing.
    pub fn search<'a>(&'a self, query: &SearchQuery<'_>) -> Vec<SearchHit<'a>> {
        let plan = self.plan(query.text);
        if plan.words.is_empty() {
            return self.listing(query).collect();
        }
        let mut candidates = Vec::new();
        rank::with_index(self, &plan, query.filter, query.as_of, &mut candidates);
        candidates.sort_unstable_by(rank::rank_order);
        candidates
            .iter()
            .map(|found| self.hit(found, query.as_of))
            .collect()
    }

    /// The codes `offset..offset + limit` of the ranking of `query`, each with why
    /// it matched when `explain` says so, and how many codes match in all
    /// (always exact). Only the page is sorted and explained, so a deep result
    /// list costs little more than its count; for a broad query only the codes
    /// that can reach the page are scored. Explaining reads each code's texts
    /// again and costs about as much as the search itself.
    pub fn search_page<'a>(
        &'a self,
        query: &SearchQuery<'_>,
        offset: usize,
        limit: usize,
        explain: Explain,
    ) -> SearchPage<'a> {
        let plan = self.plan(query.text);
        if plan.words.is_empty() {
            let listing = self.listing(query);
            let total = self.listing(query).count();
            let hits = listing
                .skip(offset)
                .take(limit)
                .map(|hit| ExplainedHit {
                    hit,
                    matches: Vec::new(),
                })
                .collect();
            return SearchPage { hits, total };
        }
        let mut best = rank::Best::new(offset.saturating_add(limit));
        rank::best_with_index(self, &plan, query.filter, query.as_of, &mut best);
        let total = best.seen();
        let candidates = best.into_ranked();
        let index = self.search_index();
        let hits = candidates
            .iter()
            .skip(offset)
            .map(|found| {
                let hit = self.hit(found, query.as_of);
                let matches = match explain {
                    Explain::Matches => {
                        explain::explain(&plan, index, found.doc, hit.found.version)
                    }
                    Explain::Nothing => Vec::new(),
                };
                ExplainedHit { hit, matches }
            })
            .collect();
        SearchPage { hits, total }
    }

    /// The same ranking as [`CodeRegistry::search`], found by reading every code's
    /// text instead of the index: the baseline for benchmarks and the oracle for
    /// tests. Never use it to serve.
    pub fn search_by_scan<'a>(&'a self, query: &SearchQuery<'_>) -> Vec<SearchHit<'a>> {
        let plan = self.plan(query.text);
        if plan.words.is_empty() {
            return self.listing(query).collect();
        }
        let mut candidates = scan::by_scan(self, &plan, query.filter, query.as_of);
        candidates.sort_unstable_by(rank::rank_order);
        candidates
            .iter()
            .map(|found| self.hit(found, query.as_of))
            .collect()
    }

    fn plan(&self, text: &str) -> QueryPlan {
        QueryPlan::new(text, self.search_index(), Abbreviations::built_in())
    }

    /// The codes a query without searchable words finds: an empty query lists
    /// them all (filtered); one of punctuation or symbols alone (`?!`, an
    /// emoji) asks for something no code holds, and finds nothing.
    fn listing<'a>(&'a self, query: &SearchQuery<'_>) -> impl Iterator<Item = SearchHit<'a>> + 'a {
        let nothing_to_find = !query.text.trim().is_empty();
        let filter = query.filter.clone();
        let as_of = query.as_of;
        self.histories()
            .iter()
            .map(move |history| history.as_of(as_of))
            .filter(move |found| !nothing_to_find && filter.admits(found))
            .map(|found| SearchHit { found, score: 0.0 })
    }

    fn hit(&self, candidate: &Candidate, as_of: Date) -> SearchHit<'_> {
        let (history, _) = self.search_index().locate(candidate.doc);
        SearchHit {
            found: self.histories()[history].as_of(as_of),
            score: candidate.score,
        }
    }
}

#[cfg(test)]
mod tests;
