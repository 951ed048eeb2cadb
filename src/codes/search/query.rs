//! Planning a query: splitting it into words and looking each up in the term
//! dictionary (exact, prefix, fuzzy), the abbreviation map and the codes.
//!
//! Planning is the only step that reads the term dictionary; ranking then only
//! follows postings (or, for the brute-force scan, reads documents), so the two
//! rank by the same rules.

use std::sync::LazyLock;

use levenshtein_automata::LevenshteinAutomatonBuilder;

use super::{
    MAX_QUERY_WORDS,
    abbreviations::Abbreviations,
    explain::MatchKind,
    index::{DictionaryEntry, SearchIndex},
    plan::{
        CodeTarget, Expansion, PlannedCodes, PlannedPhrase, PlannedTerm, QueryPlan, QueryQuantity,
        QueryWord, Role, TermKind,
    },
    quantity::{is_count_word, quantities},
    tokenize::{is_stop_word, normalise, number, tokens},
    weights,
};
use crate::codes::CodeValue;

/// Most dictionary terms one prefix or fuzzy word expands to; the most frequent
/// are kept, so that a short prefix cannot touch the whole index.
const EXPANSION_CAP: usize = 48;

/// The cap for a word typed so far: two letters say little yet, and would
/// otherwise expand to hundreds of terms in a large code set.
fn expansion_cap(typed: &str) -> usize {
    match typed.chars().count() {
        0..=2 => 8,
        3 => 16,
        _ => EXPANSION_CAP,
    }
}

/// Longest run of words looked up as a synonym phrase.
const MAX_PHRASE_WORDS: usize = 5;

/// Levenshtein tables for distance 1 and 2, transpositions counting as one edit
/// ("epidrual"); built once per process, then each word's DFA takes microseconds.
static DISTANCE_ONE: LazyLock<LevenshteinAutomatonBuilder> =
    LazyLock::new(|| LevenshteinAutomatonBuilder::new(1, true));
static DISTANCE_TWO: LazyLock<LevenshteinAutomatonBuilder> =
    LazyLock::new(|| LevenshteinAutomatonBuilder::new(2, true));

impl QueryPlan {
    /// Plans `text` against the dictionaries of `index`.
    pub fn new(text: &str, index: &SearchIndex, abbreviations: &Abbreviations) -> QueryPlan {
        let all_tokens = tokens(text);
        let mut plan = QueryPlan::default();
        let mut kept = Vec::new();
        for token in &all_tokens {
            let term = normalise(token.raw);
            if !is_stop_word(&term) && kept.len() < MAX_QUERY_WORDS {
                kept.push((token, term));
            }
        }
        if kept.is_empty() {
            // A query of stop words alone still means something to look for.
            kept = all_tokens
                .iter()
                .take(MAX_QUERY_WORDS)
                .map(|token| (token, normalise(token.raw)))
                .collect();
        }
        let still_typing = !text.ends_with(char::is_whitespace);
        let last_token = all_tokens.last().map(|token| token.start);
        let common = |term: &str| {
            index.term_id(term).is_some_and(|id| {
                f64::from(index.document_frequency(id))
                    > weights::COMMON_SHARE * index.documents() as f64
            })
        };
        for (token, term) in &kept {
            plan.words.push(QueryWord {
                text: token.raw.to_lowercase(),
                required: !is_count_word(term) && !common(term),
                as_prefix: still_typing && Some(token.start) == last_token,
                term: term.clone(),
            });
        }
        if plan.words.iter().all(|word| !word.required) {
            for word in &mut plan.words {
                word.required = !is_count_word(&word.term);
            }
            if plan.words.iter().all(|word| !word.required) {
                plan.words.iter_mut().for_each(|word| word.required = true);
            }
        }
        plan.required = plan.words.iter().filter(|word| word.required).count();

        let raw: Vec<&str> = kept.iter().map(|(token, _)| token.raw).collect();
        for (position, raw) in raw.iter().enumerate() {
            plan.plan_word(position, raw, index, abbreviations);
        }
        plan.plan_phrases(index);
        plan.quantities = quantities(&all_tokens, true)
            .into_iter()
            .map(|found| {
                let start = all_tokens[found.first].start;
                let last = all_tokens[found.last];
                QueryQuantity {
                    quantity: found.quantity,
                    text: text[start..last.start + last.raw.len()].to_lowercase(),
                }
            })
            .collect();
        plan
    }

    fn plan_word(
        &mut self,
        position: usize,
        raw: &str,
        index: &SearchIndex,
        abbreviations: &Abbreviations,
    ) {
        let word = self.words[position].clone();
        let documents = index.documents();
        let code_shaped = code_shaped(raw);
        if code_shaped {
            let upper = raw.to_uppercase();
            let (target, kind, score) = match CodeValue::parse(&upper) {
                Ok(code) => (
                    CodeTarget::Exact(code),
                    MatchKind::Code,
                    weights::EXACT_CODE,
                ),
                Err(_) => (
                    CodeTarget::Prefix(upper),
                    MatchKind::CodePrefix,
                    weights::CODE_PREFIX,
                ),
            };
            self.codes.push(PlannedCodes {
                word: position,
                target,
                kind,
                score,
            });
        }

        let exact = index.term_id(&word.term);
        if let Some(id) = exact {
            self.add_term(
                Role::Word(position),
                &word.term,
                id,
                TermKind::Exact,
                1.0,
                index,
            );
        }
        let mut prefixed = Vec::new();
        if word.as_prefix && word.term.chars().count() >= 2 {
            prefixed = index.terms_with_prefix(&word.term);
            prefixed.retain(|entry| entry.text != word.term);
            for entry in most_frequent(prefixed.clone(), expansion_cap(&word.term), index) {
                let factor = weights::prefix_factor(&word.term, &entry.text);
                self.add_term(
                    Role::Word(position),
                    &entry.text,
                    entry.id,
                    TermKind::Prefix,
                    factor,
                    index,
                );
            }
        }
        let letters = word.term.chars().count();
        let fuzzable = !code_shaped && number(&word.term).is_none() && letters >= 4;
        if fuzzable && exact.is_none() && prefixed.is_empty() {
            let builder = if letters >= 8 {
                &*DISTANCE_TWO
            } else {
                &*DISTANCE_ONE
            };
            let dfa = if word.as_prefix {
                builder.build_prefix_dfa(&word.term)
            } else {
                builder.build_dfa(&word.term)
            };
            let mut near = index.terms_within(&dfa);
            near.retain(|entry| entry.distance > 0);
            for entry in most_frequent(near, EXPANSION_CAP, index) {
                let factor = weights::fuzzy_factor(entry.distance, word.as_prefix);
                self.add_term(
                    Role::Word(position),
                    &entry.text,
                    entry.id,
                    TermKind::Fuzzy,
                    factor,
                    index,
                );
            }
        }

        if let Some(meaning) = abbreviations.meaning(&word.term) {
            for (phrase, words) in meaning.phrases.iter().zip(&meaning.phrase_terms) {
                let ids: Option<Vec<u64>> = words.iter().map(|term| index.term_id(term)).collect();
                let Some(ids) = ids else { continue };
                let expansion = self.expansions.len();
                let components = (0..ids.len())
                    .map(|offset| self.terms.len() + offset)
                    .collect();
                for (term, id) in words.iter().zip(ids) {
                    self.add_term(
                        Role::Component(expansion),
                        term,
                        id,
                        TermKind::Exact,
                        1.0,
                        index,
                    );
                }
                self.expansions.push(Expansion {
                    word: position,
                    phrase: phrase.clone(),
                    components,
                });
            }
            let named = u32::try_from(meaning.codes.len()).unwrap_or(u32::MAX);
            for code in &meaning.codes {
                self.codes.push(PlannedCodes {
                    word: position,
                    target: CodeTarget::Exact(*code),
                    kind: MatchKind::Abbreviation,
                    score: weights::named_code_score(named, documents),
                });
            }
        }
    }

    fn add_term(
        &mut self,
        role: Role,
        text: &str,
        id: u64,
        kind: TermKind,
        factor: f64,
        index: &SearchIndex,
    ) {
        let idf =
            weights::inverse_document_frequency(index.document_frequency(id), index.documents());
        self.terms.push(PlannedTerm {
            role,
            text: text.to_string(),
            id,
            kind,
            worth: factor * idf,
        });
    }

    fn plan_phrases(&mut self, index: &SearchIndex) {
        let count = self.words.len();
        for first in 0..count {
            for last in first..count.min(first + MAX_PHRASE_WORDS) {
                let whole = first == 0 && last + 1 == count;
                if last == first && !whole {
                    continue;
                }
                let key: Vec<&str> = self.words[first..=last]
                    .iter()
                    .map(|word| word.term.as_str())
                    .collect();
                let key = key.join(" ");
                let length = (last - first + 1) as f64;
                if self.words[last].as_prefix {
                    for entry in index
                        .phrases_with_prefix(&key)
                        .into_iter()
                        .take(EXPANSION_CAP)
                    {
                        let factor = if entry.text == key {
                            1.0
                        } else {
                            weights::PHRASE_PREFIX_FACTOR
                        };
                        self.phrases.push(PlannedPhrase {
                            words: (first, last),
                            key: entry.text,
                            id: entry.id,
                            score: weights::PHRASE_PER_WORD * length * factor,
                        });
                    }
                } else if let Some(id) = index.phrase_id(&key) {
                    self.phrases.push(PlannedPhrase {
                        words: (first, last),
                        key,
                        id,
                        score: weights::PHRASE_PER_WORD * length,
                    });
                }
            }
        }
    }
}

/// At most `cap` entries, the most frequent first kept, then in term
/// order so that plans are deterministic.
fn most_frequent(
    mut entries: Vec<DictionaryEntry>,
    cap: usize,
    index: &SearchIndex,
) -> Vec<DictionaryEntry> {
    if entries.len() > cap {
        entries.sort_by(|a, b| {
            a.distance
                .cmp(&b.distance)
                .then(
                    index
                        .document_frequency(b.id)
                        .cmp(&index.document_frequency(a.id)),
                )
                .then_with(|| a.text.cmp(&b.text))
        });
        entries.truncate(cap);
        entries.sort_by(|a, b| a.text.cmp(&b.text));
    }
    entries
}

/// True for a word that looks like a code or the start of one: three to five
/// characters, digits with an optional final category letter, or a HCPCS letter
/// and digits. Such words are never fuzzed.
pub(crate) fn code_shaped(word: &str) -> bool {
    let bytes = word.as_bytes();
    if !(3..=5).contains(&bytes.len()) || !word.is_ascii() {
        return false;
    }
    let digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);
    let (first, rest) = (bytes[0], &bytes[1..]);
    let last = bytes[bytes.len() - 1].to_ascii_uppercase();
    digits(bytes)
        || (bytes.len() == 5 && digits(&bytes[..4]) && matches!(last, b'F' | b'T' | b'U' | b'M'))
        || (matches!(first.to_ascii_uppercase(), b'A'..=b'V') && digits(rest) && rest.len() >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_shapes() {
        for shaped in ["6449", "64483", "0521f", "G0260", "g02", "644"] {
            assert!(code_shaped(shaped), "{shaped}");
        }
        for word in ["64", "l5", "kypho", "3", "648888", "mbb"] {
            assert!(!code_shaped(word), "{word}");
        }
    }
}
