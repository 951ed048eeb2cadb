//! `SearchCodes`: ranking, filters, paging and bad input.

use std::collections::HashSet;

use cptd::config::Config;
use cptd::pb::{
    Category, Code, CodeView, Imaging, MatchKind, SearchCodesRequest, SearchCodesResponse,
    SearchMatch, SearchResult, Status as CodeStatus, code_lookup_client::CodeLookupClient,
};
use tonic::transport::Channel;

use crate::helpers::{assert_invalid_field, full_codes, in_view, spawn_app, spawn_app_with};

fn query(text: &str) -> SearchCodesRequest {
    SearchCodesRequest {
        query: text.to_string(),
        as_of: "2025-06-01".to_string(),
        ..SearchCodesRequest::default()
    }
}

async fn search(
    client: &mut CodeLookupClient<Channel>,
    request: SearchCodesRequest,
) -> SearchCodesResponse {
    client
        .search_codes(request)
        .await
        .expect("the search is answered")
        .into_inner()
}

fn codes(results: &[SearchResult]) -> Vec<String> {
    results
        .iter()
        .map(|result| {
            result
                .code
                .as_ref()
                .expect("every result has a code")
                .code
                .clone()
        })
        .collect()
}

/// Best first; equal scores in code order.
fn assert_ranked(results: &[SearchResult]) {
    for pair in results.windows(2) {
        let (first, second) = (&pair[0], &pair[1]);
        let (first_code, second_code) = (
            &first.code.as_ref().expect("a code").code,
            &second.code.as_ref().expect("a code").code,
        );
        assert!(
            first.score > second.score || (first.score == second.score && first_code < second_code),
            "{first_code} ({}) ranks before {second_code} ({})",
            first.score,
            second.score
        );
    }
}

/// Every page of `request`, following `next_page_token` to the end.
async fn every_page(
    client: &mut CodeLookupClient<Channel>,
    mut request: SearchCodesRequest,
) -> Vec<SearchCodesResponse> {
    let mut pages = Vec::new();
    loop {
        let page = search(client, request.clone()).await;
        let next = page.next_page_token.clone();
        pages.push(page);
        assert!(pages.len() <= 100, "paging does not end");
        if next.is_empty() {
            return pages;
        }
        request.page_token = next;
    }
}

#[tokio::test]
async fn an_exact_code_comes_first() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = search(&mut app.code_lookup, query("64483")).await;

    // Assert
    assert_eq!(codes(&response.results)[0], "64483");
    assert_ranked(&response.results);
}

#[tokio::test]
async fn a_code_prefix_finds_those_codes_in_code_order() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = search(&mut app.code_lookup, query("6449")).await;

    // Assert
    let found = codes(&response.results);
    assert!(
        found.iter().all(|code| code.starts_with("6449")),
        "{found:?}"
    );
    assert_eq!(
        found,
        ["64490", "64491", "64492", "64493", "64494", "64495"]
    );
    assert_eq!(response.total_size, 6);
    assert!(response.next_page_token.is_empty());
}

#[tokio::test]
async fn clinician_jargon_finds_the_codes_it_names() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = search(&mut app.code_lookup, query("TFESI")).await;

    // Assert
    let found = codes(&response.results);
    assert!(
        found[0] == "64479" || found[0] == "64483",
        "top result for TFESI: {found:?}"
    );
    let transforaminal: HashSet<&str> = found.iter().take(4).map(String::as_str).collect();
    assert_eq!(
        transforaminal,
        HashSet::from(["64479", "64480", "64483", "64484"])
    );
    assert_ranked(&response.results);
}

#[tokio::test]
async fn the_last_word_matches_as_a_prefix() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = search(&mut app.code_lookup, query("kyphopl")).await;

    // Assert
    let found = codes(&response.results);
    assert!(
        ["22513", "22514", "22515"].contains(&found[0].as_str()),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_category_filter_keeps_only_that_category() {
    // Arrange
    let mut app = spawn_app().await;
    let request = SearchCodesRequest {
        categories: vec![Category::Ii.into()],
        page_size: 100,
        ..query("pain")
    };

    // Act
    let response = search(&mut app.code_lookup, request).await;

    // Assert
    assert!(!response.results.is_empty());
    for result in &response.results {
        let code = result.code.as_ref().expect("a code");
        assert_eq!(code.category(), Category::Ii, "{}", code.code);
    }
}

#[tokio::test]
async fn an_add_on_filter_keeps_only_add_ons_or_only_primaries() {
    // Arrange
    let mut app = spawn_app().await;

    for add_on in [true, false] {
        let request = SearchCodesRequest {
            add_on: Some(add_on),
            page_size: 100,
            view: CodeView::Full.into(),
            ..query("facet")
        };

        // Act
        let response = search(&mut app.code_lookup, request).await;

        // Assert
        assert!(!response.results.is_empty(), "add_on = {add_on}");
        for result in &response.results {
            let code = result.code.as_ref().expect("a code");
            assert_eq!(code.add_on, add_on, "{}", code.code);
        }
    }
}

#[tokio::test]
async fn imaging_and_anatomy_filters_narrow_the_results() {
    // Arrange
    let mut app = spawn_app().await;
    let request = SearchCodesRequest {
        imaging: vec![Imaging::Ultrasound.into()],
        anatomy: "JOINT".to_string(),
        page_size: 100,
        ..query("")
    };

    // Act
    let response = search(&mut app.code_lookup, request).await;

    // Assert
    let found = codes(&response.results);
    assert_eq!(found, ["20604", "20606", "20611"]);
}

#[tokio::test]
async fn deleted_codes_are_found_only_on_request() {
    // Arrange
    let mut app = spawn_app().await;
    let with_deleted = SearchCodesRequest {
        statuses: vec![CodeStatus::Deleted.into()],
        ..query("62310")
    };

    // Act
    let default_search = search(&mut app.code_lookup, query("62310")).await;
    let deleted_search = search(&mut app.code_lookup, with_deleted).await;

    // Assert
    assert!(
        !codes(&default_search.results).contains(&"62310".to_string()),
        "{:?}",
        codes(&default_search.results)
    );
    let first = deleted_search.results[0].code.as_ref().expect("a code");
    assert_eq!(first.code, "62310");
    assert_eq!(first.status(), CodeStatus::Deleted);
}

#[tokio::test]
async fn a_code_not_yet_in_effect_is_not_found() {
    // Arrange
    let mut app = spawn_app().await;
    let before = SearchCodesRequest {
        as_of: "2024-06-01".to_string(),
        ..query("64466")
    };

    // Act
    let response = search(&mut app.code_lookup, before).await;

    // Assert
    assert!(
        !codes(&response.results).contains(&"64466".to_string()),
        "{:?}",
        codes(&response.results)
    );
}

#[tokio::test]
async fn an_empty_query_lists_the_filtered_codes_in_code_order() {
    // Arrange
    let mut app = spawn_app().await;
    let request = SearchCodesRequest {
        categories: vec![Category::Ii.into()],
        page_size: 100,
        ..query("")
    };

    // Act
    let response = search(&mut app.code_lookup, request).await;

    // Assert
    let found = codes(&response.results);
    assert!(found.len() >= 10, "{found:?}");
    assert!(found.windows(2).all(|pair| pair[0] < pair[1]), "{found:?}");
    assert!(found.iter().all(|code| code.ends_with('F')), "{found:?}");
    assert_eq!(usize::try_from(response.total_size), Ok(found.len()));
}

#[tokio::test]
async fn walking_the_pages_finds_every_result_once_in_rank_order() {
    // Arrange
    let mut app = spawn_app().await;
    let single_page = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 100,
            ..query("facet")
        },
    )
    .await;
    assert!(
        single_page.total_size > 7 && single_page.total_size <= 100,
        "pick a query with 8 to 100 results, not {}",
        single_page.total_size
    );

    // Act
    let pages = every_page(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 7,
            ..query("facet")
        },
    )
    .await;

    // Assert
    let walked: Vec<SearchResult> = pages.iter().flat_map(|page| page.results.clone()).collect();
    let walked_codes = codes(&walked);
    let distinct: HashSet<&String> = walked_codes.iter().collect();
    assert_eq!(
        distinct.len(),
        walked_codes.len(),
        "a code repeats: {walked_codes:?}"
    );
    assert_eq!(usize::try_from(single_page.total_size), Ok(walked.len()));
    assert_eq!(walked_codes, codes(&single_page.results));
    assert_ranked(&walked);
    for page in &pages[..pages.len() - 1] {
        assert_eq!(page.results.len(), 7);
    }
    assert!(
        pages
            .iter()
            .all(|page| page.total_size == single_page.total_size)
    );
}

#[tokio::test]
async fn a_page_token_from_another_query_is_refused() {
    // Arrange
    let mut app = spawn_app().await;
    let first_page = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 2,
            ..query("facet")
        },
    )
    .await;
    assert!(!first_page.next_page_token.is_empty());

    // Act
    let status = app
        .code_lookup
        .search_codes(SearchCodesRequest {
            page_size: 2,
            page_token: first_page.next_page_token,
            ..query("epidural")
        })
        .await
        .expect_err("the token belongs to another query");

    // Assert
    let description = assert_invalid_field(&status, "page_token");
    assert!(description.contains("different query"), "{description}");
}

#[tokio::test]
async fn a_page_token_with_other_filters_is_refused() {
    // Arrange
    let mut app = spawn_app().await;
    let first_page = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 2,
            ..query("facet")
        },
    )
    .await;

    // Act
    let status = app
        .code_lookup
        .search_codes(SearchCodesRequest {
            page_size: 2,
            page_token: first_page.next_page_token,
            add_on: Some(true),
            ..query("facet")
        })
        .await
        .expect_err("the token belongs to other filters");

    // Assert
    assert_invalid_field(&status, "page_token");
}

#[tokio::test]
async fn a_garbage_page_token_is_refused() {
    // Arrange
    let mut app = spawn_app().await;

    for token in ["garbage!!", "bm90IGEgdG9rZW4", "o:5:zzzz"] {
        // Act
        let status = app
            .code_lookup
            .search_codes(SearchCodesRequest {
                page_token: token.to_string(),
                ..query("facet")
            })
            .await
            .expect_err("the token was never issued");

        // Assert
        assert_invalid_field(&status, "page_token");
    }
}

#[tokio::test]
async fn a_negative_page_size_is_refused() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .search_codes(SearchCodesRequest {
            page_size: -1,
            ..query("facet")
        })
        .await
        .expect_err("a negative page size is refused");

    // Assert
    assert_invalid_field(&status, "page_size");
}

#[tokio::test]
async fn a_page_size_over_the_maximum_is_clamped_and_zero_means_the_default() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let huge = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 1000,
            ..query("")
        },
    )
    .await;
    let default = search(&mut app.code_lookup, query("")).await;

    // Assert
    assert!(huge.total_size > 100, "{}", huge.total_size);
    assert_eq!(huge.results.len(), 100);
    assert!(!huge.next_page_token.is_empty());
    assert_eq!(default.results.len(), 20);
}

#[tokio::test]
async fn a_query_over_256_characters_is_refused_and_256_is_answered() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let too_long = app
        .code_lookup
        .search_codes(query(&"a".repeat(257)))
        .await
        .expect_err("257 characters is over the limit");
    let longest = app.code_lookup.search_codes(query(&"é".repeat(256))).await;

    // Assert
    let description = assert_invalid_field(&too_long, "query");
    assert!(description.contains("256"), "{description}");
    assert!(longest.is_ok(), "{longest:?}");
}

#[tokio::test]
async fn an_unspecified_category_in_a_filter_is_refused() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .search_codes(SearchCodesRequest {
            categories: vec![Category::Unspecified.into(), Category::I.into(), 42],
            ..query("facet")
        })
        .await
        .expect_err("CATEGORY_UNSPECIFIED is no category");

    // Assert
    assert_invalid_field(&status, "categories[0]");
    assert_invalid_field(&status, "categories[2]");
    assert!(!crate::helpers::violated_fields(&status).contains(&"categories[1]".to_string()));
}

#[tokio::test]
async fn an_unknown_status_in_a_filter_is_refused() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .search_codes(SearchCodesRequest {
            statuses: vec![CodeStatus::Unspecified.into()],
            imaging: vec![99],
            ..query("facet")
        })
        .await
        .expect_err("STATUS_UNSPECIFIED is no status");

    // Assert
    assert_invalid_field(&status, "statuses[0]");
    assert_invalid_field(&status, "imaging[0]");
}

/// The first result's code and the matches that explain it (the full view
/// answers them).
async fn first(client: &mut CodeLookupClient<Channel>, text: &str) -> (String, Vec<SearchMatch>) {
    let request = SearchCodesRequest {
        view: CodeView::Full.into(),
        ..query(text)
    };
    let response = search(client, request).await;
    let result = response
        .results
        .first()
        .unwrap_or_else(|| panic!("{text:?} finds nothing"))
        .clone();
    (result.code.expect("a code").code, result.matches)
}

fn has_match(matches: &[SearchMatch], kind: MatchKind, field: &str, matched_text: &str) -> bool {
    matches.iter().any(|found| {
        found.kind() == kind && found.field == field && found.matched_text == matched_text
    })
}

#[tokio::test]
async fn every_result_says_why_it_matched() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 100,
            view: CodeView::Full.into(),
            ..query("lumbar mbb")
        },
    )
    .await;

    // Assert
    assert_eq!(codes(&response.results)[0], "64493");
    for result in &response.results {
        assert!(
            !result.matches.is_empty(),
            "{:?} has no matches",
            result.code
        );
        for found in &result.matches {
            assert_ne!(found.kind(), MatchKind::Unspecified);
            assert!(
                !found.field.is_empty() && !found.matched_text.is_empty(),
                "{found:?}"
            );
        }
    }
    let matches = &response.results[0].matches;
    assert!(
        has_match(matches, MatchKind::Exact, "synonyms", "lumbar"),
        "{matches:?}"
    );
    assert!(
        has_match(matches, MatchKind::Phrase, "synonyms", "lumbar MBB"),
        "{matches:?}"
    );
}

#[tokio::test]
async fn an_exact_code_and_a_code_prefix_are_explained_as_codes() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let (exact, exact_matches) = first(&mut app.code_lookup, "0521f").await;
    let (prefixed, prefix_matches) = first(&mut app.code_lookup, "6449").await;

    // Assert
    assert_eq!(exact, "0521F");
    assert!(
        has_match(&exact_matches, MatchKind::Code, "code", "0521F"),
        "{exact_matches:?}"
    );
    assert_eq!(prefixed, "64490");
    assert!(
        has_match(&prefix_matches, MatchKind::CodePrefix, "code", "64490"),
        "{prefix_matches:?}"
    );
}

#[tokio::test]
async fn codes_are_never_fuzzed() {
    // Arrange
    let mut app = spawn_app().await;

    // Act: one digit away from 64483 and 64484, but no code.
    let response = search(&mut app.code_lookup, query("64488x")).await;
    let near_code = search(&mut app.code_lookup, query("64485")).await;

    // Assert
    assert_eq!(response.total_size, 0, "{:?}", codes(&response.results));
    assert_eq!(near_code.total_size, 0, "{:?}", codes(&near_code.results));
}

#[tokio::test]
async fn small_typos_are_forgiven_and_explained() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let (transposed, transposed_matches) = first(&mut app.code_lookup, "stelate ganglion").await;
    let (two_edits, two_edit_matches) = first(&mut app.code_lookup, "kyphoplsty").await;

    // Assert
    assert_eq!(transposed, "64510");
    assert!(
        has_match(
            &transposed_matches,
            MatchKind::Fuzzy,
            "synonyms",
            "stellate"
        ),
        "{transposed_matches:?}"
    );
    assert!(
        ["22513", "22514"].contains(&two_edits.as_str()),
        "{two_edits}"
    );
    assert!(
        two_edit_matches
            .iter()
            .any(|found| found.kind() == MatchKind::Fuzzy),
        "{two_edit_matches:?}"
    );
}

#[tokio::test]
async fn a_short_word_is_not_fuzzed() {
    // Arrange
    let mut app = spawn_app().await;

    // Act: "kne" is three letters, too short to forgive; as the last word it is a
    // prefix only, and nothing starts with "kme".
    let response = search(&mut app.code_lookup, query("kme ")).await;

    // Assert
    assert_eq!(response.total_size, 0, "{:?}", codes(&response.results));
}

#[tokio::test]
async fn the_word_being_typed_is_explained_as_a_prefix() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let (code, matches) = first(&mut app.code_lookup, "stellate gang").await;
    let (_, finished) = first(&mut app.code_lookup, "stellate gang ").await;

    // Assert
    assert_eq!(code, "64510");
    assert!(
        has_match(&matches, MatchKind::Prefix, "synonyms", "ganglion"),
        "{matches:?}"
    );
    assert!(
        finished.iter().all(|found| found.query_word != "gang"),
        "a word followed by a space is finished, not a prefix: {finished:?}"
    );
}

#[tokio::test]
async fn jargon_from_the_abbreviation_map_finds_its_codes() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let (si_rfa, si_rfa_matches) = first(&mut app.code_lookup, "SI RFA").await;
    let (knee_shot, _) = first(&mut app.code_lookup, "knee shot").await;
    let (burning, burning_matches) = first(&mut app.code_lookup, "back nerve burning").await;
    let tpi = search(&mut app.code_lookup, query("TPI")).await;

    // Assert
    assert_eq!(si_rfa, "64625");
    assert!(
        si_rfa_matches
            .iter()
            .any(|found| found.kind() == MatchKind::Phrase),
        "{si_rfa_matches:?}"
    );
    assert_eq!(knee_shot, "20610");
    assert_eq!(burning, "64635");
    assert!(
        has_match(
            &burning_matches,
            MatchKind::Abbreviation,
            "synonyms",
            "lumbar"
        ),
        "{burning_matches:?}"
    );
    let tpi_codes = codes(&tpi.results);
    assert_eq!(&tpi_codes[..2], ["20552", "20553"], "{tpi_codes:?}");
}

#[tokio::test]
async fn quantities_and_sides_are_read_as_people_write_them() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let (three_muscles, muscle_matches) =
        first(&mut app.code_lookup, "trigger point 3 muscles").await;
    let (two_muscles, _) = first(&mut app.code_lookup, "trigger point two muscles").await;
    let (second_level, _) = first(&mut app.code_lookup, "TFESI lumbar second level").await;
    let (single_level, _) = first(&mut app.code_lookup, "TFESI lumbar single level").await;
    let (bilateral, _) = first(&mut app.code_lookup, "TAP block both sides").await;
    let (unilateral, _) = first(&mut app.code_lookup, "TAP block unilat").await;

    // Assert
    assert_eq!(three_muscles, "20553");
    assert!(
        has_match(
            &muscle_matches,
            MatchKind::Quantity,
            "descriptor",
            "three or more muscles"
        ),
        "{muscle_matches:?}"
    );
    assert_eq!(two_muscles, "20552");
    assert_eq!(second_level, "64484");
    assert_eq!(single_level, "64483");
    assert_eq!(bilateral, "64488");
    assert_eq!(unilateral, "64486");
}

#[tokio::test]
async fn every_word_must_match_unless_nothing_matches_them_all() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let narrowed = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 100,
            ..query("genicular rfa")
        },
    )
    .await;
    let fallback = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 100,
            ..query("genicular xylophone")
        },
    )
    .await;

    // Assert
    assert_eq!(codes(&narrowed.results), ["64624"]);
    let found = codes(&fallback.results);
    assert_eq!(
        found,
        ["64454", "64624"],
        "codes matching the most words: {found:?}"
    );
}

#[tokio::test]
async fn a_primary_code_ranks_before_its_add_on() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = search(&mut app.code_lookup, query("TFESI L5")).await;

    // Assert
    let found = codes(&response.results);
    assert_eq!(&found[..2], ["64483", "64484"], "{found:?}");
    assert_ranked(&response.results);
}

#[tokio::test]
async fn an_anatomy_filter_narrows_a_text_search() {
    // Arrange
    let mut app = spawn_app().await;
    let request = SearchCodesRequest {
        anatomy: "cervical".to_string(),
        page_size: 100,
        ..query("facet rfa")
    };

    // Act
    let response = search(&mut app.code_lookup, request).await;

    // Assert
    let found = codes(&response.results);
    assert_eq!(found, ["64633", "64634"], "{found:?}");
}

#[tokio::test]
async fn a_code_set_past_the_blocking_pool_threshold_is_searched_correctly() {
    // Arrange: enough codes that searches run on the blocking pool.
    let directory = tempfile::tempdir().unwrap();
    let mut csv = String::from("code,descriptor,anatomy\n");
    for number in 0..12_000 {
        let place = ["lumbar", "cervical", "thoracic"][number % 3];
        csv.push_str(&format!(
            "{:05},Practice procedure number {number} on the {place} spine.,{place} spine\n",
            30_000 + number
        ));
    }
    let file = directory.path().join("large.csv");
    std::fs::write(&file, csv).unwrap();
    let mut config = Config::for_tests();
    config.code_files = vec![file];
    let mut app = spawn_app_with(config).await;

    // Act
    let broad = app
        .code_lookup
        .search_codes(query("practice cervical"))
        .await
        .expect("a broad search over a large set is answered");
    let version = broad.metadata().get("cptd-registry-version").cloned();
    let broad = broad.into_inner();
    let built_in = search(&mut app.code_lookup, query("TFESI L5")).await;

    // Assert
    assert_eq!(broad.total_size, 4_000);
    assert_eq!(broad.results.len(), 20);
    assert_ranked(&broad.results);
    assert!(version.is_some(), "the answer names the code set");
    assert_eq!(codes(&built_in.results)[0], "64483");
}

fn found_codes(results: &[SearchResult]) -> Vec<Code> {
    results
        .iter()
        .map(|result| result.code.clone().expect("every result has a code"))
        .collect()
}

#[tokio::test]
async fn a_search_answers_basic_codes_unless_asked_for_full_ones() {
    // Arrange
    let mut app = spawn_app().await;
    let request = |view: CodeView| SearchCodesRequest {
        view: view.into(),
        ..query("lumbar mbb")
    };

    // Act
    let unspecified = search(&mut app.code_lookup, request(CodeView::Unspecified)).await;
    let basic = search(&mut app.code_lookup, request(CodeView::Basic)).await;
    let full = search(&mut app.code_lookup, request(CodeView::Full)).await;

    // Assert
    let found = codes(&full.results);
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    let looked_up = full_codes(&mut app.code_lookup, &found, "2025-06-01").await;
    assert_eq!(
        found_codes(&full.results),
        in_view(&looked_up, CodeView::Full)
    );
    assert_eq!(
        found_codes(&basic.results),
        in_view(&looked_up, CodeView::Basic)
    );
    assert_eq!(unspecified, basic);
    // The same codes, scores and paging; only the full view says why each
    // matched, since explaining costs about as much as the search.
    assert_eq!(basic.results.len(), full.results.len());
    for (basic, full) in basic.results.iter().zip(&full.results) {
        assert!(basic.matches.is_empty());
        assert!(!full.matches.is_empty());
        assert_eq!(basic.score, full.score);
    }
    assert_eq!(
        (basic.total_size, &basic.next_page_token),
        (full.total_size, &full.next_page_token)
    );
}

#[tokio::test]
async fn a_view_outside_the_enum_is_refused_naming_the_field() {
    // Arrange
    let mut app = spawn_app().await;

    for view in [3, -1] {
        // Act
        let status = app
            .code_lookup
            .search_codes(SearchCodesRequest {
                view,
                ..query("lumbar mbb")
            })
            .await
            .expect_err("the view is not in the enum");

        // Assert
        let description = assert_invalid_field(&status, "view");
        assert!(description.contains(&view.to_string()), "{description}");
    }
}

#[tokio::test]
async fn a_page_token_stays_good_when_the_view_changes() {
    // Arrange
    let mut app = spawn_app().await;
    let everything = search(
        &mut app.code_lookup,
        SearchCodesRequest {
            page_size: 100,
            view: CodeView::Full.into(),
            ..query("facet")
        },
    )
    .await;
    let all = found_codes(&everything.results);
    assert!(all.len() > 6, "pick a query with several pages");
    let mut request = SearchCodesRequest {
        page_size: 3,
        ..query("facet")
    };

    // Act
    let mut pages = Vec::new();
    for view in [CodeView::Basic, CodeView::Full].into_iter().cycle() {
        request.view = view.into();
        let page = search(&mut app.code_lookup, request.clone()).await;
        request.page_token = page.next_page_token.clone();
        pages.push((view, page));
        assert!(pages.len() <= 100, "paging does not end");
        if request.page_token.is_empty() {
            break;
        }
    }

    // Assert
    let mut walked = 0;
    for (view, page) in &pages {
        let expected = &all[walked..walked + page.results.len()];
        assert_eq!(found_codes(&page.results), in_view(expected, *view));
        walked += page.results.len();
    }
    assert_eq!(walked, all.len());
}
