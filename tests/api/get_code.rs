//! `GetCode`: normalisation, every field, errors, and `as_of`.

use cptd::pb::{Category, CodeForm, GetCodeRequest, Imaging, Status as CodeStatus};
use tonic::Code;

use crate::helpers::{FORMS_HINT, assert_invalid_field, spawn_app};

fn request(code: &str, as_of: &str) -> GetCodeRequest {
    GetCodeRequest {
        code: code.to_string(),
        as_of: as_of.to_string(),
    }
}

#[tokio::test]
async fn a_code_is_trimmed_and_upper_cased_before_lookup() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let code = app
        .code_lookup
        .get_code(request(" 0521f ", ""))
        .await
        .expect("0521F is in the built-in set")
        .into_inner();

    // Assert
    assert_eq!(code.code, "0521F");
    assert_eq!(code.category(), Category::Ii);
    assert_eq!(code.form(), CodeForm::CategoryIi);
    assert_eq!(code.status(), CodeStatus::Active);
}

#[tokio::test]
async fn an_add_on_code_comes_with_every_field_filled() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let code = app
        .code_lookup
        .get_code(request("64484", "2025-06-01"))
        .await
        .expect("64484 is in the built-in set")
        .into_inner();

    // Assert
    assert_eq!(code.code, "64484");
    assert_eq!(code.category(), Category::I);
    assert_eq!(code.form(), CodeForm::CategoryI);
    assert!(code.add_on);
    assert!(
        code.primary_codes.iter().any(|primary| primary == "64483"),
        "{:?}",
        code.primary_codes
    );
    assert_eq!(code.imaging(), Imaging::FluoroscopyOrCt);
    assert_eq!(code.status(), CodeStatus::Active);
    assert!(code.descriptor.ends_with('.'), "{}", code.descriptor);
    assert!(!code.short_name.is_empty() && code.short_name.chars().count() <= 28);
    assert_eq!(code.section, "Surgery");
    assert!(!code.subsection.is_empty());
    assert!(!code.heading.is_empty());
    assert!(!code.anatomy.is_empty());
    assert!(
        code.synonyms.iter().any(|synonym| synonym == "TFESI"),
        "{:?}",
        code.synonyms
    );
    assert!(code.deletion_date.is_empty());
    assert!(code.replaced_by.is_empty());
}

#[tokio::test]
async fn responses_carry_the_registry_version_header() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let response = app
        .code_lookup
        .get_code(request("64483", ""))
        .await
        .expect("64483 is in the built-in set");

    // Assert
    let version = response
        .metadata()
        .get("cptd-registry-version")
        .expect("the cptd-registry-version header is set")
        .to_str()
        .expect("the header is ASCII");
    assert!(!version.is_empty());
}

#[tokio::test]
async fn a_malformed_code_is_invalid_argument_naming_the_forms() {
    // Arrange
    let mut app = spawn_app().await;

    for input in ["6448", "644833", "W1234", "0521X", "", "   ", "64-83"] {
        // Act
        let status = app
            .code_lookup
            .get_code(request(input, ""))
            .await
            .expect_err("a malformed code is refused");

        // Assert
        let description = assert_invalid_field(&status, "code");
        assert!(description.contains(FORMS_HINT), "{input:?}: {description}");
    }
}

#[tokio::test]
async fn a_well_formed_unknown_code_is_not_found() {
    // Arrange
    let mut app = spawn_app().await;

    for input in ["99999", "J1030", "0001U", "0002M", "9999T"] {
        // Act
        let status = app
            .code_lookup
            .get_code(request(input, ""))
            .await
            .expect_err("an unknown code is not found");

        // Assert
        assert_eq!(status.code(), Code::NotFound, "{input}: {status:?}");
        assert!(status.message().contains(input), "{status:?}");
    }
}

#[tokio::test]
async fn a_deleted_code_is_returned_with_its_status_and_replacements() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let code = app
        .code_lookup
        .get_code(request("62310", "2025-06-01"))
        .await
        .expect("a deleted code is still returned")
        .into_inner();

    // Assert
    assert_eq!(code.status(), CodeStatus::Deleted);
    assert_eq!(code.deletion_date, "2017-01-01");
    assert!(
        code.replaced_by
            .iter()
            .any(|replacement| replacement == "62320"),
        "{:?}",
        code.replaced_by
    );
}

#[tokio::test]
async fn a_deleted_code_asked_about_before_its_deletion_is_active() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let code = app
        .code_lookup
        .get_code(request("62310", "2016-06-01"))
        .await
        .expect("62310 existed in 2016")
        .into_inner();

    // Assert
    assert_eq!(code.status(), CodeStatus::Active);
}

#[tokio::test]
async fn the_last_day_before_deletion_is_active_and_the_deletion_day_is_not() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let day_before = app
        .code_lookup
        .get_code(request("62310", "2016-12-31"))
        .await
        .expect("62310 existed on 2016-12-31")
        .into_inner();
    let deletion_day = app
        .code_lookup
        .get_code(request("62310", "2017-01-01"))
        .await
        .expect("a deleted code is still returned")
        .into_inner();

    // Assert
    assert_eq!(day_before.status(), CodeStatus::Active);
    assert_eq!(deletion_day.status(), CodeStatus::Deleted);
}

#[tokio::test]
async fn a_code_asked_about_before_its_effective_date_is_not_found() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .get_code(request("64466", "2024-06-01"))
        .await
        .expect_err("64466 took effect in 2025");

    // Assert
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("2025-01-01"), "{status:?}");
}

#[tokio::test]
async fn a_code_asked_about_after_its_effective_date_is_found_active() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let code = app
        .code_lookup
        .get_code(request("64466", "2025-06-01"))
        .await
        .expect("64466 is in effect in mid 2025")
        .into_inner();

    // Assert
    assert_eq!(code.status(), CodeStatus::Active);
    assert_eq!(code.effective_date, "2025-01-01");
}

#[tokio::test]
async fn an_impossible_or_loose_as_of_is_invalid_argument() {
    // Arrange
    let mut app = spawn_app().await;

    for as_of in [
        "2025-02-30",
        "yesterday",
        "2025-1-5",
        "20250101",
        " 2025-01-01",
    ] {
        // Act
        let status = app
            .code_lookup
            .get_code(request("64483", as_of))
            .await
            .expect_err("a bad as_of is refused");

        // Assert
        let description = assert_invalid_field(&status, "as_of");
        assert!(
            description.contains("YYYY-MM-DD"),
            "{as_of:?}: {description}"
        );
    }
}

#[tokio::test]
async fn a_malformed_code_and_a_bad_date_are_both_named() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .code_lookup
        .get_code(request("6448", "soon"))
        .await
        .expect_err("both fields are bad");

    // Assert
    assert_invalid_field(&status, "code");
    assert_invalid_field(&status, "as_of");
}
