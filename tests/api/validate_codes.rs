//! `ValidateCodes`: a verdict per input, in order, never a failure for bad codes.

use cptd::pb::{ValidateCodesRequest, ValidationReason};

use crate::helpers::{FORMS_HINT, assert_invalid_field, spawn_app};

fn request(codes: &[&str], as_of: &str) -> ValidateCodesRequest {
    ValidateCodesRequest {
        codes: codes.iter().map(ToString::to_string).collect(),
        as_of: as_of.to_string(),
    }
}

#[tokio::test]
async fn each_input_gets_one_verdict_in_order() {
    // Arrange
    let mut app = spawn_app().await;
    let inputs = [
        " 64483 ", "6448", "99999", "J1030", "62310", "0521f", "64483",
    ];

    // Act
    let results = app
        .code_lookup
        .validate_codes(request(&inputs, "2025-06-01"))
        .await
        .expect("bad codes never fail the call")
        .into_inner()
        .results;

    // Assert
    let echoed: Vec<&str> = results.iter().map(|result| result.input.as_str()).collect();
    assert_eq!(echoed, inputs);
    let normalised: Vec<&str> = results.iter().map(|result| result.code.as_str()).collect();
    assert_eq!(
        normalised,
        ["64483", "", "99999", "J1030", "62310", "0521F", "64483"]
    );
    let reasons: Vec<ValidationReason> = results.iter().map(|result| result.reason()).collect();
    assert_eq!(
        reasons,
        [
            ValidationReason::Valid,
            ValidationReason::Malformed,
            ValidationReason::Unknown,
            ValidationReason::Unknown,
            ValidationReason::Deleted,
            ValidationReason::Valid,
            ValidationReason::Valid,
        ]
    );
    let valid: Vec<bool> = results.iter().map(|result| result.valid).collect();
    assert_eq!(valid, [true, false, false, false, false, true, true]);
}

#[tokio::test]
async fn a_valid_code_comes_with_its_details() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let results = app
        .code_lookup
        .validate_codes(request(&["64483"], "2025-06-01"))
        .await
        .expect("validation answers")
        .into_inner()
        .results;

    // Assert
    let result = &results[0];
    assert!(result.valid);
    assert_eq!(result.reason(), ValidationReason::Valid);
    assert!(!result.message.is_empty());
    let details = result.details.as_ref().expect("a known code has details");
    assert_eq!(details.code, "64483");
}

#[tokio::test]
async fn a_malformed_input_says_the_forms_and_has_no_code_or_details() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let results = app
        .code_lookup
        .validate_codes(request(&["6448"], ""))
        .await
        .expect("validation answers")
        .into_inner()
        .results;

    // Assert
    let result = &results[0];
    assert_eq!(result.reason(), ValidationReason::Malformed);
    assert!(!result.valid);
    assert_eq!(result.code, "");
    assert!(result.message.contains(FORMS_HINT), "{}", result.message);
    assert!(result.details.is_none());
}

#[tokio::test]
async fn an_unknown_code_has_no_details_and_names_its_form() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let results = app
        .code_lookup
        .validate_codes(request(&["99999", "j1030"], ""))
        .await
        .expect("validation answers")
        .into_inner()
        .results;

    // Assert
    for result in &results {
        assert_eq!(result.reason(), ValidationReason::Unknown, "{result:?}");
        assert!(result.details.is_none(), "{result:?}");
    }
    assert_eq!(results[1].code, "J1030");
    assert!(
        results[1].message.contains("HCPCS Level II"),
        "{}",
        results[1].message
    );
}

#[tokio::test]
async fn a_deleted_code_names_its_replacement() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let results = app
        .code_lookup
        .validate_codes(request(&["62310"], "2025-06-01"))
        .await
        .expect("validation answers")
        .into_inner()
        .results;

    // Assert
    let result = &results[0];
    assert_eq!(result.reason(), ValidationReason::Deleted);
    assert!(!result.valid);
    assert!(result.message.contains("62320"), "{}", result.message);
    let details = result.details.as_ref().expect("a deleted code has details");
    assert_eq!(details.deletion_date, "2017-01-01");
}

#[tokio::test]
async fn a_deleted_code_is_valid_on_a_day_before_its_deletion() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let results = app
        .code_lookup
        .validate_codes(request(&["62310"], "2016-06-01"))
        .await
        .expect("validation answers")
        .into_inner()
        .results;

    // Assert
    assert_eq!(results[0].reason(), ValidationReason::Valid);
    assert!(results[0].valid);
}

#[tokio::test]
async fn a_code_before_its_effective_date_is_not_yet_effective() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let results = app
        .code_lookup
        .validate_codes(request(&["64466"], "2024-06-01"))
        .await
        .expect("validation answers")
        .into_inner()
        .results;

    // Assert
    let result = &results[0];
    assert_eq!(result.reason(), ValidationReason::NotYetEffective);
    assert!(!result.valid);
    assert!(result.message.contains("2025-01-01"), "{}", result.message);
    assert!(result.details.is_some(), "the registry holds 64466");
}

#[tokio::test]
async fn a_batch_over_the_limit_is_invalid_argument_naming_the_limit() {
    // Arrange
    let mut app = spawn_app().await;
    let codes = vec!["64483"; 1001];

    // Act
    let status = app
        .code_lookup
        .validate_codes(request(&codes, ""))
        .await
        .expect_err("1001 codes is over the limit");

    // Assert
    let description = assert_invalid_field(&status, "codes");
    assert!(description.contains("1000"), "{description}");
}

#[tokio::test]
async fn an_empty_batch_is_invalid_argument() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .validate_codes(request(&[], ""))
        .await
        .expect_err("an empty batch is refused");

    // Assert
    assert_invalid_field(&status, "codes");
}

#[tokio::test]
async fn a_bad_as_of_is_invalid_argument() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .validate_codes(request(&["64483"], "2025-02-30"))
        .await
        .expect_err("a bad as_of is refused");

    // Assert
    assert_invalid_field(&status, "as_of");
}

#[tokio::test]
async fn a_full_batch_of_bad_codes_is_answered_not_refused() {
    // Arrange
    let mut app = spawn_app().await;
    let codes: Vec<String> = (0..1000).map(|index| format!("bad-{index}")).collect();
    let batch = ValidateCodesRequest {
        codes: codes.clone(),
        as_of: String::new(),
    };

    // Act
    let results = app
        .code_lookup
        .validate_codes(batch)
        .await
        .expect("bad codes never fail the call")
        .into_inner()
        .results;

    // Assert
    assert_eq!(results.len(), 1000);
    assert!(
        results
            .iter()
            .zip(&codes)
            .all(|(result, input)| result.input == *input
                && result.reason() == ValidationReason::Malformed)
    );
}
