//! The plan of a query: its words, and for each word the dictionary terms,
//! abbreviation meanings and codes that can satisfy it, with what each is worth.
//! [`super::query`] makes it; ranking, the scan and explanations read it.

use super::{explain::MatchKind, quantity::Quantity};
use crate::codes::CodeValue;

/// One word of the query.
#[derive(Debug, Clone)]
pub(crate) struct QueryWord {
    /// As typed, lower-cased, for explanations.
    pub text: String,
    /// Normalised.
    pub term: String,
    /// The last word, still being typed: it also matches as a prefix.
    pub as_prefix: bool,
    /// A result must match it (count words such as "3" or "left" need not).
    pub required: bool,
}

/// How a dictionary term relates to the query word it stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TermKind {
    /// The word itself.
    Exact,
    /// A term the word begins.
    Prefix,
    /// A term within the allowed edit distance.
    Fuzzy,
}

/// What a planned term is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Satisfies query word `n`.
    Word(usize),
    /// One of the words of expansion `n`, all of which must be present.
    Component(usize),
}

/// A dictionary term the query looks for.
#[derive(Debug, Clone)]
pub(crate) struct PlannedTerm {
    /// What it is for.
    pub role: Role,
    /// The normalised term.
    pub text: String,
    /// Its dictionary id.
    pub id: u64,
    /// How it relates to the query word.
    pub kind: TermKind,
    /// Kind factor times inverse document frequency; times a field weight, the
    /// term's score.
    pub worth: f64,
}

/// An abbreviation meaning: the term's phrase, every word of which a code must
/// hold.
#[derive(Debug, Clone)]
pub(crate) struct Expansion {
    /// The query word it stands in for.
    pub word: usize,
    /// The phrase as the abbreviation file writes it.
    pub phrase: String,
    /// Indexes into [`QueryPlan::terms`] of its words.
    pub components: Vec<usize>,
}

/// Codes a query word names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CodeTarget {
    /// This code.
    Exact(CodeValue),
    /// Every code starting with this text (upper case).
    Prefix(String),
}

impl CodeTarget {
    /// True when `code` is named.
    pub fn names(&self, code: CodeValue) -> bool {
        match self {
            CodeTarget::Exact(exact) => *exact == code,
            CodeTarget::Prefix(prefix) => code.as_str().starts_with(prefix.as_str()),
        }
    }
}

/// A code match the query looks for.
#[derive(Debug, Clone)]
pub(crate) struct PlannedCodes {
    /// The query word.
    pub word: usize,
    /// The codes.
    pub target: CodeTarget,
    /// `Code`, `CodePrefix` or `Abbreviation`.
    pub kind: MatchKind,
    /// What a named code scores for the word.
    pub score: f64,
}

/// A run of query words that is (or, ending in the word being typed, begins) a
/// synonym phrase.
#[derive(Debug, Clone)]
pub(crate) struct PlannedPhrase {
    /// The query words it covers, inclusive.
    pub words: (usize, usize),
    /// The synonym phrase key found.
    pub key: String,
    /// Its id in the phrase dictionary.
    pub id: u64,
    /// What it adds to a code holding the synonym.
    pub score: f64,
}

/// A quantity the query states, with the text that states it.
#[derive(Debug, Clone)]
pub(crate) struct QueryQuantity {
    /// The quantity.
    pub quantity: Quantity,
    /// As typed, e.g. "3 muscles".
    pub text: String,
}

/// Everything ranking needs to know about a query.
#[derive(Debug, Clone, Default)]
pub(crate) struct QueryPlan {
    /// The words, stop words left out.
    pub words: Vec<QueryWord>,
    /// Dictionary terms looked for.
    pub terms: Vec<PlannedTerm>,
    /// Abbreviation phrases looked for.
    pub expansions: Vec<Expansion>,
    /// Codes looked for.
    pub codes: Vec<PlannedCodes>,
    /// Synonym phrases looked for.
    pub phrases: Vec<PlannedPhrase>,
    /// Quantities stated.
    pub quantities: Vec<QueryQuantity>,
    /// How many words a full match satisfies.
    pub required: usize,
}
