//! Quantities and laterality read as people write them.
//!
//! Code descriptors count things ("three or more muscles", "each additional
//! level", "one to four muscles", "on both sides"), and so do queries ("3
//! muscles", "second level", "two levels", "bilat"). Both sides are read into the
//! same [`Quantity`]: a unit and an inclusive range, so that "4 muscles" meets
//! "three or more muscles" and "second level" meets "each additional level".

use super::tokenize::{Token, normalise, number};

/// Upper bound standing for "or more".
pub(crate) const UNBOUNDED: u8 = u8::MAX;

/// How far after a number its unit may stand ("one lumbar or sacral vertebral
/// body" puts five words between them).
const UNIT_WINDOW: usize = 7;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Unit {
    /// Spinal levels, interspaces, segments, facet joints.
    Level,
    /// Muscles.
    Muscle,
    /// Vertebral bodies.
    Body,
    /// Injection sites.
    Site,
    /// Nerves.
    Nerve,
    /// Extremities (limbs).
    Extremity,
    /// Sides of the body: 1 unilateral, 2 bilateral.
    Side,
    /// A bare number in a query, which may count anything.
    Any,
}

/// Normalised words that name a unit.
const UNIT_WORDS: [(&str, Unit); 16] = [
    ("level", Unit::Level),
    ("lvl", Unit::Level),
    ("interspace", Unit::Level),
    ("segment", Unit::Level),
    ("muscle", Unit::Muscle),
    ("musc", Unit::Muscle),
    ("body", Unit::Body),
    ("vertebra", Unit::Body),
    // A facet joint is a spinal level: "second joint" and "second level" are one.
    ("joint", Unit::Level),
    ("jt", Unit::Level),
    ("site", Unit::Site),
    ("nerve", Unit::Nerve),
    ("extremity", Unit::Extremity),
    ("limb", Unit::Extremity),
    ("side", Unit::Side),
    ("sided", Unit::Side),
];

/// Words that are a laterality by themselves, with the sides they mean.
const LATERALITY: [(&str, u8); 6] = [
    ("unilateral", 1),
    ("unilat", 1),
    ("left", 1),
    ("right", 1),
    ("bilateral", 2),
    ("bilat", 2),
];

/// A counted unit and the inclusive range of counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Quantity {
    /// What is counted.
    pub unit: Unit,
    /// Fewest.
    pub min: u8,
    /// Most; [`UNBOUNDED`] for "or more".
    pub max: u8,
}

impl Quantity {
    /// True when a query quantity and a code's quantity can describe the same
    /// service: same unit (or the query's is a bare number) and ranges overlap.
    pub fn meets(&self, other: &Quantity) -> bool {
        let units = self.unit == other.unit || self.unit == Unit::Any;
        units && self.min <= other.max && other.min <= self.max
    }
}

/// A quantity found in a text, with the tokens it spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// The quantity.
    pub quantity: Quantity,
    /// Index of its first token.
    pub first: usize,
    /// Index of its last token.
    pub last: usize,
}

/// True for words that only state a count or a side: a query need not match them
/// as text.
pub(crate) fn is_count_word(term: &str) -> bool {
    number(term).is_some() || term == "both" || LATERALITY.iter().any(|(word, _)| *word == term)
}

/// False for a normalised word that can neither state a count nor a side, nor
/// begin one: a text made only of such words states no quantity.
pub(crate) fn may_begin_quantity(term: &str) -> bool {
    is_count_word(term) || matches!(term, "additional" | "addl")
}

/// Every quantity in a text split into `tokens`. Bare numbers without a unit are
/// kept (as [`Unit::Any`]) only when `bare_numbers` is set, as for queries.
pub(crate) fn quantities(tokens: &[Token<'_>], bare_numbers: bool) -> Vec<Found> {
    let terms: Vec<String> = tokens.iter().map(|token| normalise(token.raw)).collect();
    let terms: Vec<&str> = terms.iter().map(String::as_str).collect();
    let mut found = Vec::new();
    quantities_of_terms(tokens, &terms, bare_numbers, &mut found);
    found
}

/// [`quantities`] of tokens already normalised into `terms` (one per token),
/// appended to `found`: the index build normalises each distinct word once.
pub(crate) fn quantities_of_terms(
    tokens: &[Token<'_>],
    terms: &[&str],
    bare_numbers: bool,
    found: &mut Vec<Found>,
) {
    let mut index = 0;
    while index < terms.len() {
        let term = terms[index];
        if let Some((_, sides)) = LATERALITY.iter().find(|(word, _)| *word == term) {
            found.push(Found {
                quantity: Quantity {
                    unit: Unit::Side,
                    min: *sides,
                    max: *sides,
                },
                first: index,
                last: index,
            });
            index += 1;
            continue;
        }
        // "L4-5" names spinal levels; the 5 is no count.
        let spinal_level =
            tokens[index].after_hyphen && index > 0 && number(terms[index - 1]).is_none();
        let count = number(term)
            .or((term == "both").then_some(2))
            .filter(|_| !spinal_level);
        let additional = matches!(term, "additional" | "addl");
        if count.is_none() && !additional {
            if let (Some(unit), Some(next)) = (unit_of(term), terms.get(index + 1))
                && let Some(count) = number(next)
                && index
                    .checked_sub(1)
                    .is_none_or(|before| number(terms[before]).is_none())
            {
                // "level 3", as E/M levels are written.
                found.push(Found {
                    quantity: Quantity {
                        unit,
                        min: count,
                        max: count,
                    },
                    first: index,
                    last: index + 1,
                });
                index += 2;
                continue;
            }
            index += 1;
            continue;
        }
        let (min, max, mut next) = match count {
            Some(count) => range_from(count, index, tokens, terms),
            None => (2, UNBOUNDED, index + 1),
        };
        let unit = (next..terms.len().min(next + UNIT_WINDOW))
            .take_while(|at| number(terms[*at]).is_none())
            .find_map(|at| unit_of(terms[at]).map(|unit| (unit, at)))
            // "reported with the first-level code" names another code, not a count.
            .filter(|(_, at)| terms.get(at + 1).is_none_or(|after| *after != "code"));
        match unit {
            Some((unit, at)) => {
                found.push(Found {
                    quantity: Quantity { unit, min, max },
                    first: index,
                    last: at,
                });
                next = at + 1;
            }
            None if bare_numbers && count.is_some() => found.push(Found {
                quantity: Quantity {
                    unit: Unit::Any,
                    min,
                    max,
                },
                first: index,
                last: next - 1,
            }),
            None => {}
        }
        index = next;
    }
}

/// The range a count starts at `index`: "3", "3+", "3 or more", "3rd and any
/// further", "1 or 2", "1 to 4", "1-4"; with the index after it.
fn range_from(count: u8, index: usize, tokens: &[Token<'_>], terms: &[&str]) -> (u8, u8, usize) {
    let word = |at: usize| terms.get(at).copied().unwrap_or("");
    if tokens[index].plus {
        return (count, UNBOUNDED, index + 1);
    }
    if word(index + 1) == "or" && word(index + 2) == "more" {
        return (count, UNBOUNDED, index + 3);
    }
    if word(index + 1) == "and"
        && word(index + 2) == "any"
        && matches!(word(index + 3), "further" | "additional" | "more")
    {
        return (count, UNBOUNDED, index + 4);
    }
    if matches!(word(index + 1), "or" | "to")
        && let Some(upper) = number(word(index + 2))
        && upper > count
    {
        return (count, upper, index + 3);
    }
    if tokens
        .get(index + 1)
        .is_some_and(|token| token.after_hyphen)
        && let Some(upper) = number(word(index + 1))
        && upper > count
    {
        return (count, upper, index + 2);
    }
    (count, count, index + 1)
}

fn unit_of(term: &str) -> Option<Unit> {
    UNIT_WORDS
        .iter()
        .find(|(word, _)| *word == term)
        .map(|(_, unit)| *unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::search::tokenize::tokens;

    fn read(text: &str, bare: bool) -> Vec<(Unit, u8, u8)> {
        quantities(&tokens(text), bare)
            .iter()
            .map(|found| (found.quantity.unit, found.quantity.min, found.quantity.max))
            .collect()
    }

    #[test]
    fn descriptors_are_read() {
        assert_eq!(
            read("trigger points located in three or more muscles", false),
            [(Unit::Muscle, 3, UNBOUNDED)]
        );
        assert_eq!(read("TPI 1-2 muscles", false), [(Unit::Muscle, 1, 2)]);
        assert_eq!(
            read(
                "each additional extremity involving one to four muscles",
                false
            ),
            [(Unit::Extremity, 2, UNBOUNDED), (Unit::Muscle, 1, 4)]
        );
        assert_eq!(
            read(
                "the third and any further lumbar or sacral facet joint levels",
                false
            ),
            [(Unit::Level, 3, UNBOUNDED)]
        );
        assert_eq!(
            read("at one lumbar or sacral level", false),
            [(Unit::Level, 1, 1)]
        );
        assert_eq!(
            read("on both sides (bilateral)", false),
            [(Unit::Side, 2, 2), (Unit::Side, 2, 2)]
        );
        assert_eq!(read("Office visit new lvl 3", false), [(Unit::Level, 3, 3)]);
        assert_eq!(
            read("Chemodenerv 1 limb 5+ musc", false),
            [(Unit::Extremity, 1, 1), (Unit::Muscle, 5, UNBOUNDED)]
        );
        assert!(read("at least 30 minutes within 48 hours", false).is_empty());
    }

    #[test]
    fn queries_are_read_and_meet_descriptors() {
        let query = read("3 muscles", true)[0];
        let query = Quantity {
            unit: query.0,
            min: query.1,
            max: query.2,
        };
        let three_or_more = Quantity {
            unit: Unit::Muscle,
            min: 3,
            max: UNBOUNDED,
        };
        let one_or_two = Quantity {
            unit: Unit::Muscle,
            min: 1,
            max: 2,
        };
        assert!(query.meets(&three_or_more));
        assert!(!query.meets(&one_or_two));
        assert_eq!(read("tpi 4", true), [(Unit::Any, 4, 4)]);
        assert_eq!(read("second level", true), [(Unit::Level, 2, 2)]);
        assert_eq!(read("two levels", true), [(Unit::Level, 2, 2)]);
    }
}
