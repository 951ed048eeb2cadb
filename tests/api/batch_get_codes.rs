//! `BatchGetCodes`: request order, every bad code named, batch limits.

use cptd::{
    codes::CodeRegistry,
    pb::{BatchGetCodesRequest, CodeView, Status as CodeStatus},
};
use tonic::Code;

use crate::helpers::{
    FORMS_HINT, assert_invalid_field, full_codes, in_view, spawn_app, violated_fields, violation_of,
};

fn request(codes: &[&str]) -> BatchGetCodesRequest {
    BatchGetCodesRequest {
        codes: codes.iter().map(ToString::to_string).collect(),
        as_of: "2025-06-01".to_string(),
        ..BatchGetCodesRequest::default()
    }
}

#[tokio::test]
async fn codes_come_back_in_request_order_duplicates_included() {
    // Arrange
    let mut app = spawn_app().await;
    let asked = ["64484", "0521f", "20610", "64484", " 62310 "];

    // Act
    let codes = app
        .code_lookup
        .batch_get_codes(request(&asked))
        .await
        .expect("every code is known")
        .into_inner()
        .codes;

    // Assert
    let returned: Vec<&str> = codes.iter().map(|code| code.code.as_str()).collect();
    assert_eq!(returned, ["64484", "0521F", "20610", "64484", "62310"]);
    assert_eq!(codes[4].status(), CodeStatus::Deleted);
    assert_eq!(codes[0], codes[3]);
}

#[tokio::test]
async fn every_malformed_code_is_named_by_index() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(request(&["64483", "6448", "20610", "X1234", "0521FF"]))
        .await
        .expect_err("malformed codes fail the call");

    // Assert
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        violated_fields(&status),
        ["codes[1]", "codes[3]", "codes[4]"]
    );
    assert!(violation_of(&status, "codes[1]").contains("\"6448\" is not a code"));
    assert!(
        status.message().contains(FORMS_HINT),
        "the accepted forms are stated once in the message: {status:?}"
    );
}

#[tokio::test]
async fn a_thousand_bad_codes_give_a_readable_error_that_counts_them_all() {
    // Arrange
    let mut app = spawn_app().await;
    let codes: Vec<String> = (0..1000).map(|index| format!("bad{index}")).collect();
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(request(&codes))
        .await
        .expect_err("malformed codes fail the call");

    // Assert
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields = violated_fields(&status);
    assert_eq!(fields.len(), 50);
    assert_eq!(fields[0], "codes[0]");
    assert!(status.message().contains("and 997 more"), "{status:?}");
    assert!(status.message().contains("first 50 of 1000"), "{status:?}");
}

#[tokio::test]
async fn every_unknown_code_is_named_by_index() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(request(&["99999", "64483", "J1030", "20610", "0001U"]))
        .await
        .expect_err("unknown codes fail the call");

    // Assert
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        violated_fields(&status),
        ["codes[0]", "codes[2]", "codes[4]"]
    );
    assert!(violation_of(&status, "codes[0]").contains("99999"));
    assert!(violation_of(&status, "codes[2]").contains("HCPCS Level II"));
}

#[tokio::test]
async fn malformed_and_unknown_codes_are_named_together() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(request(&["99999", "6448", "64483"]))
        .await
        .expect_err("a malformed code fails the call");

    // Assert
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(violated_fields(&status), ["codes[0]", "codes[1]"]);
    assert!(violation_of(&status, "codes[0]").contains("not in the code set"));
}

#[tokio::test]
async fn a_code_not_yet_in_effect_is_named_as_not_found() {
    // Arrange
    let mut app = spawn_app().await;
    let mut batch = request(&["64483", "64466"]);
    batch.as_of = "2024-06-01".to_string();

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(batch)
        .await
        .expect_err("64466 took effect in 2025");

    // Assert
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(violation_of(&status, "codes[1]").contains("2025-01-01"));
}

#[tokio::test]
async fn an_empty_batch_is_invalid_argument() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(request(&[]))
        .await
        .expect_err("an empty batch is refused");

    // Assert
    assert_invalid_field(&status, "codes");
}

#[tokio::test]
async fn a_batch_over_the_limit_is_invalid_argument_naming_the_limit() {
    // Arrange
    let mut app = spawn_app().await;
    let codes = vec!["64483"; 1001];

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(request(&codes))
        .await
        .expect_err("1001 codes is over the limit");

    // Assert
    let description = assert_invalid_field(&status, "codes");
    assert!(description.contains("1000"), "{description}");
}

#[tokio::test]
async fn a_batch_of_exactly_the_limit_is_answered() {
    // Arrange
    let mut app = spawn_app().await;
    let registry = CodeRegistry::built_in().expect("the built-in set loads");
    let known: Vec<String> = registry
        .histories()
        .iter()
        .map(|history| history.code().to_string())
        .cycle()
        .take(1000)
        .collect();
    let batch = BatchGetCodesRequest {
        codes: known.clone(),
        as_of: "2025-06-01".to_string(),
        ..BatchGetCodesRequest::default()
    };

    // Act
    let codes = app
        .code_lookup
        .batch_get_codes(batch)
        .await
        .expect("1000 known codes are within the limit")
        .into_inner()
        .codes;

    // Assert
    let returned: Vec<String> = codes.into_iter().map(|code| code.code).collect();
    assert_eq!(returned, known);
}

#[tokio::test]
async fn a_bad_as_of_is_named() {
    // Arrange
    let mut app = spawn_app().await;
    let mut batch = request(&["64483"]);
    batch.as_of = "2025-13-01".to_string();

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(batch)
        .await
        .expect_err("a bad as_of is refused");

    // Assert
    assert_invalid_field(&status, "as_of");
}

#[tokio::test]
async fn codes_come_back_in_full_unless_asked_for_basic_ones() {
    // Arrange
    let mut app = spawn_app().await;
    let asked = ["64493", "62310", "0521F", "0216T"];
    let looked_up = full_codes(&mut app.code_lookup, &asked, "2025-06-01").await;
    let batch = |view: CodeView| BatchGetCodesRequest {
        view: view.into(),
        ..request(&asked)
    };

    // Act
    let mut answers = Vec::new();
    for view in [CodeView::Unspecified, CodeView::Basic, CodeView::Full] {
        let answer = app.code_lookup.batch_get_codes(batch(view)).await;
        answers.push(answer.expect("every code is known").into_inner().codes);
    }

    // Assert
    let [unspecified, basic, full] = &answers[..] else {
        unreachable!("three views were asked for")
    };
    assert_eq!(*full, in_view(&looked_up, CodeView::Full));
    assert_eq!(*basic, in_view(&looked_up, CodeView::Basic));
    assert_eq!(unspecified, full);
    // A deleted code is never taken for a live one, also in the basic view.
    assert_eq!(basic[1].status(), CodeStatus::Deleted);
    assert_eq!(basic[0].status(), CodeStatus::Active);
}

#[tokio::test]
async fn a_view_outside_the_enum_is_refused_naming_the_field() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .batch_get_codes(BatchGetCodesRequest {
            view: 3,
            ..request(&["64483"])
        })
        .await
        .expect_err("the view is not in the enum");

    // Assert
    let description = assert_invalid_field(&status, "view");
    assert!(description.contains('3'), "{description}");
}
