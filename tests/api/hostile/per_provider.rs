//! Defect 4: what callers store does not grow the server's memory. The
//! totals per provider live in the database, so a restart rebuilds nothing:
//! the store opens counting nothing again, and reports per provider are
//! answered from the database as they were before.

use cptd::pb::{self, quality_measures_client::QualityMeasuresClient};

use crate::{
    binary::ServerProcess,
    helpers::connect,
    quality_fixtures::{cancer_visit, import, import_all, performance},
};

const PROVIDERS: usize = 5_000;

/// The report of `pain-intensity-quantified` for `provider_id`.
async fn report_of(address: std::net::SocketAddr, provider_id: &str) -> pb::PerformanceReport {
    let mut client = QualityMeasuresClient::new(connect(address).await);
    let mut request = performance("pain-intensity-quantified");
    request.provider_id = provider_id.to_string();
    client
        .get_performance(request)
        .await
        .expect("the report is answered")
        .into_inner()
}

#[test]
fn thousands_of_providers_are_counted_in_the_database_and_nothing_is_rebuilt_at_start() {
    // Arrange: one encounter for each of 5,000 providers.
    let data = tempfile::tempdir().unwrap();
    let mut first = ServerProcess::start_storing_in(data.path(), &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let address = first.address;
    let summary = runtime.block_on(async move {
        let mut client = QualityMeasuresClient::new(connect(address).await);
        let messages = (0..PROVIDERS)
            .map(|index| {
                let mut encounter = cancer_visit(&format!("provider-{index}"), "99213 1125F");
                encounter.provider_id = format!("provider-{index}");
                import(encounter)
            })
            .collect();
        import_all(&mut client, messages).await
    });
    assert_eq!(summary.accepted as usize, PROVIDERS);
    first.signal("TERM");
    assert!(first.wait().success());

    // Act
    let mut second = ServerProcess::start_storing_in(data.path(), &[]);
    let address = second.address;
    let report = runtime.block_on(report_of(address, "provider-4999"));

    // Assert
    let opened = second.wait_for_log(|line| line.contains("encounter store opened"));
    let opened: serde_json::Value = serde_json::from_str(&opened).unwrap();
    assert_eq!(opened["recounted"].as_u64(), Some(0), "{opened}");
    assert_eq!(report.eligible_population, 1);
    assert_eq!(report.met, 1);
}
