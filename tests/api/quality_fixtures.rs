//! Encounters for the QualityMeasures tests, built from a few words.

use cptd::pb::{self, quality_measures_client::QualityMeasuresClient};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// A service date safely in the past.
pub const SERVICE_DATE: &str = "2025-03-04";

/// A reported code written `99213` or `0521F-8P` (modifiers after dashes).
pub fn code(text: &str) -> pb::EncounterCode {
    let mut parts = text.split('-');
    pb::EncounterCode {
        code: parts.next().unwrap_or_default().to_string(),
        modifiers: parts.map(str::to_string).collect(),
        units: 1,
    }
}

/// The billing TIN the tests' encounters carry.
pub const TIN: &str = "123456789";

/// An office visit of a patient with breast cancer reporting `codes` (space
/// separated), by provider `npi-1` of [`TIN`] on [`SERVICE_DATE`]; each
/// encounter id is a patient of its own.
pub fn cancer_visit(encounter_id: &str, codes: &str) -> pb::Encounter {
    pb::Encounter {
        encounter_id: encounter_id.to_string(),
        patient_id: format!("patient-of-{encounter_id}"),
        provider_id: "npi-1".to_string(),
        tin: TIN.to_string(),
        service_date: SERVICE_DATE.to_string(),
        place_of_service: "11".to_string(),
        patient_age: Some(61),
        patient_sex: "F".to_string(),
        codes: codes.split_whitespace().map(code).collect(),
        diagnoses: vec!["C50.911".to_string()],
    }
}

/// A request to record `encounter`.
pub fn record(encounter: pb::Encounter) -> pb::RecordEncounterRequest {
    pb::RecordEncounterRequest {
        encounter: Some(encounter),
        replace: false,
    }
}

/// A request to import `encounter`.
pub fn import(encounter: pb::Encounter) -> pb::ImportEncountersRequest {
    pb::ImportEncountersRequest {
        encounter: Some(encounter),
        replace: false,
    }
}

/// The outcome of `measure_id` (its first stratum) in a response.
pub fn outcome_of(response: &pb::RecordEncounterResponse, measure_id: &str) -> pb::Outcome {
    let found = response
        .outcomes
        .iter()
        .find(|outcome| outcome.measure_id == measure_id)
        .unwrap_or_else(|| panic!("no outcome for {measure_id}: {response:?}"));
    found.outcome()
}

/// A performance request for `measure_id` over the days around [`SERVICE_DATE`].
pub fn performance(measure_id: &str) -> pb::GetPerformanceRequest {
    pb::GetPerformanceRequest {
        measure_id: measure_id.to_string(),
        provider_id: String::new(),
        period_start: "2025-01-01".to_string(),
        period_end: "2025-12-31".to_string(),
        tin: String::new(),
    }
}

/// The whole-year report of `measure_id` (see [`performance`]).
pub async fn performance_report(
    client: &mut QualityMeasuresClient<Channel>,
    measure_id: &str,
) -> pb::PerformanceReport {
    client
        .get_performance(performance(measure_id))
        .await
        .expect("the report is answered")
        .into_inner()
}

/// Imports `messages` in one stream and answers its summary.
pub async fn import_all(
    client: &mut QualityMeasuresClient<Channel>,
    messages: Vec<pb::ImportEncountersRequest>,
) -> pb::ImportEncountersResponse {
    client
        .import_encounters(tokio_stream::iter(messages))
        .await
        .expect("the import answers a summary")
        .into_inner()
}

/// An import call in flight: its answer once the stream ends or the server goes.
pub type ImportCall =
    tokio::task::JoinHandle<Result<tonic::Response<pb::ImportEncountersResponse>, tonic::Status>>;

/// An import left open on `client`: what is sent on the sender streams on.
pub fn open_import(
    client: &QualityMeasuresClient<Channel>,
) -> (
    tokio::sync::mpsc::Sender<pb::ImportEncountersRequest>,
    ImportCall,
) {
    let (sender, receiver) = tokio::sync::mpsc::channel(256);
    let mut importing = client.clone();
    let call = tokio::spawn(async move {
        importing
            .import_encounters(ReceiverStream::new(receiver))
            .await
    });
    (sender, call)
}
