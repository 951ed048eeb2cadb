//! Defects 1 and 3: calls that send headers and never a message hold no call
//! place and end at `--message-timeout`; imports that stop sending end at the
//! same timeout and free their import places.

use cptd::{config::Config, pb};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::{
    frame_per_message::grpc_frame,
    helpers::{HANG_GUARD, spawn_app_with},
    hostile::{grpc_status_of, raw_connection, stall_call},
    quality_fixtures::{cancer_visit, import},
};

/// The test configuration with `flags` added.
fn config_with(flags: &[&str]) -> Config {
    use clap::Parser;
    let mut arguments = vec![
        "cptd",
        "--listen",
        "127.0.0.1:0",
        "--in-memory",
        "--request-timeout",
        cptd::config::TEST_REQUEST_TIMEOUT,
    ];
    arguments.extend_from_slice(flags);
    cptd::config::Cli::parse_from(arguments).config
}

#[tokio::test]
async fn two_thousand_calls_that_send_only_headers_leave_health_and_lookups_answering() {
    // Arrange: 2,000 calls over sixteen connections, each stalled after its
    // headers: twice the server's 1,024 call places.
    let mut app = spawn_app_with(config_with(&["--message-timeout", "5m"])).await;
    let mut stalled = Vec::new();
    for _ in 0..16 {
        let mut connection = raw_connection(app.address).await;
        for _ in 0..125 {
            stalled
                .push(stall_call(&mut connection, app.address, "/cpt.v1.CodeLookup/GetCode").await);
        }
        // A call behind them on the same connection is answered: the server
        // has read every stalled call's headers, and has a place for it.
        answered_behind(&mut connection).await;
    }

    // Act
    let health = app
        .health
        .check(HealthCheckRequest::default())
        .await
        .expect("health answers");
    let code = app
        .code_lookup
        .get_code(pb::GetCodeRequest {
            code: "64483".into(),
            as_of: String::new(),
        })
        .await
        .expect("GetCode answers");

    // Assert
    assert_eq!(health.into_inner().status, ServingStatus::Serving as i32);
    assert_eq!(code.into_inner().code, "64483");
    assert_eq!(stalled.len(), 2000);
}

/// Asserts that a health check sent on `connection` after everything already
/// sent on it is answered `OK`.
pub async fn answered_behind(connection: &mut h2::client::SendRequest<prost::bytes::Bytes>) {
    let mut ready = connection.clone().ready().await.expect("a stream slot");
    let request = http::Request::post("/grpc.health.v1.Health/Check")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a valid request");
    let (response, mut body) = ready.send_request(request, false).expect("sent");
    body.send_data(grpc_frame(&HealthCheckRequest::default()), true)
        .expect("sent");
    let status = grpc_status_of(response).await.expect("an answer");
    assert_eq!(status, "0");
}

#[tokio::test]
async fn a_call_whose_message_never_comes_ends_with_deadline_exceeded() {
    // Arrange
    let app = spawn_app_with(config_with(&["--message-timeout", "300ms"])).await;
    let mut connection = raw_connection(app.address).await;

    // Act
    let stalled = stall_call(&mut connection, app.address, "/cpt.v1.CodeLookup/GetCode").await;
    let status = tokio::time::timeout(HANG_GUARD, grpc_status_of(stalled.response))
        .await
        .expect("the server ends the call")
        .expect("an answer, not a reset");

    // Assert: 4 is DEADLINE_EXCEEDED.
    assert_eq!(status, "4");
}

#[tokio::test]
async fn imports_that_stop_sending_end_and_free_their_places() {
    // Arrange: every import place held by an import that sent one encounter
    // and went quiet.
    let app = spawn_app_with(config_with(&[
        "--message-timeout",
        "1s",
        "--max-concurrent-imports",
        "8",
    ]))
    .await;
    let mut connection = raw_connection(app.address).await;
    let mut quiet = Vec::new();
    for index in 0..8 {
        let mut call = stall_call(
            &mut connection,
            app.address,
            "/cpt.v1.QualityMeasures/ImportEncounters",
        )
        .await;
        call.body
            .send_data(
                grpc_frame(&import(cancer_visit(
                    &format!("quiet-{index}"),
                    "99213 1125F",
                ))),
                false,
            )
            .expect("the first message is sent");
        quiet.push(call);
    }

    // Act
    let mut ended = Vec::new();
    for call in quiet {
        let status = tokio::time::timeout(HANG_GUARD, grpc_status_of(call.response))
            .await
            .expect("the server ends the quiet import")
            .expect("an answer, not a reset");
        ended.push(status);
    }
    let mut client = app.quality_measures.clone();
    let next = client
        .import_encounters(tokio_stream::iter(vec![import(cancer_visit(
            "after-1",
            "99213 1125F",
        ))]))
        .await
        .expect("a ninth import runs once the quiet ones ended");

    // Assert
    assert_eq!(
        ended,
        vec!["4".to_string(); 8],
        "DEADLINE_EXCEEDED for each"
    );
    assert_eq!(next.into_inner().accepted, 1);
}
