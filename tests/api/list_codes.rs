//! `ListCodes`: ranges, filters, keyset paging and bad input.

use cptd::{
    codes::CodeRegistry,
    pb::{
        Category, CodeView, ListCodesRequest, ListCodesResponse, SearchCodesRequest,
        Status as CodeStatus, code_lookup_client::CodeLookupClient,
    },
};
use tonic::transport::Channel;

use crate::helpers::{FORMS_HINT, assert_invalid_field, full_codes, in_view, spawn_app};

fn listing() -> ListCodesRequest {
    ListCodesRequest {
        as_of: "2025-06-01".to_string(),
        ..ListCodesRequest::default()
    }
}

fn range(start: &str, end: &str) -> ListCodesRequest {
    ListCodesRequest {
        range_start: start.to_string(),
        range_end: end.to_string(),
        page_size: 100,
        ..listing()
    }
}

async fn list(
    client: &mut CodeLookupClient<Channel>,
    request: ListCodesRequest,
) -> ListCodesResponse {
    client
        .list_codes(request)
        .await
        .expect("the listing is answered")
        .into_inner()
}

fn codes(response: &ListCodesResponse) -> Vec<&str> {
    response
        .codes
        .iter()
        .map(|code| code.code.as_str())
        .collect()
}

#[tokio::test]
async fn a_range_is_inclusive_at_both_ends() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = list(&mut app.code_lookup, range("64490", "64495")).await;

    // Assert
    assert_eq!(
        codes(&response),
        ["64490", "64491", "64492", "64493", "64494", "64495"]
    );
    assert_eq!(response.total_size, 6);
    assert!(response.next_page_token.is_empty());
}

#[tokio::test]
async fn range_bounds_are_normalised_and_need_not_be_codes_in_the_set() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = list(&mut app.code_lookup, range(" 64485 ", "64490")).await;

    // Assert
    assert_eq!(
        codes(&response),
        ["64486", "64487", "64488", "64489", "64490"]
    );
}

#[tokio::test]
async fn a_category_filter_keeps_only_that_category_in_code_order() {
    // Arrange
    let mut app = spawn_app().await;
    let request = ListCodesRequest {
        categories: vec![Category::Iii.into()],
        page_size: 100,
        ..listing()
    };

    // Act
    let response = list(&mut app.code_lookup, request).await;

    // Assert
    let found = codes(&response);
    assert!(!found.is_empty());
    assert!(found.windows(2).all(|pair| pair[0] < pair[1]), "{found:?}");
    for code in &response.codes {
        assert_eq!(code.category(), Category::Iii, "{}", code.code);
    }
}

#[tokio::test]
async fn a_section_filter_ignores_case() {
    // Arrange
    let mut app = spawn_app().await;
    let request = |section: &str| ListCodesRequest {
        section: section.to_string(),
        page_size: 100,
        ..listing()
    };

    // Act
    let lower = list(&mut app.code_lookup, request("surgery")).await;
    let upper = list(&mut app.code_lookup, request("SURGERY")).await;

    // Assert
    assert!(lower.total_size > 0);
    assert!(lower.codes.iter().all(|code| code.section == "Surgery"));
    assert_eq!(lower.codes, upper.codes);
    assert_eq!(lower.total_size, upper.total_size);
}

#[tokio::test]
async fn walking_the_pages_lists_every_code_once_in_code_order() {
    // Arrange
    let mut app = spawn_app().await;
    let registry = CodeRegistry::built_in().expect("the built-in set loads");
    let day = jiff::civil::date(2025, 6, 1);
    let active_that_day = registry
        .histories()
        .iter()
        .filter(|history| history.as_of(day).standing.is_active())
        .count();
    let mut request = ListCodesRequest {
        page_size: 7,
        ..listing()
    };

    // Act
    let mut pages = Vec::new();
    loop {
        let page = list(&mut app.code_lookup, request.clone()).await;
        let next = page.next_page_token.clone();
        pages.push(page);
        assert!(pages.len() <= 1000, "paging does not end");
        if next.is_empty() {
            break;
        }
        request.page_token = next;
    }

    // Assert
    let walked: Vec<&str> = pages.iter().flat_map(codes).collect();
    assert!(
        walked.windows(2).all(|pair| pair[0] < pair[1]),
        "codes repeat or go out of order"
    );
    assert_eq!(walked.len(), active_that_day);
    assert!(
        pages
            .iter()
            .all(|page| usize::try_from(page.total_size) == Ok(active_that_day))
    );
    assert!(
        pages[..pages.len() - 1]
            .iter()
            .all(|page| page.codes.len() == 7)
    );
    assert!(!pages.last().expect("at least one page").codes.is_empty());
}

#[tokio::test]
async fn a_page_size_over_the_maximum_is_clamped_and_zero_means_the_default() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let huge = list(
        &mut app.code_lookup,
        ListCodesRequest {
            page_size: 1000,
            ..listing()
        },
    )
    .await;
    let default = list(&mut app.code_lookup, listing()).await;

    // Assert
    assert!(huge.total_size > 100);
    assert_eq!(huge.codes.len(), 100);
    assert!(!huge.next_page_token.is_empty());
    assert_eq!(default.codes.len(), 20);
}

#[tokio::test]
async fn a_range_end_before_its_start_is_refused() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .list_codes(range("64495", "64490"))
        .await
        .expect_err("the range is backwards");

    // Assert
    let description = assert_invalid_field(&status, "range_end");
    assert!(description.contains("64490"), "{description}");
}

#[tokio::test]
async fn a_malformed_range_bound_is_refused() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let bad_start = app
        .code_lookup
        .list_codes(range("6449", "64495"))
        .await
        .expect_err("6449 is not a code");
    let bad_end = app
        .code_lookup
        .list_codes(range("64490", "6449X"))
        .await
        .expect_err("6449X is not a code");

    // Assert
    assert!(assert_invalid_field(&bad_start, "range_start").contains(FORMS_HINT));
    assert!(assert_invalid_field(&bad_end, "range_end").contains(FORMS_HINT));
}

#[tokio::test]
async fn deleted_codes_are_listed_only_on_request() {
    // Arrange
    let mut app = spawn_app().await;
    let with_statuses = |statuses: Vec<CodeStatus>| ListCodesRequest {
        statuses: statuses.into_iter().map(i32::from).collect(),
        ..range("62310", "62327")
    };

    // Act
    let default = list(&mut app.code_lookup, range("62310", "62327")).await;
    let deleted = list(
        &mut app.code_lookup,
        with_statuses(vec![CodeStatus::Deleted]),
    )
    .await;
    let both = list(
        &mut app.code_lookup,
        with_statuses(vec![CodeStatus::Active, CodeStatus::Deleted]),
    )
    .await;

    // Assert
    assert_eq!(
        codes(&default),
        [
            "62320", "62321", "62322", "62323", "62324", "62325", "62326", "62327"
        ]
    );
    assert_eq!(codes(&deleted), ["62310", "62311", "62318", "62319"]);
    assert!(
        deleted
            .codes
            .iter()
            .all(|code| code.status() == CodeStatus::Deleted)
    );
    assert_eq!(both.total_size, 12);
}

#[tokio::test]
async fn as_of_lists_the_code_set_as_it_stood_that_day() {
    // Arrange
    let mut app = spawn_app().await;
    let on = |as_of: &str| ListCodesRequest {
        as_of: as_of.to_string(),
        ..range("64466", "64469")
    };

    // Act
    let before = list(&mut app.code_lookup, on("2024-06-01")).await;
    let after = list(&mut app.code_lookup, on("2025-06-01")).await;

    // Assert
    assert!(before.codes.is_empty(), "{:?}", codes(&before));
    assert_eq!(codes(&after), ["64466", "64467", "64468", "64469"]);
}

#[tokio::test]
async fn a_page_token_with_other_filters_is_refused() {
    // Arrange
    let mut app = spawn_app().await;
    let first_page = list(
        &mut app.code_lookup,
        ListCodesRequest {
            page_size: 2,
            ..range("64490", "64495")
        },
    )
    .await;
    assert!(!first_page.next_page_token.is_empty());

    // Act
    let status = app
        .code_lookup
        .list_codes(ListCodesRequest {
            page_size: 2,
            page_token: first_page.next_page_token,
            ..range("64490", "64499")
        })
        .await
        .expect_err("the token belongs to another range");

    // Assert
    assert_invalid_field(&status, "page_token");
}

#[tokio::test]
async fn a_search_page_token_is_refused_by_list() {
    // Arrange
    let mut app = spawn_app().await;
    let search_page = app
        .code_lookup
        .search_codes(SearchCodesRequest {
            query: "facet".to_string(),
            page_size: 2,
            ..SearchCodesRequest::default()
        })
        .await
        .expect("the search is answered")
        .into_inner();
    assert!(!search_page.next_page_token.is_empty());

    // Act
    let status = app
        .code_lookup
        .list_codes(ListCodesRequest {
            page_token: search_page.next_page_token,
            ..listing()
        })
        .await
        .expect_err("a search token is no listing token");

    // Assert
    assert_invalid_field(&status, "page_token");
}

#[tokio::test]
async fn bad_paging_and_filter_values_are_each_named() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .list_codes(ListCodesRequest {
            page_size: -5,
            page_token: "garbage!!".to_string(),
            section: "s".repeat(129),
            categories: vec![Category::I.into(), Category::Unspecified.into()],
            as_of: "2025-02-29".to_string(),
            ..ListCodesRequest::default()
        })
        .await
        .expect_err("every field is bad");

    // Assert
    for field in [
        "page_size",
        "page_token",
        "section",
        "categories[1]",
        "as_of",
    ] {
        assert_invalid_field(&status, field);
    }
}

#[tokio::test]
async fn codes_are_listed_in_full_unless_asked_for_basic_ones() {
    // Arrange
    let mut app = spawn_app().await;
    let request = |view: CodeView| ListCodesRequest {
        view: view.into(),
        ..range("64490", "64495")
    };
    let listed = ["64490", "64491", "64492", "64493", "64494", "64495"];
    let looked_up = full_codes(&mut app.code_lookup, &listed, "2025-06-01").await;

    // Act
    let unspecified = list(&mut app.code_lookup, request(CodeView::Unspecified)).await;
    let basic = list(&mut app.code_lookup, request(CodeView::Basic)).await;
    let full = list(&mut app.code_lookup, request(CodeView::Full)).await;

    // Assert
    assert_eq!(full.codes, in_view(&looked_up, CodeView::Full));
    assert_eq!(basic.codes, in_view(&looked_up, CodeView::Basic));
    assert_eq!(unspecified, full);
    assert_eq!(basic.total_size, full.total_size);
}

#[tokio::test]
async fn a_view_outside_the_enum_is_refused_naming_the_field() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .list_codes(ListCodesRequest {
            view: 7,
            ..listing()
        })
        .await
        .expect_err("the view is not in the enum");

    // Assert
    let description = assert_invalid_field(&status, "view");
    assert!(description.contains('7'), "{description}");
}

#[tokio::test]
async fn a_page_token_stays_good_when_the_view_changes() {
    // Arrange
    let mut app = spawn_app().await;
    let listed = ["64490", "64491", "64492", "64493", "64494", "64495"];
    let looked_up = full_codes(&mut app.code_lookup, &listed, "2025-06-01").await;
    let mut request = ListCodesRequest {
        page_size: 2,
        ..range("64490", "64495")
    };

    // Act
    let mut pages = Vec::new();
    for view in [CodeView::Full, CodeView::Basic].into_iter().cycle() {
        request.view = view.into();
        let page = list(&mut app.code_lookup, request.clone()).await;
        request.page_token = page.next_page_token.clone();
        pages.push((view, page));
        assert!(pages.len() <= 10, "paging does not end");
        if request.page_token.is_empty() {
            break;
        }
    }

    // Assert
    assert_eq!(pages.len(), 3);
    for (nth, (view, page)) in pages.iter().enumerate() {
        let expected = &looked_up[2 * nth..2 * nth + 2];
        assert_eq!(page.codes, in_view(expected, *view));
    }
}
