//! The metrics listener, scraped with a real HTTP client and parsed.

use std::collections::BTreeMap;

use cptd::pb::{GetCodeRequest, code_lookup_client::CodeLookupClient};
use http_body_util::{BodyExt, Empty};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use crate::{
    binary::{ServerProcess, json_field},
    helpers::connect,
    quality_fixtures::{cancer_visit, record},
};

/// One sample of the text format: its labels and value, by metric name.
pub type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

/// The text of `http://ADDRESS/metrics`, fetched with a real HTTP client.
pub async fn scrape(address: &str) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<tonic::codegen::Bytes>>();
    let response = client
        .get(format!("http://{address}/metrics").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

pub fn parse(text: &str) -> Samples {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_string(), value.trim_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value.parse().expect("a number"))
        })
        .collect()
}

pub fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(found, found_labels, _)| {
            found == name
                && labels
                    .iter()
                    .all(|(key, value)| found_labels.get(*key).map(String::as_str) == Some(value))
        })
        .map(|(_, _, value)| *value)
}

#[tokio::test]
async fn the_metrics_endpoint_counts_calls_by_method_and_status_without_request_data() {
    let mut server = ServerProcess::start(&["--metrics-listen", "127.0.0.1:0"]);
    let listening = server.wait_for_log(|line| line.contains("metrics listening"));
    let metrics_address = json_field(&listening, "address").unwrap();

    let channel = connect(server.address).await;
    let mut lookup = CodeLookupClient::new(channel.clone());
    for code in ["64483", "64483", "64483", "99999"] {
        let _ = lookup
            .get_code(GetCodeRequest {
                code: code.into(),
                ..Default::default()
            })
            .await;
    }
    cptd::pb::quality_measures_client::QualityMeasuresClient::new(channel)
        .record_encounter(record(cancer_visit("metrics-1", "99213 0521F")))
        .await
        .unwrap();

    let text = scrape(&metrics_address).await;
    let samples = parse(&text);

    let get_code = "/cpt.v1.CodeLookup/GetCode";
    assert_eq!(
        value(
            &samples,
            "cptd_calls_total",
            &[("method", get_code), ("code", "OK")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "cptd_calls_total",
            &[("method", get_code), ("code", "NOT_FOUND")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "cptd_call_duration_seconds_count",
            &[("method", get_code)]
        ),
        Some(4.0)
    );
    assert_eq!(
        value(&samples, "cptd_encounters_stored_total", &[]),
        Some(1.0)
    );
    assert!(value(&samples, "cptd_store_commit_seconds_count", &[]).unwrap() >= 1.0);
    assert_eq!(value(&samples, "cptd_imports_running", &[]), Some(0.0));
    assert_eq!(value(&samples, "cptd_calls_shed_total", &[]), Some(0.0));
    assert_eq!(
        value(&samples, "cptd_data_version_info", &[("data", "codes")]),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "cptd_data_version_info", &[("data", "measures")]),
        Some(1.0)
    );
    assert!(
        !text.contains("metrics-1") && !text.contains("patient-of"),
        "{text}"
    );
}
