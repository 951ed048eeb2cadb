//! Reading the code set into postings, the expensive half of building a
//! [`SearchIndex`](super::SearchIndex), on every core.
//!
//! A large code set says the same few thousand words millions of times, so each
//! distinct written word is normalised once per thread and remembered; every text
//! is split once, and the same split feeds the postings and the quantities. The
//! histories are cut into one contiguous run per core; each run's documents
//! follow the previous run's, so concatenating the runs' postings term by term
//! keeps every posting list in document order.

use std::{collections::HashMap as StdHashMap, ops::Range};

use foldhash::fast::FixedState;

use super::{
    explain::SearchField,
    index::field_texts,
    quantity::{Found, Quantity, may_begin_quantity, quantities_of_terms},
    standing::DocFacts,
    tokenize::{Token, is_stop_word, normalise, phrase_key, tokens_into},
};
use crate::codes::registry::CodeHistory;

/// Keys are the code set's own words, not an attacker's, so a fixed fast hash
/// is safe here.
type HashMap<K, V> = StdHashMap<K, V, FixedState>;

/// Below this many histories a second thread costs more than it saves.
const HISTORIES_PER_THREAD: usize = 4096;

/// What one run of histories holds, with terms and phrases numbered locally.
#[derive(Debug, Default)]
pub(super) struct Run {
    /// Indexable terms, in order of first use; `postings[t]` belongs to `terms[t]`.
    pub terms: Vec<String>,
    /// Per term: (document, field bits), documents ascending.
    pub postings: Vec<Vec<(u32, u8)>>,
    /// Synonym phrase keys, in order of first use.
    pub phrases: Vec<String>,
    /// Per phrase: the documents, ascending.
    pub phrase_docs: Vec<Vec<u32>>,
    /// Per document: how many quantities it states.
    pub quantity_counts: Vec<u32>,
    /// The quantities of every document, in document order.
    pub quantities: Vec<Quantity>,
    /// Per document: its history's index.
    pub doc_history: Vec<u32>,
    /// Per document: where it stands.
    pub doc_facts: Vec<DocFacts>,
}

/// A written word as the index sees it.
#[derive(Debug, Clone, Copy)]
struct Word {
    /// Index of its normalised form in `Reader::normalised`.
    normalised: u32,
    /// Its term number in the run; `None` for a stop word.
    term: Option<u32>,
    /// It may begin a quantity (a text without such a word states none).
    counts: bool,
}

/// One thread's reading state: the run so far and the words already normalised.
struct Reader<'a> {
    run: Run,
    written: HashMap<&'a str, Word>,
    normalised: Vec<String>,
    by_normalised: HashMap<String, Word>,
    synonyms: HashMap<&'a str, Option<u32>>,
    by_key: HashMap<String, u32>,
    // A split text: its terms and quantities, ranges of the two vectors below.
    texts: HashMap<&'a str, (Range<u32>, Range<u32>)>,
    text_terms: Vec<u32>,
    text_quantities: Vec<Quantity>,
    tokens: Vec<Token<'a>>,
    words: Vec<Word>,
    found: Vec<Found>,
    stated: Vec<Quantity>,
}

/// Reads `histories` (in code order) into runs, one per available core when
/// there are enough histories. The runs are in order and their documents
/// consecutive, starting from 0.
pub(super) fn read_runs(histories: &[CodeHistory]) -> Vec<Run> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    read_in_runs(histories, cores.min(histories.len() / HISTORIES_PER_THREAD))
}

/// [`read_runs`] on `threads` threads (at least one).
pub(super) fn read_in_runs(histories: &[CodeHistory], threads: usize) -> Vec<Run> {
    let threads = threads.max(1);
    if threads == 1 || histories.is_empty() {
        return vec![read_run(histories, 0, 0)];
    }
    let per_thread = histories.len().div_ceil(threads);
    let mut starts = Vec::with_capacity(threads);
    let mut first_doc = 0u32;
    for (at, chunk) in histories.chunks(per_thread).enumerate() {
        starts.push((at * per_thread, first_doc, chunk));
        let versions: usize = chunk.iter().map(|history| history.versions().len()).sum();
        first_doc += u32::try_from(versions).expect("fewer than 2^32 documents");
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = starts
            .into_iter()
            .map(|(first_history, first_doc, chunk)| {
                scope.spawn(move || read_run(chunk, first_history, first_doc))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .expect("an index reader thread does not panic")
            })
            .collect()
    })
}

/// One run: `histories` are numbered from `first_history`, their documents from
/// `first_doc`.
fn read_run(histories: &[CodeHistory], first_history: usize, first_doc: u32) -> Run {
    let mut reader = Reader {
        run: Run::default(),
        written: HashMap::default(),
        normalised: Vec::new(),
        by_normalised: HashMap::default(),
        synonyms: HashMap::default(),
        by_key: HashMap::default(),
        texts: HashMap::default(),
        text_terms: Vec::new(),
        text_quantities: Vec::new(),
        tokens: Vec::new(),
        words: Vec::new(),
        found: Vec::new(),
        stated: Vec::new(),
    };
    let mut doc = first_doc;
    for (offset, history) in histories.iter().enumerate() {
        let history_number = u32::try_from(first_history + offset).expect("fewer than 2^32 codes");
        for (at, version) in history.versions().iter().enumerate() {
            reader
                .run
                .doc_facts
                .push(DocFacts::of(history.versions(), at));
            reader.stated.clear();
            field_texts(version, |field, text| reader.read_text(doc, field, text));
            for synonym in &version.synonyms {
                reader.read_synonym(doc, synonym);
            }
            reader.stated.sort_unstable();
            reader.stated.dedup();
            reader.run.quantities.extend_from_slice(&reader.stated);
            let count = u32::try_from(reader.stated.len()).expect("few quantities per code");
            reader.run.quantity_counts.push(count);
            reader.run.doc_history.push(history_number);
            doc += 1;
        }
    }
    reader.run
}

impl<'a> Reader<'a> {
    fn read_text(&mut self, doc: u32, field: SearchField, text: &'a str) {
        // Hierarchy, anatomy and synonym texts repeat across thousands of codes:
        // they are split once. Descriptors and short names rarely repeat.
        let reusable = !matches!(field, SearchField::Descriptor | SearchField::ShortName);
        let states_quantities = matches!(
            field,
            SearchField::Descriptor | SearchField::ShortName | SearchField::Synonyms
        );
        let known = if reusable {
            self.texts.get(text).cloned()
        } else {
            None
        };
        let cached = known.is_some();
        let (terms, quantities) = match known {
            Some(known) => known,
            None => self.split(text, reusable || states_quantities),
        };
        for term in &self.text_terms[terms.start as usize..terms.end as usize] {
            let list = &mut self.run.postings[*term as usize];
            match list.last_mut() {
                Some((last, bits)) if *last == doc => *bits |= field.bit(),
                _ => list.push((doc, field.bit())),
            }
        }
        // The same texts as `version_quantities` reads.
        if states_quantities {
            self.stated.extend_from_slice(
                &self.text_quantities[quantities.start as usize..quantities.end as usize],
            );
        }
        if reusable && !cached {
            self.texts.insert(text, (terms, quantities));
        } else if !reusable {
            // Only cached texts keep their words.
            self.text_terms.truncate(terms.start as usize);
            self.text_quantities.truncate(quantities.start as usize);
        }
    }

    /// Splits `text` into its terms and, when `with_quantities`, the quantities
    /// it states, appended to `text_terms` and `text_quantities`.
    fn split(&mut self, text: &'a str, with_quantities: bool) -> (Range<u32>, Range<u32>) {
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens_into(text, &mut tokens);
        self.words.clear();
        let first_term = to_u32(self.text_terms.len());
        for token in &tokens {
            let word = self.word(token.raw);
            self.words.push(word);
            self.text_terms.extend(word.term);
        }
        let first_quantity = to_u32(self.text_quantities.len());
        if with_quantities && self.words.iter().any(|word| word.counts) {
            let terms: Vec<&str> = self
                .words
                .iter()
                .map(|word| self.normalised[word.normalised as usize].as_str())
                .collect();
            self.found.clear();
            quantities_of_terms(&tokens, &terms, false, &mut self.found);
            self.text_quantities
                .extend(self.found.iter().map(|found| found.quantity));
        }
        self.tokens = tokens;
        (
            first_term..to_u32(self.text_terms.len()),
            first_quantity..to_u32(self.text_quantities.len()),
        )
    }

    fn word(&mut self, raw: &'a str) -> Word {
        if let Some(word) = self.written.get(raw) {
            return *word;
        }
        let normalised = normalise(raw);
        let word = match self.by_normalised.get(&normalised) {
            Some(word) => *word,
            None => {
                let term = (!is_stop_word(&normalised)).then(|| {
                    self.run.terms.push(normalised.clone());
                    self.run.postings.push(Vec::new());
                    to_u32(self.run.terms.len() - 1)
                });
                let word = Word {
                    normalised: to_u32(self.normalised.len()),
                    term,
                    counts: may_begin_quantity(&normalised),
                };
                self.normalised.push(normalised.clone());
                self.by_normalised.insert(normalised, word);
                word
            }
        };
        self.written.insert(raw, word);
        word
    }

    fn read_synonym(&mut self, doc: u32, synonym: &'a str) {
        let phrase = match self.synonyms.get(synonym) {
            Some(phrase) => *phrase,
            None => {
                let key = phrase_key(synonym);
                let phrase = (!key.is_empty()).then(|| match self.by_key.get(&key) {
                    Some(phrase) => *phrase,
                    None => {
                        self.run.phrases.push(key.clone());
                        self.run.phrase_docs.push(Vec::new());
                        let phrase = to_u32(self.run.phrases.len() - 1);
                        self.by_key.insert(key, phrase);
                        phrase
                    }
                });
                self.synonyms.insert(synonym, phrase);
                phrase
            }
        };
        if let Some(phrase) = phrase {
            let list = &mut self.run.phrase_docs[phrase as usize];
            if list.last() != Some(&doc) {
                list.push(doc);
            }
        }
    }
}

fn to_u32(value: usize) -> u32 {
    u32::try_from(value).expect("fewer than 2^32 distinct words")
}
