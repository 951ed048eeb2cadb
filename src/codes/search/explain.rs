//! Why a code was found: for each query word, the field and the kind of match that
//! scored best, plus the synonym phrase and the quantities the code met.
//!
//! Explanations are worked out only for the codes a caller is shown (one page),
//! from the same plan and postings that ranked them, so they always agree with
//! the score.

use super::{
    index::SearchIndex,
    plan::{QueryPlan, Role, TermKind},
    quantity::{Quantity, quantities},
    rank::expansion_score,
    tokenize::{normalise, phrase_key, tokens},
    weights::{field_weight, strongest_field},
};
use crate::codes::record::CodeVersion;

/// A searchable field of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchField {
    /// The code itself.
    Code,
    /// Lay terms and abbreviations.
    Synonyms,
    /// The short name.
    ShortName,
    /// The descriptor.
    Descriptor,
    /// The anatomy.
    Anatomy,
    /// Third level of the hierarchy.
    Heading,
    /// Second level of the hierarchy.
    Subsection,
    /// Top level of the hierarchy.
    Section,
}

impl SearchField {
    /// The field's bit in a posting's field set.
    pub(crate) const fn bit(self) -> u8 {
        match self {
            SearchField::Code => 0,
            SearchField::Synonyms => 1,
            SearchField::ShortName => 1 << 1,
            SearchField::Descriptor => 1 << 2,
            SearchField::Anatomy => 1 << 3,
            SearchField::Heading => 1 << 4,
            SearchField::Subsection => 1 << 5,
            SearchField::Section => 1 << 6,
        }
    }

    /// The name of the field in the `Code` message.
    pub fn name(self) -> &'static str {
        match self {
            SearchField::Code => "code",
            SearchField::Synonyms => "synonyms",
            SearchField::ShortName => "short_name",
            SearchField::Descriptor => "descriptor",
            SearchField::Anatomy => "anatomy",
            SearchField::Heading => "heading",
            SearchField::Subsection => "subsection",
            SearchField::Section => "section",
        }
    }
}

/// How a query word met a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The word itself.
    Exact,
    /// A word the query word begins (the word still being typed).
    Prefix,
    /// A word within the forgiven edit distance of a typo.
    Fuzzy,
    /// The code itself.
    Code,
    /// A code the query word begins.
    CodePrefix,
    /// What an abbreviation or lay word means, or a code it names.
    Abbreviation,
    /// Several query words that together are one of the code's synonyms.
    Phrase,
    /// A count or side the query states, met by the code's own ("3 muscles" and
    /// "three or more muscles").
    Quantity,
}

impl From<TermKind> for MatchKind {
    fn from(kind: TermKind) -> MatchKind {
        match kind {
            TermKind::Exact => MatchKind::Exact,
            TermKind::Prefix => MatchKind::Prefix,
            TermKind::Fuzzy => MatchKind::Fuzzy,
        }
    }
}

/// One reason a code was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchMatch {
    /// The query word (or words) as typed, lower-cased.
    pub query_word: String,
    /// The field that matched.
    pub field: SearchField,
    /// How it matched.
    pub kind: MatchKind,
    /// The text of the code that matched, as the code set writes it.
    pub matched_text: String,
}

/// The reasons document `doc` (holding `version`) matched `plan`.
pub(crate) fn explain(
    plan: &QueryPlan,
    index: &SearchIndex,
    doc: u32,
    version: &CodeVersion,
) -> Vec<SearchMatch> {
    let mut matches = Vec::new();
    for (position, word) in plan.words.iter().enumerate() {
        let mut best: Option<(f64, SearchMatch)> = None;
        let mut offer = |score: f64, field: SearchField, kind: MatchKind, matched_text: String| {
            if best.as_ref().is_none_or(|(top, _)| score > *top) {
                let query_word = word.text.clone();
                best = Some((
                    score,
                    SearchMatch {
                        query_word,
                        field,
                        kind,
                        matched_text,
                    },
                ));
            }
        };
        for term in plan
            .terms
            .iter()
            .filter(|term| term.role == Role::Word(position))
        {
            let bits = index.fields_of(term.id, doc);
            if let Some(field) = strongest_field(bits) {
                let text = written(version, field, &term.text);
                offer(
                    term.worth * field_weight(bits),
                    field,
                    term.kind.into(),
                    text,
                );
            }
        }
        for expansion in plan
            .expansions
            .iter()
            .filter(|expansion| expansion.word == position)
        {
            let bits: Vec<u8> = expansion
                .components
                .iter()
                .map(|component| index.fields_of(plan.terms[*component].id, doc))
                .collect();
            let all = bits.iter().fold(0, |all, bits| all | bits);
            if let (false, Some(field)) = (bits.contains(&0), strongest_field(all)) {
                let score = expansion_score(plan, expansion, &bits);
                offer(
                    score,
                    field,
                    MatchKind::Abbreviation,
                    expansion.phrase.clone(),
                );
            }
        }
        for codes in plan.codes.iter().filter(|codes| codes.word == position) {
            if codes.target.names(version.code) {
                offer(
                    codes.score,
                    SearchField::Code,
                    codes.kind,
                    version.code.to_string(),
                );
            }
        }
        matches.extend(best.map(|(_, found)| found));
    }

    let phrase = plan
        .phrases
        .iter()
        .filter(|phrase| index.phrase_docs(phrase.id).binary_search(&doc).is_ok())
        .max_by(|a, b| a.score.total_cmp(&b.score));
    if let Some(phrase) = phrase {
        let (first, last) = phrase.words;
        let typed: Vec<&str> = plan.words[first..=last]
            .iter()
            .map(|word| word.text.as_str())
            .collect();
        let synonym = version
            .synonyms
            .iter()
            .find(|synonym| phrase_key(synonym) == phrase.key);
        matches.push(SearchMatch {
            query_word: typed.join(" "),
            field: SearchField::Synonyms,
            kind: MatchKind::Phrase,
            matched_text: synonym.map_or_else(|| phrase.key.clone(), ToString::to_string),
        });
    }

    for stated in &plan.quantities {
        if let Some((field, text)) = stating(version, &stated.quantity) {
            matches.push(SearchMatch {
                query_word: stated.text.clone(),
                field,
                kind: MatchKind::Quantity,
                matched_text: text,
            });
        }
    }
    matches
}

/// The word of `field` that normalises to `term`, as written.
fn written(version: &CodeVersion, field: SearchField, term: &str) -> String {
    let mut found = None;
    super::index::field_texts(version, |candidate, text| {
        if candidate == field && found.is_none() {
            found = tokens(text)
                .into_iter()
                .find(|token| normalise(token.raw) == term)
                .map(|token| token.raw.to_string());
        }
    });
    found.unwrap_or_else(|| term.to_string())
}

/// Where the version states a quantity that `query` meets, and how it says it.
fn stating(version: &CodeVersion, query: &Quantity) -> Option<(SearchField, String)> {
    let texts = std::iter::once((SearchField::Descriptor, &*version.descriptor))
        .chain([(SearchField::ShortName, &*version.short_name)])
        .chain(
            version
                .synonyms
                .iter()
                .map(|synonym| (SearchField::Synonyms, &**synonym)),
        );
    for (field, text) in texts {
        let words = tokens(text);
        if let Some(found) = quantities(&words, false)
            .into_iter()
            .find(|found| query.meets(&found.quantity))
        {
            let end = words[found.last].start + words[found.last].raw.len();
            return Some((field, text[words[found.first].start..end].to_string()));
        }
    }
    None
}
