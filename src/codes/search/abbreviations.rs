//! The query-side jargon map: what an abbreviation or lay word typed into search
//! stands for.
//!
//! The map is data (`data/abbreviations.csv`, embedded), not code: each row names
//! a term, the phrases it means, and, for a term that stands for a family of codes
//! (ESI, MBB, SCS), those codes. Per-code synonyms live in the code set itself.

use std::{collections::HashMap, sync::LazyLock};

use super::tokenize::{normalise, terms};
use crate::codes::CodeValue;

/// The built-in map, embedded so that the binary needs no files.
const BUILT_IN_ABBREVIATIONS: &str = include_str!("../../../data/abbreviations.csv");

/// What one term stands for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Meaning {
    /// Phrases as written in the file, for explanations.
    pub phrases: Vec<String>,
    /// Each phrase's normalised words, parallel to `phrases`.
    pub phrase_terms: Vec<Vec<String>>,
    /// Codes the term names outright.
    pub codes: Vec<CodeValue>,
}

/// Normalised term → meaning.
#[derive(Debug, Default)]
pub(crate) struct Abbreviations {
    meanings: HashMap<String, Meaning>,
}

impl Abbreviations {
    /// The embedded map. A malformed embedded file is a defect caught by this
    /// module's tests, so it fails loudly on first use.
    pub fn built_in() -> &'static Abbreviations {
        static BUILT_IN: LazyLock<Abbreviations> = LazyLock::new(|| {
            Abbreviations::parse(BUILT_IN_ABBREVIATIONS)
                .unwrap_or_else(|error| panic!("data/abbreviations.csv is malformed: {error}"))
        });
        &BUILT_IN
    }

    /// Reads a map in the `term,means,codes` format; `#` starts a comment line.
    pub fn parse(text: &str) -> Result<Abbreviations, String> {
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut meanings: HashMap<String, Meaning> = HashMap::new();
        for (index, record) in reader.records().enumerate() {
            let record = record.map_err(|error| format!("row {}: {error}", index + 1))?;
            let term = normalise(record.get(0).unwrap_or_default());
            if term.is_empty() || term.contains(char::is_whitespace) {
                return Err(format!("row {}: the term must be one word", index + 1));
            }
            let meaning = meanings.entry(term).or_default();
            for phrase in list(record.get(1)) {
                let words: Vec<String> = terms(phrase).map(|(term, _)| term).collect();
                if !words.is_empty() {
                    meaning.phrases.push(phrase.to_string());
                    meaning.phrase_terms.push(words);
                }
            }
            for code in list(record.get(2)) {
                let code = CodeValue::parse(code)
                    .map_err(|error| format!("row {}: {error}", index + 1))?;
                meaning.codes.push(code);
            }
        }
        Ok(Abbreviations { meanings })
    }

    /// What the normalised `term` stands for, if the map knows it.
    pub fn meaning(&self, term: &str) -> Option<&Meaning> {
        self.meanings.get(term)
    }
}

fn list(field: Option<&str>) -> impl Iterator<Item = &str> {
    field
        .unwrap_or_default()
        .split('|')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_map_reads() {
        let map = Abbreviations::parse(BUILT_IN_ABBREVIATIONS).unwrap();
        let mbb = map.meaning("mbb").unwrap();
        assert_eq!(mbb.phrase_terms[0], ["medial", "branch", "block"]);
        assert!(mbb.codes.len() >= 6);
        assert_eq!(map.meaning("l5").unwrap().phrases, ["lumbar"]);
    }

    #[test]
    fn a_bad_code_is_refused_with_its_row() {
        let error = Abbreviations::parse("term,means,codes\nxyz,foo,64493|nope\n").unwrap_err();
        assert!(error.starts_with("row 1:"), "{error}");
    }
}
