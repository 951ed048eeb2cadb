//! Defect 7: bad bytes and odd values get the answer the API promises.

use cptd::pb::SearchCodesRequest;
use prost::bytes::{BufMut, Bytes, BytesMut};
use tonic::Code;

use crate::{
    helpers::{HANG_GUARD, assert_invalid_field, spawn_app},
    hostile::{grpc_status_of, raw_connection},
    quality_fixtures::{cancer_visit, record},
};

/// `payload` framed as one uncompressed gRPC message.
fn framed(payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(payload.len()).expect("a small payload"));
    frame.put_slice(payload);
    frame.freeze()
}

#[tokio::test]
async fn a_unary_request_that_is_not_valid_protobuf_is_invalid_argument() {
    let app = spawn_app().await;
    // Field 1 (`code`) as a string of bytes that are not UTF-8; then field 1
    // with the varint wire type where a string is expected.
    let not_utf8: &[u8] = &[0x0a, 0x02, 0xff, 0xfe];
    let wrong_wire_type: &[u8] = &[0x08, 0x01];
    for payload in [not_utf8, wrong_wire_type] {
        let mut connection = raw_connection(app.address).await;
        let mut ready = connection.clone().ready().await.expect("a stream slot");
        let request =
            http::Request::post(format!("http://{}/cpt.v1.CodeLookup/GetCode", app.address))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .expect("a valid request");
        let (response, mut body) = ready.send_request(request, false).expect("sent");
        body.send_data(framed(payload), true).expect("sent");
        connection = ready;

        let status = tokio::time::timeout(HANG_GUARD, grpc_status_of(response))
            .await
            .expect("an answer")
            .expect("an answer, not a reset");

        // 3 is INVALID_ARGUMENT; 13, INTERNAL, would page an on-call engineer.
        assert_eq!(status, "3", "{payload:?}");
        drop(connection);
    }
}

#[tokio::test]
async fn a_search_of_punctuation_or_an_emoji_finds_nothing() {
    let mut app = spawn_app().await;
    for query in ["?!", "\u{1F600}", "..."] {
        let answer = app
            .code_lookup
            .search_codes(SearchCodesRequest {
                query: query.to_string(),
                ..SearchCodesRequest::default()
            })
            .await
            .expect("a search answers")
            .into_inner();

        assert_eq!(answer.total_size, 0, "{query:?}");
        assert!(answer.results.is_empty(), "{query:?}");
    }
}

#[tokio::test]
async fn a_service_date_before_cpt_existed_is_refused() {
    let mut app = spawn_app().await;
    let mut encounter = cancer_visit("ancient-1", "99213 1125F");
    encounter.service_date = "0001-01-01".into();

    let status = app
        .quality_measures
        .record_encounter(record(encounter))
        .await
        .unwrap_err();

    let reason = assert_invalid_field(&status, "encounter.service_date");
    assert!(reason.contains("1966-01-01"), "{reason}");
}

#[tokio::test]
async fn a_patient_id_with_control_characters_is_refused_without_echoing_it() {
    let mut app = spawn_app().await;
    let mut encounter = cancer_visit("control-1", "99213 1125F");
    encounter.patient_id = "MRN\u{0}-SECRET\n42".into();

    let status = app
        .quality_measures
        .record_encounter(record(encounter))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    let reason = assert_invalid_field(&status, "encounter.patient_id");
    assert!(reason.contains("control characters"), "{reason}");
    assert!(!format!("{status:?}").contains("SECRET"), "{status:?}");
}
