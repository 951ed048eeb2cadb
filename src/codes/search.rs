//! Ranked code search over codes, descriptors, synonyms and the hierarchy.
//!
//! Each code version's text is split into lowercase words once, when the registry
//! is built. A query is split the same way; a code matches when every query word
//! matches one of its fields (the last word also as a prefix, so results follow
//! typing), and a code or code prefix ranks above any text match. When no code
//! matches every word, codes matching most of them are returned instead.

use jiff::civil::Date;

use super::{
    filter::CodeFilter,
    record::{CodeAsOf, CodeVersion},
    registry::CodeRegistry,
};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;

/// Most words of a query that are matched; the rest are ignored.
pub const MAX_QUERY_WORDS: usize = 16;

/// How much a word matching each field counts, best field first.
const FIELD_WEIGHTS: [(Field, f64); 7] = [
    (Field::Synonyms, 6.0),
    (Field::ShortName, 4.0),
    (Field::Descriptor, 3.0),
    (Field::Anatomy, 3.0),
    (Field::Heading, 2.0),
    (Field::Subsection, 1.0),
    (Field::Section, 1.0),
];

const EXACT_CODE_SCORE: f64 = 1000.0;
const CODE_PREFIX_SCORE: f64 = 500.0;
const WHOLE_SYNONYM_SCORE: f64 = 20.0;
const PREFIX_FACTOR: f64 = 0.8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Synonyms,
    ShortName,
    Descriptor,
    Anatomy,
    Heading,
    Subsection,
    Section,
}

/// The words of one code version, split once per registry.
#[derive(Debug, Default)]
pub struct SearchDocument {
    fields: Vec<(Field, Vec<String>)>,
    whole_synonyms: Vec<String>,
}

impl SearchDocument {
    /// Splits a version's searchable text into words.
    pub fn of(version: &CodeVersion) -> SearchDocument {
        let synonym_text = version.synonyms.join(" ");
        let texts: [(Field, &str); 7] = [
            (Field::Synonyms, &synonym_text),
            (Field::ShortName, &version.short_name),
            (Field::Descriptor, &version.descriptor),
            (Field::Anatomy, &version.anatomy),
            (Field::Heading, &version.heading),
            (Field::Subsection, &version.subsection),
            (Field::Section, &version.section),
        ];
        SearchDocument {
            fields: texts
                .iter()
                .map(|(field, text)| (*field, words(text).collect()))
                .collect(),
            whole_synonyms: version
                .synonyms
                .iter()
                .map(|synonym| normalise(synonym))
                .collect(),
        }
    }

    fn word_score(&self, word: &str, as_prefix: bool) -> f64 {
        let mut best: f64 = 0.0;
        for (field, field_words) in &self.fields {
            let weight = FIELD_WEIGHTS
                .iter()
                .find(|(known, _)| known == field)
                .map_or(0.0, |(_, weight)| *weight);
            for candidate in field_words {
                let score = if candidate == word {
                    weight
                } else if as_prefix && candidate.starts_with(word) {
                    weight * PREFIX_FACTOR
                } else {
                    continue;
                };
                best = best.max(score);
            }
        }
        best
    }
}

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

/// One code found, with its relevance.
#[derive(Debug, Clone, Copy)]
pub struct SearchHit<'a> {
    /// The code as it stands on the day searched.
    pub found: CodeAsOf<'a>,
    /// Relevance; higher is better.
    pub score: f64,
}

impl CodeRegistry {
    /// Every code that matches `query`, best first, ties in code order. An empty
    /// query lists the filtered codes in code order with score 0.
    pub fn search<'a>(&'a self, query: &SearchQuery<'a>) -> Vec<SearchHit<'a>> {
        let text = normalise(query.text);
        if text.is_empty() {
            return self
                .list(query.filter, query.as_of, None)
                .map(|found| SearchHit { found, score: 0.0 })
                .collect();
        }
        let query_words: Vec<String> = words(&text).take(MAX_QUERY_WORDS).collect();
        let code_like =
            text.len() <= 5 && !text.contains(' ') && text.chars().any(|c| c.is_ascii_digit());
        let ends_in_space = query.text.ends_with(char::is_whitespace);

        let mut full_matches = Vec::new();
        let mut partial_matches = Vec::new();
        for (history, documents) in self.histories().iter().zip(self.search_documents()) {
            let found = history.as_of(query.as_of);
            if !query.filter.admits(&found) {
                continue;
            }
            let Some(document) = history
                .versions()
                .iter()
                .position(|version| std::ptr::eq(version, found.version))
                .and_then(|index| documents.get(index))
            else {
                continue;
            };
            let code = found.version.code.as_str().to_ascii_lowercase();
            let mut score = 0.0;
            if code_like && code == text {
                score += EXACT_CODE_SCORE;
            } else if code_like && code.starts_with(&text) {
                score += CODE_PREFIX_SCORE;
            }
            if document.whole_synonyms.contains(&text) {
                score += WHOLE_SYNONYM_SCORE;
            }
            let mut matched_words = 0;
            for (index, word) in query_words.iter().enumerate() {
                let as_prefix = index + 1 == query_words.len() && !ends_in_space;
                let word_score = if code == *word {
                    EXACT_CODE_SCORE / 10.0
                } else {
                    document.word_score(word, as_prefix)
                };
                if word_score > 0.0 {
                    matched_words += 1;
                    score += word_score;
                }
            }
            if score <= 0.0 {
                continue;
            }
            let hit = SearchHit { found, score };
            if matched_words == query_words.len() || score >= CODE_PREFIX_SCORE {
                full_matches.push(hit);
            } else {
                partial_matches.push((matched_words, hit));
            }
        }

        let mut hits = if full_matches.is_empty() {
            let most = partial_matches
                .iter()
                .map(|(count, _)| *count)
                .max()
                .unwrap_or(0);
            partial_matches
                .into_iter()
                .filter(|(count, _)| *count == most)
                .map(|(_, hit)| hit)
                .collect()
        } else {
            full_matches
        };
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.found.version.code.cmp(&b.found.version.code))
        });
        hits
    }
}

fn normalise(text: &str) -> String {
    words(text).collect::<Vec<_>>().join(" ")
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::CodeRegistry;
    use jiff::civil::date;

    fn top(registry: &CodeRegistry, text: &str) -> Vec<String> {
        let filter = CodeFilter::default();
        let query = SearchQuery {
            text,
            filter: &filter,
            as_of: date(2025, 6, 1),
        };
        registry
            .search(&query)
            .iter()
            .take(3)
            .map(|hit| hit.found.version.code.to_string())
            .collect()
    }

    #[test]
    fn codes_and_code_prefixes_come_first() {
        let registry = CodeRegistry::built_in().unwrap();
        assert_eq!(top(&registry, "64483")[0], "64483");
        let prefixed = top(&registry, "6449");
        assert!(
            prefixed.iter().all(|code| code.starts_with("6449")),
            "{prefixed:?}"
        );
    }

    #[test]
    fn the_last_word_matches_as_a_prefix() {
        let registry = CodeRegistry::built_in().unwrap();
        let found = top(&registry, "kyphopl");
        assert!(
            found.iter().any(|code| code == "22513" || code == "22514"),
            "{found:?}"
        );
    }
}
