//! The search index of one registry snapshot: an fst term dictionary over compact
//! postings, synonym phrases, and the quantities each code version states.
//!
//! Every version of every code is a document, numbered in code order. A term's
//! postings are the documents that contain it, each with one byte of field bits
//! (which of synonyms, short name, descriptor, … hold it): five bytes per
//! posting, no strings per document.

use std::ops::Range;

use fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer};
use levenshtein_automata::{DFA, Distance, SINK_STATE};

use super::{
    explain::SearchField,
    indexing::{self, Run},
    quantity::{Quantity, quantities},
    standing::DocFacts,
    tokenize::tokens,
};
use crate::codes::{record::CodeVersion, registry::CodeHistory};

/// One dictionary entry found by a prefix or fuzzy search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DictionaryEntry {
    /// The normalised term.
    pub text: String,
    /// Its id in the dictionary.
    pub id: u64,
    /// Edit distance from the searched word; 0 for prefix matches.
    pub distance: u8,
}

/// The index of one registry snapshot. Built once by
/// [`CodeRegistry::from_sources`](crate::codes::CodeRegistry::from_sources).
#[derive(Debug)]
pub struct SearchIndex {
    terms: Map<Vec<u8>>,
    // Term id `t` owns postings `term_starts[t]..term_starts[t + 1]`.
    term_starts: Vec<u32>,
    posting_docs: Vec<u32>,
    posting_fields: Vec<u8>,
    phrases: Map<Vec<u8>>,
    phrase_starts: Vec<u32>,
    phrase_docs: Vec<u32>,
    // Document `d` states quantities `quantity_starts[d]..quantity_starts[d + 1]`.
    quantity_starts: Vec<u32>,
    doc_quantities: Vec<Quantity>,
    doc_history: Vec<u32>,
    doc_facts: Vec<DocFacts>,
    doc_briefs: Vec<u8>,
    history_first_doc: Vec<u32>,
}

/// Calls `visit` with each searchable text of a version and its field.
pub(crate) fn field_texts<'a>(
    version: &'a CodeVersion,
    mut visit: impl FnMut(SearchField, &'a str),
) {
    for synonym in &version.synonyms {
        visit(SearchField::Synonyms, synonym);
    }
    visit(SearchField::ShortName, &version.short_name);
    visit(SearchField::Descriptor, &version.descriptor);
    visit(SearchField::Anatomy, &version.anatomy);
    visit(SearchField::Heading, &version.heading);
    visit(SearchField::Subsection, &version.subsection);
    visit(SearchField::Section, &version.section);
}

/// The quantities a version states in its descriptor, short name and synonyms,
/// sorted and without repeats.
pub(crate) fn version_quantities(version: &CodeVersion) -> Vec<Quantity> {
    let mut found: Vec<Quantity> = std::iter::once(&*version.descriptor)
        .chain([&*version.short_name])
        .chain(version.synonyms.iter().map(|synonym| &**synonym))
        .flat_map(|text| quantities(&tokens(text), false))
        .map(|found| found.quantity)
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

impl SearchIndex {
    /// Indexes every version of `histories`, which are in code order.
    pub fn build(histories: &[CodeHistory]) -> SearchIndex {
        SearchIndex::from_runs(histories, indexing::read_runs(histories))
    }

    /// The index of `histories` from the runs they were read into.
    fn from_runs(histories: &[CodeHistory], runs: Vec<Run>) -> SearchIndex {
        let mut history_first_doc = Vec::with_capacity(histories.len() + 1);
        let mut doc = 0u32;
        for history in histories {
            history_first_doc.push(doc);
            doc += to_u32(history.versions().len());
        }
        history_first_doc.push(doc);

        // Written straight into their final vectors: a 200,000-code set has
        // millions of postings, and an intermediate copy would raise the
        // build's peak memory (which the allocator keeps) by tens of megabytes.
        let total = |lists: &Vec<Vec<(u32, u8)>>| lists.iter().map(Vec::len).sum::<usize>();
        let postings: usize = runs.iter().map(|run| total(&run.postings)).sum();
        let mut posting_docs = Vec::with_capacity(postings);
        let mut posting_fields = Vec::with_capacity(postings);
        let (terms, term_starts) = merge(
            &runs,
            |run| (&run.terms, &run.postings),
            |list| {
                posting_docs.extend(list.iter().map(|(doc, _)| *doc));
                posting_fields.extend(list.iter().map(|(_, fields)| *fields));
                posting_docs.len()
            },
        );
        let mut phrase_docs = Vec::new();
        let (phrases, phrase_starts) = merge(
            &runs,
            |run| (&run.phrases, &run.phrase_docs),
            |list| {
                phrase_docs.extend_from_slice(list);
                phrase_docs.len()
            },
        );

        let documents = doc as usize;
        let mut quantity_starts = Vec::with_capacity(documents + 1);
        quantity_starts.push(0);
        let mut doc_quantities = Vec::new();
        let mut doc_history = Vec::with_capacity(documents);
        let mut doc_facts = Vec::with_capacity(documents);
        for run in runs {
            let mut end = *quantity_starts.last().expect("starts at 0");
            for count in &run.quantity_counts {
                end += count;
                quantity_starts.push(end);
            }
            doc_quantities.extend(run.quantities);
            doc_history.extend(run.doc_history);
            doc_facts.extend(run.doc_facts);
        }
        let doc_briefs = doc_facts.iter().map(DocFacts::brief).collect();
        SearchIndex {
            terms,
            term_starts,
            posting_docs,
            posting_fields,
            phrases,
            phrase_starts,
            phrase_docs,
            quantity_starts,
            doc_quantities,
            doc_history,
            doc_facts,
            doc_briefs,
            history_first_doc,
        }
    }

    /// How many documents (code versions) the index holds.
    pub fn documents(&self) -> usize {
        self.doc_history.len()
    }

    /// How many distinct terms the dictionary holds.
    pub fn terms(&self) -> usize {
        self.term_starts.len().saturating_sub(1)
    }

    /// Heap bytes the index holds, dictionaries included.
    pub fn heap_bytes(&self) -> usize {
        self.terms.as_fst().as_bytes().len()
            + self.phrases.as_fst().as_bytes().len()
            + 4 * (self.term_starts.capacity()
                + self.posting_docs.capacity()
                + self.phrase_starts.capacity()
                + self.phrase_docs.capacity()
                + self.quantity_starts.capacity()
                + self.doc_history.capacity()
                + self.history_first_doc.capacity())
            + self.posting_fields.capacity()
            + self.doc_briefs.capacity()
            + self.doc_quantities.capacity() * size_of::<Quantity>()
            + self.doc_facts.capacity() * size_of::<DocFacts>()
    }

    /// The id of an exact term.
    pub(crate) fn term_id(&self, term: &str) -> Option<u64> {
        self.terms.get(term)
    }

    /// How many documents contain the term.
    pub(crate) fn document_frequency(&self, id: u64) -> u32 {
        let range = self.posting_range(id);
        to_u32(range.len())
    }

    /// The documents holding a term, in order, and the field bits of each.
    pub(crate) fn postings(&self, id: u64) -> (&[u32], &[u8]) {
        let range = self.posting_range(id);
        (
            &self.posting_docs[range.clone()],
            &self.posting_fields[range],
        )
    }

    /// The field bits of a term in one document; 0 when absent.
    pub(crate) fn fields_of(&self, id: u64, doc: u32) -> u8 {
        let (docs, fields) = self.postings(id);
        docs.binary_search(&doc).map_or(0, |at| fields[at])
    }

    fn posting_range(&self, id: u64) -> Range<usize> {
        let id = id as usize;
        self.term_starts[id] as usize..self.term_starts[id + 1] as usize
    }

    /// Every term starting with `prefix`, in term order.
    pub(crate) fn terms_with_prefix(&self, prefix: &str) -> Vec<DictionaryEntry> {
        with_prefix(&self.terms, prefix)
    }

    /// Every term the Levenshtein automaton accepts, with its distance.
    pub(crate) fn terms_within(&self, dfa: &DFA) -> Vec<DictionaryEntry> {
        collect(&self.terms, LevenshteinDfa(dfa), |state| {
            match dfa.distance(state) {
                Distance::Exact(distance) => distance,
                Distance::AtLeast(distance) => distance,
            }
        })
    }

    /// The id of a synonym phrase key.
    pub(crate) fn phrase_id(&self, key: &str) -> Option<u64> {
        self.phrases.get(key)
    }

    /// Every synonym phrase key starting with `prefix`.
    pub(crate) fn phrases_with_prefix(&self, prefix: &str) -> Vec<DictionaryEntry> {
        with_prefix(&self.phrases, prefix)
    }

    /// The documents with a synonym whose key is phrase `id`.
    pub(crate) fn phrase_docs(&self, id: u64) -> &[u32] {
        let id = id as usize;
        &self.phrase_docs[self.phrase_starts[id] as usize..self.phrase_starts[id + 1] as usize]
    }

    /// The quantities document `doc` states.
    pub(crate) fn quantities(&self, doc: u32) -> &[Quantity] {
        let doc = doc as usize;
        &self.doc_quantities
            [self.quantity_starts[doc] as usize..self.quantity_starts[doc + 1] as usize]
    }

    /// The documents of the history at `history` (its versions, in order).
    pub(crate) fn docs_of(&self, history: usize) -> Range<u32> {
        self.history_first_doc[history]..self.history_first_doc[history + 1]
    }

    /// Where document `doc` stands, compactly.
    pub(crate) fn facts(&self, doc: u32) -> &DocFacts {
        &self.doc_facts[doc as usize]
    }

    /// Document `doc` in one byte (see [`DocFacts::brief`]).
    pub(crate) fn brief(&self, doc: u32) -> u8 {
        self.doc_briefs[doc as usize]
    }

    /// The history index and version index of a document.
    pub(crate) fn locate(&self, doc: u32) -> (usize, usize) {
        let history = self.doc_history[doc as usize] as usize;
        (history, (doc - self.history_first_doc[history]) as usize)
    }
}

/// The keys of every run in one sorted fst (key → id), and where each key's
/// postings start: `append` gets each key's postings from every run, in key
/// order then run order, and answers how many postings it holds so far.
fn merge<P>(
    runs: &[Run],
    part: impl Fn(&Run) -> (&Vec<String>, &Vec<Vec<P>>),
    mut append: impl FnMut(&[P]) -> usize,
) -> (Map<Vec<u8>>, Vec<u32>) {
    let mut keys: Vec<&str> = runs
        .iter()
        .flat_map(|run| part(run).0.iter().map(String::as_str))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // Per run, the run's own number of each key (`u32::MAX`: not in the run).
    let local: Vec<Vec<u32>> = runs
        .iter()
        .map(|run| {
            let mut local = vec![u32::MAX; keys.len()];
            for (number, key) in part(run).0.iter().enumerate() {
                let at = keys
                    .binary_search(&key.as_str())
                    .expect("every key was collected");
                local[at] = to_u32(number);
            }
            local
        })
        .collect();
    let mut builder = MapBuilder::memory();
    let mut starts = Vec::with_capacity(keys.len() + 1);
    starts.push(0);
    for (id, key) in keys.iter().enumerate() {
        builder
            .insert(key, id as u64)
            .expect("dictionary keys are distinct and sorted");
        let mut held = *starts.last().expect("starts at 0") as usize;
        for (run, local) in runs.iter().zip(&local) {
            if let Some(list) = part(run).1.get(local[id] as usize) {
                held = append(list);
            }
        }
        starts.push(to_u32(held));
    }
    let bytes = builder
        .into_inner()
        .expect("an in-memory fst build does not fail");
    let map = Map::new(bytes).expect("a freshly built fst is valid");
    (map, starts)
}

/// The entries from `prefix` on while they start with it: a range walk.
fn with_prefix(map: &Map<Vec<u8>>, prefix: &str) -> Vec<DictionaryEntry> {
    let mut stream = map.range().ge(prefix).into_stream();
    let mut found = Vec::new();
    while let Some((key, id)) = stream.next() {
        if !key.starts_with(prefix.as_bytes()) {
            break;
        }
        found.push(DictionaryEntry {
            text: String::from_utf8_lossy(key).into_owned(),
            id,
            distance: 0,
        });
    }
    found
}

fn collect<A>(
    map: &Map<Vec<u8>>,
    automaton: A,
    distance: impl Fn(A::State) -> u8,
) -> Vec<DictionaryEntry>
where
    A: Automaton,
    A::State: Clone,
{
    let mut stream = map.search_with_state(automaton).into_stream();
    let mut found = Vec::new();
    while let Some((key, id, state)) = stream.next() {
        found.push(DictionaryEntry {
            text: String::from_utf8_lossy(key).into_owned(),
            id,
            distance: distance(state),
        });
    }
    found
}

/// A Levenshtein DFA from `levenshtein_automata`, run over the fst byte by byte.
struct LevenshteinDfa<'a>(&'a DFA);

impl Automaton for LevenshteinDfa<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).expect("the index holds fewer than 2^32 postings")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::CodeRegistry;

    #[test]
    fn reading_on_several_threads_builds_the_same_index() {
        let registry = CodeRegistry::built_in().unwrap();
        let histories = registry.histories();
        let alone = SearchIndex::from_runs(histories, indexing::read_in_runs(histories, 1));
        let shared = SearchIndex::from_runs(histories, indexing::read_in_runs(histories, 3));
        let parts = |index: &SearchIndex| {
            (
                index.terms.as_fst().as_bytes().to_vec(),
                index.phrases.as_fst().as_bytes().to_vec(),
                index.term_starts.clone(),
                index.posting_docs.clone(),
                index.posting_fields.clone(),
                index.phrase_starts.clone(),
                index.phrase_docs.clone(),
                index.quantity_starts.clone(),
                index.doc_quantities.clone(),
                index.doc_history.clone(),
                (index.doc_facts.clone(), index.doc_briefs.clone()),
                index.history_first_doc.clone(),
            )
        };
        assert_eq!(parts(&alone), parts(&shared));
        // Every document states what the scan reads from its text.
        for (at, history) in histories.iter().enumerate() {
            for (doc, version) in alone.docs_of(at).zip(history.versions()) {
                assert_eq!(alone.quantities(doc), version_quantities(version));
            }
        }
    }
}
