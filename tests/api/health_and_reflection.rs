//! The standard services: health, and reflection in both protocol versions.

use prost::Message;
use prost_types::FileDescriptorProto;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{TestApp, spawn_app};

const EXPECTED_SERVICES: [&str; 4] = [
    "cpt.v1.CodeLookup",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

#[tokio::test]
async fn health_says_serving_for_the_server_and_for_code_lookup() {
    // Arrange
    let mut app = spawn_app().await;

    for service in ["", "cpt.v1.CodeLookup"] {
        // Act
        let response = app
            .health
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .expect("health answers")
            .into_inner();

        // Assert
        assert_eq!(response.status(), ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn health_of_an_unknown_service_is_not_found() {
    // Arrange
    let mut app = spawn_app().await;

    // Act
    let status = app
        .health
        .check(HealthCheckRequest {
            service: "cpt.v1.NoSuchService".to_string(),
        })
        .await
        .expect_err("no such service");

    // Assert
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

/// Asks the v1 reflection service one question and returns its one answer.
async fn ask_v1(
    app: &TestApp,
    request: v1::server_reflection_request::MessageRequest,
) -> v1::server_reflection_response::MessageResponse {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let question = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::once(question))
        .await
        .expect("reflection v1 answers")
        .into_inner();
    answers
        .next()
        .await
        .expect("one answer")
        .expect("the answer is not an error")
        .message_response
        .expect("the answer has content")
}

/// Asks the v1alpha reflection service one question and returns its one answer.
async fn ask_v1alpha(
    app: &TestApp,
    request: v1alpha::server_reflection_request::MessageRequest,
) -> v1alpha::server_reflection_response::MessageResponse {
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let question = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::once(question))
        .await
        .expect("reflection v1alpha answers")
        .into_inner();
    answers
        .next()
        .await
        .expect("one answer")
        .expect("the answer is not an error")
        .message_response
        .expect("the answer has content")
}

fn assert_lists_every_service(mut listed: Vec<String>) {
    listed.sort();
    for expected in EXPECTED_SERVICES {
        assert!(
            listed.iter().any(|name| name == expected),
            "{expected} missing from {listed:?}"
        );
    }
}

/// Decodes the descriptors of a reflection answer and checks that one of them
/// declares `service` in `package`.
fn assert_declares_service(descriptors: &[Vec<u8>], package: &str, service: &str) {
    let files: Vec<FileDescriptorProto> = descriptors
        .iter()
        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).expect("a file descriptor"))
        .collect();
    let declaring = files
        .iter()
        .find(|file| {
            file.package() == package && file.service.iter().any(|found| found.name() == service)
        })
        .unwrap_or_else(|| {
            let names: Vec<&str> = files.iter().map(|file| file.name()).collect();
            panic!("no descriptor declares {package}.{service}: {names:?}")
        });
    let methods: Vec<&str> = declaring
        .service
        .iter()
        .find(|found| found.name() == service)
        .map(|found| found.method.iter().map(|method| method.name()).collect())
        .unwrap_or_default();
    if service == "CodeLookup" {
        assert_eq!(
            methods,
            [
                "GetCode",
                "BatchGetCodes",
                "ValidateCodes",
                "SearchCodes",
                "ListCodes"
            ]
        );
    }
}

#[tokio::test]
async fn reflection_v1_lists_every_service() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = ask_v1(
        &app,
        v1::server_reflection_request::MessageRequest::ListServices(String::new()),
    )
    .await;

    // Assert
    let v1::server_reflection_response::MessageResponse::ListServicesResponse(services) = answer
    else {
        panic!("expected a list of services, got {answer:?}");
    };
    assert_lists_every_service(
        services
            .service
            .into_iter()
            .map(|service| service.name)
            .collect(),
    );
}

#[tokio::test]
async fn reflection_v1alpha_lists_every_service() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = ask_v1alpha(
        &app,
        v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
    )
    .await;

    // Assert
    let v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(services) =
        answer
    else {
        panic!("expected a list of services, got {answer:?}");
    };
    assert_lists_every_service(
        services
            .service
            .into_iter()
            .map(|service| service.name)
            .collect(),
    );
}

#[tokio::test]
async fn reflection_v1_describes_code_lookup() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = ask_v1(
        &app,
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "cpt.v1.CodeLookup".to_string(),
        ),
    )
    .await;

    // Assert
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) = answer
    else {
        panic!("expected file descriptors, got {answer:?}");
    };
    assert_declares_service(&files.file_descriptor_proto, "cpt.v1", "CodeLookup");
}

#[tokio::test]
async fn reflection_v1alpha_describes_code_lookup() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = ask_v1alpha(
        &app,
        v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "cpt.v1.CodeLookup".to_string(),
        ),
    )
    .await;

    // Assert
    let v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files) =
        answer
    else {
        panic!("expected file descriptors, got {answer:?}");
    };
    assert_declares_service(&files.file_descriptor_proto, "cpt.v1", "CodeLookup");
}

#[tokio::test]
async fn reflection_describes_the_error_details_clients_decode() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let answer = ask_v1(
        &app,
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "google.rpc.BadRequest".to_string(),
        ),
    )
    .await;

    // Assert
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) = answer
    else {
        panic!("expected file descriptors, got {answer:?}");
    };
    let declares_bad_request = files.file_descriptor_proto.iter().any(|bytes| {
        FileDescriptorProto::decode(bytes.as_slice()).is_ok_and(|file| {
            file.package() == "google.rpc"
                && file
                    .message_type
                    .iter()
                    .any(|message| message.name() == "BadRequest")
        })
    });
    assert!(declares_bad_request);
}

#[tokio::test]
async fn reflection_describes_health_through_both_versions() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let through_v1 = ask_v1(
        &app,
        v1::server_reflection_request::MessageRequest::FileContainingSymbol(
            "grpc.health.v1.Health".to_string(),
        ),
    )
    .await;
    let through_v1alpha = ask_v1alpha(
        &app,
        v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "grpc.reflection.v1.ServerReflection".to_string(),
        ),
    )
    .await;

    // Assert
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) = through_v1
    else {
        panic!("expected file descriptors, got {through_v1:?}");
    };
    assert_declares_service(&files.file_descriptor_proto, "grpc.health.v1", "Health");
    let v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files) =
        through_v1alpha
    else {
        panic!("expected file descriptors, got {through_v1alpha:?}");
    };
    assert_declares_service(
        &files.file_descriptor_proto,
        "grpc.reflection.v1",
        "ServerReflection",
    );
}
