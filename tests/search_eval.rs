//! Search quality: the realistic queries of `tests/search_eval.csv`, each with the
//! codes that count as right, must put a right code first at least 80 % of the
//! time and in the top three at least 95 % of the time.
//!
//! Run with `cargo test --test search_eval -- --nocapture` to see the report: the
//! accuracy per kind of query and every miss with what came first instead.

use std::collections::BTreeMap;

use cptd::codes::{CodeFilter, CodeRegistry, SearchQuery};
use jiff::civil::date;

const EVALUATION_SET: &str = include_str!("search_eval.csv");

/// The share of queries whose first result must be right.
const TOP_1_REQUIRED: f64 = 0.80;

/// The share of queries with a right result among the first three.
const TOP_3_REQUIRED: f64 = 0.95;

struct Case {
    query: String,
    right: Vec<String>,
    kind: String,
}

fn cases() -> Vec<Case> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(EVALUATION_SET.as_bytes());
    reader
        .records()
        .map(|record| {
            let record = record.expect("the evaluation set is valid CSV");
            Case {
                query: record[0].to_string(),
                right: record[1].split('|').map(str::to_string).collect(),
                kind: record[2].to_string(),
            }
        })
        .collect()
}

#[test]
fn realistic_queries_find_the_code_meant() {
    // Arrange
    let registry = CodeRegistry::built_in().expect("the built-in set loads");
    let filter = CodeFilter::default();
    let cases = cases();
    assert!(
        cases.len() >= 80,
        "the evaluation set has {} queries",
        cases.len()
    );

    // Act
    let mut by_kind: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let (mut top_1, mut top_3) = (0, 0);
    let mut misses = Vec::new();
    for case in &cases {
        let query = SearchQuery {
            text: &case.query,
            filter: &filter,
            as_of: date(2025, 6, 1),
        };
        let found: Vec<String> = registry
            .search(&query)
            .iter()
            .take(3)
            .map(|hit| hit.found.version.code.to_string())
            .collect();
        let first = found.first().is_some_and(|code| case.right.contains(code));
        let in_three = found.iter().any(|code| case.right.contains(code));
        let tally = by_kind.entry(&case.kind).or_default();
        tally.0 += 1;
        tally.1 += usize::from(first);
        tally.2 += usize::from(in_three);
        top_1 += usize::from(first);
        top_3 += usize::from(in_three);
        if !first {
            misses.push(format!(
                "  {:<45} want {:<30} got {:?}{}",
                format!("{:?}", case.query),
                case.right.join("|"),
                found,
                if in_three { "" } else { "  (not in top 3)" }
            ));
        }
    }

    // Assert
    let total = cases.len() as f64;
    let (top_1_share, top_3_share) = (top_1 as f64 / total, top_3 as f64 / total);
    println!("search evaluation: {} queries", cases.len());
    println!(
        "  top-1 {top_1}/{} = {:.1} %",
        cases.len(),
        100.0 * top_1_share
    );
    println!(
        "  top-3 {top_3}/{} = {:.1} %",
        cases.len(),
        100.0 * top_3_share
    );
    for (kind, (count, first, three)) in &by_kind {
        println!("  {kind:<7} {count:>3} queries: top-1 {first:>3}, top-3 {three:>3}");
    }
    println!("misses at top-1 ({}):", misses.len());
    for miss in &misses {
        println!("{miss}");
    }
    assert!(
        top_1_share >= TOP_1_REQUIRED,
        "top-1 {:.1} % is below {} %",
        100.0 * top_1_share,
        100.0 * TOP_1_REQUIRED
    );
    assert!(
        top_3_share >= TOP_3_REQUIRED,
        "top-3 {:.1} % is below {} %",
        100.0 * top_3_share,
        100.0 * TOP_3_REQUIRED
    );
}
