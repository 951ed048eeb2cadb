//! What each kind of match is worth. One place, so that the indexed search, the
//! brute-force scan and the explanations all score alike.
//!
//! A word's score is `kind factor × inverse document frequency × field weight`;
//! a code's match is the sum of its words' best scores, plus a bonus for a
//! synonym phrase typed whole, plus one per quantity it meets. Its score is that
//! match weighed by its category ([`category_weight`]), plus a small prior that
//! breaks near-ties the way coders expect (a primary code before its add-on, an
//! active code before a deleted one).

use super::explain::SearchField;
use crate::codes::{Category, CodeAsOf, record::Standing};

/// An exact code outranks anything text can score.
pub(crate) const EXACT_CODE: f64 = 1000.0;

/// A code prefix outranks any text match too.
pub(crate) const CODE_PREFIX: f64 = 500.0;

/// A synonym phrase typed whole, per word of it.
pub(crate) const PHRASE_PER_WORD: f64 = 3.0;

/// A synonym phrase the query only begins.
pub(crate) const PHRASE_PREFIX_FACTOR: f64 = 0.7;

/// Each quantity of the query that a code's own quantities meet.
pub(crate) const QUANTITY: f64 = 4.0;

/// A word in more than this share of documents is too common to require: a code
/// lacking it can still be found ("fluoro guidance joint injection" finds the
/// guidance code that never says "injection"), ranked below those that have it.
pub(crate) const COMMON_SHARE: f64 = 0.2;

/// An abbreviation's meaning counts a little less than the literal word.
pub(crate) const EXPANSION_FACTOR: f64 = 0.9;

/// How much a word found in each field counts, strongest first.
pub(crate) const FIELD_WEIGHTS: [(SearchField, f64); 7] = [
    (SearchField::Synonyms, 6.0),
    (SearchField::ShortName, 4.0),
    (SearchField::Anatomy, 3.5),
    (SearchField::Descriptor, 3.0),
    (SearchField::Heading, 2.5),
    (SearchField::Subsection, 1.5),
    (SearchField::Section, 1.0),
];

/// The weight of a word found in the fields `bits`: the strongest field, plus a
/// little for each other field that holds it too. Read from a table made at
/// compile time, since every posting a query visits asks.
pub(crate) fn field_weight(bits: u8) -> f64 {
    const TABLE: [f64; 128] = {
        let mut table = [0.0; 128];
        let mut bits = 0;
        while bits < 128 {
            table[bits] = weigh_fields(bits as u8);
            bits += 1;
        }
        table
    };
    TABLE[usize::from(bits & 0x7f)]
}

const fn weigh_fields(bits: u8) -> f64 {
    let mut strongest = 0.0;
    let mut others = 0.0;
    let mut at = 0;
    while at < FIELD_WEIGHTS.len() {
        let (field, weight) = FIELD_WEIGHTS[at];
        if bits & field.bit() != 0 {
            if strongest == 0.0 {
                strongest = weight;
            } else {
                others += weight;
            }
        }
        at += 1;
    }
    strongest + 0.1 * others
}

/// The strongest field among `bits`.
pub(crate) fn strongest_field(bits: u8) -> Option<SearchField> {
    FIELD_WEIGHTS
        .iter()
        .map(|(field, _)| *field)
        .find(|field| bits & field.bit() != 0)
}

/// Rarer words tell codes apart better; damped, since with implicit AND every
/// result holds every word anyway.
pub(crate) fn inverse_document_frequency(frequency: u32, documents: usize) -> f64 {
    let frequency = f64::from(frequency.max(1));
    1.0 + 0.3 * (documents.max(1) as f64 / frequency).ln().max(0.0)
}

/// A prefix counts more the more of the term has been typed.
pub(crate) fn prefix_factor(typed: &str, term: &str) -> f64 {
    let typed = typed.chars().count() as f64;
    let term = term.chars().count().max(1) as f64;
    0.5 + 0.4 * (typed / term).min(1.0)
}

/// A typo counts less than the word, and two less than one.
pub(crate) fn fuzzy_factor(distance: u8, as_prefix: bool) -> f64 {
    let factor = if distance <= 1 { 0.6 } else { 0.45 };
    if as_prefix { factor * 0.85 } else { factor }
}

/// What a code named outright by an abbreviation scores: as a synonym naming
/// `named` codes would.
pub(crate) fn named_code_score(named: u32, documents: usize) -> f64 {
    FIELD_WEIGHTS[0].1 * inverse_document_frequency(named, documents)
}

/// What a code's standing makes of its match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Prior {
    /// The share of the match that counts ([`category_weight`]).
    pub category_weight: f64,
    /// Added to the weighed match, to break near-ties.
    pub bonus: f64,
}

/// The prior of a code as it stands.
pub(crate) fn prior(found: &CodeAsOf<'_>) -> Prior {
    let active = matches!(found.standing, Standing::Active);
    prior_of(found.version.add_on, active, found.version.code.category())
}

/// The highest bonus any code has: an active primary code's.
pub(crate) const BONUS_CEILING: f64 = prior_of(false, true, Some(Category::I)).bonus;

/// The prior from the facts it depends on.
pub(crate) const fn prior_of(add_on: bool, active: bool, category: Option<Category>) -> Prior {
    let primary = if add_on { 0.0 } else { 0.5 };
    let active = if active { 0.3 } else { 0.0 };
    Prior {
        category_weight: category_weight(category),
        bonus: primary + active,
    }
}

/// The share of a code's match that counts, by its category. Nearly every claim
/// carries Category I codes, so a person who types words that a Category I and
/// a Category III code match alike means the Category I code. Such codes differ
/// only in where else their text repeats the words (a word echoed in one more
/// field adds a tenth of that field's weight: a heading echo adds about 4 % to a
/// synonym match), which a fixed bonus cannot outweigh on long queries; a
/// weight grows with the match. At 95 % the Category I code wins when the other
/// code's match is up to about 5 % better, and a code that matches clearly
/// better (a word in a stronger field, a phrase, a quantity) still wins.
/// Category II codes, which are never billed for money, count as Category III
/// ones; HCPCS and the other forms one percentage point less, so that a CPT
/// code still comes before them.
pub(crate) const fn category_weight(category: Option<Category>) -> f64 {
    match category {
        Some(Category::I) => 1.0,
        Some(Category::II | Category::III) => 0.95,
        None => 0.94,
    }
}

/// A code's final score from its parts, summed in one fixed order so that every
/// path computes the same number. Codes found by their own code (or a code
/// prefix) take no prior: a coder typing `6449` reads them in code order. A
/// category weight is at most 1, so a score is never above its parts summed
/// with [`BONUS_CEILING`] (the bound [`super::tiers`] prunes by).
pub(crate) fn total(words: f64, phrase: f64, quantities: usize, prior: Prior) -> f64 {
    let matched = words + phrase + QUANTITY * quantities as f64;
    if words >= CODE_PREFIX {
        return matched;
    }
    matched * prior.category_weight + prior.bonus
}
