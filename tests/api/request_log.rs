//! The request log: one line per call with its method, status and latency,
//! also for calls the server refuses before they run and calls cut off by
//! their time limit.

use cptd::pb::{
    self, code_lookup_client::CodeLookupClient, quality_measures_client::QualityMeasuresClient,
};

use crate::{
    binary::{ServerProcess, json_field},
    helpers::connect,
};

fn logged(server: &mut ServerProcess, method: &str, status: &str) -> String {
    server.wait_for_log(|line| {
        json_field(line, "method").as_deref() == Some(method)
            && json_field(line, "status").as_deref() == Some(status)
    })
}

#[tokio::test]
async fn shed_and_timed_out_calls_are_logged_with_the_status_their_callers_get() {
    let mut server =
        ServerProcess::start(&["--max-concurrent-calls", "1", "--request-timeout", "500ms"]);
    let channel = connect(server.address).await;
    // An import that sends one encounter and then nothing holds the one call
    // place until its time runs out.
    let (sender, receiver) = tokio::sync::mpsc::channel::<pb::ImportEncountersRequest>(1);
    sender
        .send(crate::quality_fixtures::import(
            crate::quality_fixtures::cancer_visit("held-1", "99213 1125F"),
        ))
        .await
        .expect("the stream takes its first message");
    let mut importing = QualityMeasuresClient::new(channel.clone());
    let held = tokio::spawn(async move {
        importing
            .import_encounters(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let shed = CodeLookupClient::new(channel)
        .get_code(pb::GetCodeRequest {
            code: "64483".into(),
            as_of: String::new(),
        })
        .await
        .unwrap_err();
    let cut_off = held.await.expect("joined").unwrap_err();

    assert_eq!(shed.code(), tonic::Code::ResourceExhausted);
    assert_eq!(cut_off.code(), tonic::Code::Cancelled, "{cut_off:?}");
    logged(
        &mut server,
        "/cpt.v1.CodeLookup/GetCode",
        "RESOURCE_EXHAUSTED",
    );
    logged(
        &mut server,
        "/cpt.v1.QualityMeasures/ImportEncounters",
        "CANCELLED",
    );
}
