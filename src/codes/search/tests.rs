//! Search behaviour on the built-in set, and the index checked against the scan.

use jiff::civil::date;

use super::*;
use crate::codes::CodeRegistry;

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
fn a_query_of_punctuation_or_symbols_alone_finds_nothing_and_an_empty_one_lists() {
    let registry = CodeRegistry::built_in().unwrap();
    for text in ["?!", "...", "\u{1F600}", " -- "] {
        assert_eq!(top(&registry, text), Vec::<String>::new(), "{text:?}");
    }
    assert_eq!(top(&registry, "").len(), 3);
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

#[test]
fn a_practice_file_adds_synonyms_that_search_finds() {
    let practice = "code,descriptor,synonyms\n20610,Major joint injection.,gel shot|hyaluronic\n";
    let registry = CodeRegistry::from_sources(&[
        (
            crate::codes::BUILT_IN_SOURCE,
            include_str!("../../../data/codes.csv"),
        ),
        ("practice.csv", practice),
    ])
    .unwrap();
    assert_eq!(top(&registry, "hyaluronic")[0], "20610");
    assert_eq!(top(&registry, "gel shot")[0], "20610");
}

#[test]
fn a_category_i_code_comes_before_a_category_iii_code_matched_alike() {
    // In each pair every query word meets both codes in the same field and the
    // same way; the Category III code's text only echoes the words in more
    // fields (0216T's heading is "Ultrasound-guided facet injections"), which
    // once ranked it first.
    let registry = CodeRegistry::built_in().unwrap();
    let filter = CodeFilter::default();
    let signature = |hit: &ExplainedHit<'_>| -> Vec<(String, SearchField, MatchKind)> {
        let matches = hit.matches.iter();
        matches
            .map(|found| (found.query_word.clone(), found.field, found.kind))
            .collect()
    };
    for (text, meant, temporary) in [
        ("lumbar facet inj", "64493", "0216T"),
        ("facet injection", "64490", "0213T"),
        ("Facet inj L/S 1 level", "64493", "0216T"),
        ("facet joint injection lumbar one level", "64493", "0216T"),
        ("sacral nerve stimulator", "64590", "0786T"),
    ] {
        let query = SearchQuery {
            text,
            filter: &filter,
            as_of: date(2025, 6, 1),
        };
        let page = registry.search_page(&query, 0, 100, Explain::Matches);
        let hit = |code: &str| {
            page.hits
                .iter()
                .find(|hit| hit.hit.found.version.code.as_str() == code)
                .unwrap_or_else(|| panic!("{text:?} finds {code}"))
        };
        assert_eq!(signature(hit(meant)), signature(hit(temporary)), "{text:?}");
        assert_eq!(
            page.hits[0].hit.found.version.code.as_str(),
            meant,
            "{text:?}"
        );
    }
}

#[test]
fn a_category_iii_code_that_matches_better_still_comes_first() {
    let registry = CodeRegistry::built_in().unwrap();
    for (text, meant) in [
        ("ultrasound facet injection", ["0213T", "0216T"]),
        ("US guided MBB", ["0213T", "0216T"]),
        ("integrated SCS", ["0784T", "0785T"]),
        ("mild procedure", ["0274T", "0275T"]),
    ] {
        let found = top(&registry, text);
        assert!(meant.contains(&found[0].as_str()), "{text:?}: {found:?}");
    }
}

#[test]
fn the_category_weight_is_one_for_category_i_only_and_orders_cpt_before_hcpcs() {
    use crate::codes::Category;
    assert_eq!(weights::category_weight(Some(Category::I)), 1.0);
    for category in [Some(Category::II), Some(Category::III), None] {
        assert!(weights::category_weight(category) < 1.0, "{category:?}");
    }
    assert!(weights::category_weight(None) < weights::category_weight(Some(Category::III)));
}

#[test]
fn every_page_hit_is_explained() {
    let registry = CodeRegistry::built_in().unwrap();
    let filter = CodeFilter::default();
    for text in [
        "lumbar mbb",
        "epidrual",
        "6449",
        "TPI 3 muscles",
        "knee sh",
        "genicular xylophone",
    ] {
        let query = SearchQuery {
            text,
            filter: &filter,
            as_of: date(2025, 6, 1),
        };
        let page = registry.search_page(&query, 0, 100, Explain::Matches);
        assert!(page.total > 0, "{text:?}");
        for explained in &page.hits {
            assert!(
                !explained.matches.is_empty(),
                "{text:?}: {:?}",
                explained.hit.found.version.code
            );
        }
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::codes::{Category, CodeStatus, Imaging};

    const WORDS: [&str; 40] = [
        "lumbar",
        "facet",
        "injection",
        "mbb",
        "rfa",
        "epidrual",
        "kyphopl",
        "6449",
        "64483",
        "3",
        "muscles",
        "bilat",
        "knee",
        "shot",
        "si",
        "tfesi",
        "l5",
        "second",
        "level",
        "block",
        "nerve",
        "trigger",
        "point",
        "botox",
        "migraine",
        "transforaminl",
        "stim",
        "ultrasound",
        "no",
        "with",
        "imaging",
        "cervical",
        "g02",
        "0521f",
        "pain",
        "the",
        "esi",
        "kypho",
        "back",
        "pump",
    ];

    fn query_text() -> impl Strategy<Value = String> {
        (
            proptest::collection::vec(proptest::sample::select(&WORDS[..]), 0..4),
            any::<bool>(),
        )
            .prop_map(|(words, space)| {
                format!("{}{}", words.join(" "), if space { " " } else { "" })
            })
    }

    fn filter() -> impl Strategy<Value = CodeFilter> {
        (
            proptest::sample::subsequence(vec![Category::I, Category::II, Category::III], 0..=3),
            proptest::option::of(any::<bool>()),
            proptest::sample::subsequence(
                vec![
                    Imaging::None,
                    Imaging::Any,
                    Imaging::FluoroscopyOrCt,
                    Imaging::Ultrasound,
                ],
                0..=2,
            ),
            proptest::sample::subsequence(vec![CodeStatus::Active, CodeStatus::Deleted], 0..=2),
            proptest::sample::select(vec![None, Some("spine"), Some("knee"), Some("JOINT")]),
        )
            .prop_map(
                |(categories, add_on, imaging, statuses, anatomy)| CodeFilter {
                    categories,
                    add_on,
                    imaging,
                    statuses,
                    anatomy: anatomy.map(str::to_string),
                    ..CodeFilter::default()
                },
            )
    }

    fn day() -> impl Strategy<Value = jiff::civil::Date> {
        proptest::sample::select(vec![date(2009, 6, 1), date(2016, 6, 1), date(2025, 6, 1)])
    }

    fn registry() -> &'static CodeRegistry {
        static REGISTRY: std::sync::LazyLock<CodeRegistry> =
            std::sync::LazyLock::new(|| CodeRegistry::built_in().unwrap());
        &REGISTRY
    }

    proptest! {
        #[test]
        fn results_pass_the_filters_and_are_sorted_by_score_then_code(
            text in query_text(), filter in filter(), as_of in day()
        ) {
            let query = SearchQuery { text: &text, filter: &filter, as_of };
            let hits = registry().search(&query);
            for hit in &hits {
                prop_assert!(filter.admits(&hit.found), "{:?} fails the filter", hit.found.version.code);
            }
            for pair in hits.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                prop_assert!(
                    a.score > b.score || (a.score == b.score && a.found.version.code < b.found.version.code),
                    "{:?} ({}) before {:?} ({})", a.found.version.code, a.score, b.found.version.code, b.score
                );
            }
        }

        #[test]
        fn pages_never_repeat_or_skip(
            text in query_text(), filter in filter(), size in 1usize..9
        ) {
            let query = SearchQuery { text: &text, filter: &filter, as_of: date(2025, 6, 1) };
            let all: Vec<_> = registry().search(&query).iter().map(|hit| hit.found.version.code).collect();
            let mut walked = Vec::new();
            let mut offset = 0;
            loop {
                let page = registry().search_page(&query, offset, size, Explain::Matches);
                prop_assert_eq!(page.total, all.len());
                prop_assert!(page.hits.len() <= size);
                walked.extend(page.hits.iter().map(|explained| explained.hit.found.version.code));
                offset += size;
                if offset >= page.total {
                    break;
                }
            }
            prop_assert_eq!(walked, all);
        }

        #[test]
        fn a_page_is_that_slice_of_the_full_ranking(
            text in query_text(), filter in filter(), as_of in day(),
            offset in 0usize..12, size in 1usize..25
        ) {
            // Broad queries' pages are pruned (from few postings, in tests):
            // they must hold exactly the full ranking's codes, scores and order.
            let query = SearchQuery { text: &text, filter: &filter, as_of };
            let all = registry().search(&query);
            let page = registry().search_page(&query, offset, size, Explain::Matches);
            prop_assert_eq!(page.total, all.len(), "{:?}", text);
            let expected: Vec<_> = all.iter().skip(offset).take(size).collect();
            prop_assert_eq!(page.hits.len(), expected.len(), "{:?}", text);
            for (shown, ranked) in page.hits.iter().zip(expected) {
                prop_assert_eq!(shown.hit.found.version.code, ranked.found.version.code, "{:?}", text);
                prop_assert_eq!(shown.hit.score.to_bits(), ranked.score.to_bits(), "{:?}", text);
            }
        }

        #[test]
        fn the_index_ranks_exactly_as_the_scan(
            text in query_text(), filter in filter(), as_of in day()
        ) {
            let query = SearchQuery { text: &text, filter: &filter, as_of };
            let indexed = registry().search(&query);
            let scanned = registry().search_by_scan(&query);
            prop_assert_eq!(indexed.len(), scanned.len(), "{:?}", text);
            for (a, b) in indexed.iter().zip(&scanned) {
                prop_assert_eq!(a.found.version.code, b.found.version.code);
                prop_assert!((a.score - b.score).abs() < 1e-9, "{} vs {}", a.score, b.score);
            }
        }
    }
}
