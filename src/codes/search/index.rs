//! The search index of one registry snapshot: an fst term dictionary over compact
//! postings, synonym phrases, and the quantities each code version states.
//!
//! Every version of every code is a document, numbered in code order. A term's
//! postings are the documents that contain it, each with one byte of field bits
//! (which of synonyms, short name, descriptor, … hold it): five bytes per
//! posting, no strings per document.

use std::{collections::HashMap, ops::Range};

use fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer};
use levenshtein_automata::{DFA, Distance, SINK_STATE};

use super::{
    explain::SearchField,
    quantity::{Quantity, quantities},
    standing::DocFacts,
    tokenize::{phrase_key, terms, tokens},
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
    history_first_doc: Vec<u32>,
}

/// Calls `visit` with each searchable text of a version and its field.
pub(crate) fn field_texts(version: &CodeVersion, mut visit: impl FnMut(SearchField, &str)) {
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
        let mut postings: HashMap<String, Vec<(u32, u8)>> = HashMap::new();
        let mut phrase_postings: HashMap<String, Vec<u32>> = HashMap::new();
        let mut quantity_starts = vec![0];
        let mut doc_quantities = Vec::new();
        let mut doc_history = Vec::new();
        let mut doc_facts = Vec::new();
        let mut history_first_doc = Vec::with_capacity(histories.len() + 1);
        let mut doc = 0u32;
        for (history_index, history) in histories.iter().enumerate() {
            history_first_doc.push(doc);
            for (at, version) in history.versions().iter().enumerate() {
                doc_facts.push(DocFacts::of(history.versions(), at));
                field_texts(version, |field, text| {
                    for (term, _) in terms(text) {
                        let list = match postings.get_mut(&term) {
                            Some(list) => list,
                            None => postings.entry(term).or_default(),
                        };
                        match list.last_mut() {
                            Some((last, bits)) if *last == doc => *bits |= field.bit(),
                            _ => list.push((doc, field.bit())),
                        }
                    }
                });
                for synonym in &version.synonyms {
                    let key = phrase_key(synonym);
                    let list = phrase_postings.entry(key).or_default();
                    if list.last() != Some(&doc) {
                        list.push(doc);
                    }
                }
                doc_quantities.extend(version_quantities(version));
                quantity_starts.push(to_u32(doc_quantities.len()));
                doc_history.push(to_u32(history_index));
                doc += 1;
            }
        }
        history_first_doc.push(doc);

        let (terms, term_starts, flat) = dictionary(postings);
        let (posting_docs, posting_fields) = flat.into_iter().unzip();
        phrase_postings.remove("");
        let (phrases, phrase_starts, phrase_docs) = dictionary(phrase_postings);
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

    /// The history index and version index of a document.
    pub(crate) fn locate(&self, doc: u32) -> (usize, usize) {
        let history = self.doc_history[doc as usize] as usize;
        (history, (doc - self.history_first_doc[history]) as usize)
    }
}

/// Sorts keyed postings into an fst (key → id) with flattened postings.
fn dictionary<P>(postings: HashMap<String, Vec<P>>) -> (Map<Vec<u8>>, Vec<u32>, Vec<P>) {
    let mut entries: Vec<(String, Vec<P>)> = postings.into_iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut builder = MapBuilder::memory();
    let mut starts = Vec::with_capacity(entries.len() + 1);
    let mut flat = Vec::new();
    for (id, (key, list)) in entries.into_iter().enumerate() {
        starts.push(to_u32(flat.len()));
        // Keys are distinct and sorted, so insertion cannot fail.
        builder
            .insert(key, id as u64)
            .expect("dictionary keys are distinct and sorted");
        flat.extend(list);
    }
    starts.push(to_u32(flat.len()));
    let bytes = builder
        .into_inner()
        .expect("an in-memory fst build does not fail");
    let map = Map::new(bytes).expect("a freshly built fst is valid");
    (map, starts, flat)
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
