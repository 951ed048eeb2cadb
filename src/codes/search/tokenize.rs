//! Splitting text into the words search compares, the same way for the code set
//! and for queries.
//!
//! A word is a run of letters and digits. Each is lower-cased, number words become
//! digits (`three` is `3`, `second` is `2nd`, `single` is `1`) so that "3 muscles"
//! meets "three or more muscles", and a light plural stemmer folds `levels` into
//! `level` and `bodies` into `body`. Stop words are kept in the token stream,
//! because quantities need them ("three *or* more"), but are never indexed.

/// One word of a text as written, with its place in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    /// The word exactly as written.
    pub raw: &'a str,
    /// Byte offset of the word in the text.
    pub start: usize,
    /// Written with a trailing `+`, as in `5+` or `3rd+`.
    pub plus: bool,
    /// Joined to the word before by a hyphen, as in `1-4`.
    pub after_hyphen: bool,
}

/// The words of `text`, in order.
pub(crate) fn tokens(text: &str) -> Vec<Token<'_>> {
    let mut found = Vec::new();
    tokens_into(text, &mut found);
    found
}

/// The words of `text`, in order, in place of what `found` held: the index build
/// splits millions of texts and reuses one buffer.
pub(crate) fn tokens_into<'a>(text: &'a str, found: &mut Vec<Token<'a>>) {
    found.clear();
    if text.is_ascii() {
        ascii_tokens_into(text, found);
    } else {
        unicode_tokens_into(text, found);
    }
}

fn unicode_tokens_into<'a>(text: &'a str, found: &mut Vec<Token<'a>>) {
    let mut start = None;
    let mut previous_end = 0;
    for (index, character) in text.char_indices().chain([(text.len(), ' ')]) {
        let inside = index < text.len() && character.is_alphanumeric();
        match (inside, start) {
            (true, None) => start = Some(index),
            (false, Some(begin)) => {
                let gap = &text[previous_end..begin];
                found.push(Token {
                    raw: &text[begin..index],
                    start: begin,
                    plus: text[index..].starts_with('+'),
                    after_hyphen: !found.is_empty() && gap == "-",
                });
                previous_end = index;
                start = None;
            }
            _ => {}
        }
    }
}

/// [`tokens_into`] for ASCII text, byte by byte: the same words, without
/// decoding characters (nearly every text of a code set is ASCII).
fn ascii_tokens_into<'a>(text: &'a str, found: &mut Vec<Token<'a>>) {
    let bytes = text.as_bytes();
    let mut previous_end = 0;
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_alphanumeric() {
            at += 1;
            continue;
        }
        let begin = at;
        while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        found.push(Token {
            raw: &text[begin..at],
            start: begin,
            plus: bytes.get(at) == Some(&b'+'),
            after_hyphen: !found.is_empty() && &bytes[previous_end..begin] == b"-",
        });
        previous_end = at;
    }
}

const CARDINALS: [&str; 12] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

const ORDINALS: [&str; 12] = [
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
    "eleventh", "twelfth",
];

/// Words too common to tell codes apart; sorted for binary search. ("it" is not
/// one: it is how clinicians write intrathecal; nor is "with", since "with
/// imaging" and "without imaging" are different codes.)
const STOP_WORDS: [&str; 27] = [
    "a", "an", "and", "any", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is",
    "its", "of", "on", "or", "per", "s", "so", "such", "than", "that", "the", "this", "to",
];

/// True for a normalised word that is never indexed nor required of a result.
pub(crate) fn is_stop_word(term: &str) -> bool {
    STOP_WORDS.binary_search(&term).is_ok()
}

/// The normalised form of one written word: lower case, number words as digits,
/// plurals folded.
pub(crate) fn normalise(raw: &str) -> String {
    // "ESIs", "MBBs": the plural of an abbreviation written in capitals.
    let raw = match raw.strip_suffix('s') {
        Some(stem) if stem.len() >= 2 && stem.chars().all(|c| c.is_ascii_uppercase()) => stem,
        _ => raw,
    };
    let lower = raw.to_lowercase();
    if let Some(index) = CARDINALS.iter().position(|word| *word == lower) {
        return (index + 1).to_string();
    }
    if lower == "single" {
        return "1".to_string();
    }
    if lower == "w" {
        // Short names write "ILESI L/S w imaging".
        return "with".to_string();
    }
    if let Some(index) = ORDINALS.iter().position(|word| *word == lower) {
        return ordinal(index as u8 + 1);
    }
    stem(lower)
}

fn ordinal(number: u8) -> String {
    let suffix = match (number % 10, number % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{number}{suffix}")
}

/// Folds the plural endings of this corpus: `bodies` → `body`, `branches` →
/// `branch`, `levels` → `level`; leaves `plexus`, `lysis` and `process` alone.
fn stem(mut word: String) -> String {
    let length = word.chars().count();
    if length > 4 && word.ends_with("ies") {
        word.truncate(word.len() - 3);
        word.push('y');
    } else if length > 4
        && ["ches", "shes", "sses", "xes"]
            .iter()
            .any(|end| word.ends_with(end))
    {
        word.truncate(word.len() - 2);
    } else if length > 3
        && word.ends_with('s')
        && !["ss", "us", "is", "os"]
            .iter()
            .any(|end| word.ends_with(end))
    {
        word.pop();
    }
    word
}

/// The count a normalised word stands for: `3`, `3rd` (as 3), never above 255.
pub(crate) fn number(term: &str) -> Option<u8> {
    let digits = term.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &term[digits.len()..];
    let ordinal_suffix = matches!(suffix, "" | "st" | "nd" | "rd" | "th");
    if digits.is_empty() || digits.len() > 3 || !ordinal_suffix {
        return None;
    }
    digits.parse().ok()
}

/// The normalised, indexable words of `text` (stop words left out), each with
/// its token.
pub(crate) fn terms(text: &str) -> impl Iterator<Item = (String, Token<'_>)> {
    tokens(text).into_iter().filter_map(|token| {
        let term = normalise(token.raw);
        (!is_stop_word(&term)).then_some((term, token))
    })
}

/// A phrase (a synonym, or a run of query words) as one comparable key: its
/// indexable words joined by single spaces.
pub(crate) fn phrase_key(text: &str) -> String {
    let words: Vec<String> = terms(text).map(|(term, _)| term).collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(text: &str) -> Vec<String> {
        tokens(text)
            .iter()
            .map(|token| normalise(token.raw))
            .collect()
    }

    #[test]
    fn words_are_lowered_numbered_and_stemmed() {
        assert_eq!(
            normalised("Three or more MUSCLES, second level; single bodies"),
            ["3", "or", "more", "muscle", "2nd", "level", "1", "body"]
        );
        assert_eq!(
            normalised("plexus lysis branches ESIs"),
            ["plexus", "lysis", "branch", "esi"]
        );
    }

    #[test]
    fn ascii_text_splits_as_any_text() {
        for text in [
            "TPI 3+ muscles, 1-4 musc",
            "-lead- L4-5 + 3rd+, (bilateral)  w/ imaging.",
            "",
            "+-+",
        ] {
            let (mut ascii, mut unicode) = (Vec::new(), Vec::new());
            ascii_tokens_into(text, &mut ascii);
            unicode_tokens_into(text, &mut unicode);
            assert_eq!(ascii, unicode, "{text:?}");
        }
    }

    #[test]
    fn plus_and_hyphen_are_remembered() {
        let found = tokens("TPI 3+ muscles, 1-4 musc");
        assert!(found[1].plus);
        assert!(found[4].after_hyphen && !found[3].after_hyphen);
    }

    #[test]
    fn numbers_read_digits_and_ordinals() {
        assert_eq!(number("3"), Some(3));
        assert_eq!(number("2nd"), Some(2));
        assert_eq!(number("l5"), None);
        assert_eq!(number("48h"), None);
    }

    #[test]
    fn stop_words_are_sorted() {
        assert!(STOP_WORDS.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn phrases_ignore_case_plurals_and_stop_words() {
        assert_eq!(phrase_key("Injection of the Knees"), "injection knee");
    }
}
