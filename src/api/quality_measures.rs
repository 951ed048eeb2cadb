//! The `cpt.v1.QualityMeasures` service: parse, judge under the measures, store,
//! convert back.

use std::{sync::Arc, time::Duration};

use arc_swap::{ArcSwap, Guard};
use jiff::civil::Date;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};

use super::{
    code_lookup::name_registry,
    error::Violations,
    page_token::{self, PageStart},
    quality_convert::care_gap_message,
    quality_import::{self, sent_id},
    quality_requests::{
        EncounterId, EncounterRules, ExportMeasurementSet, GetMeasure, GetPerformance,
        LIST_MEASURES_FINGERPRINT, ListCareGaps, ListMeasures, ParsedEncounter, parse_encounter,
    },
};
use crate::{
    access::CallerName,
    calendar,
    codes::CodeRegistry,
    measures::{Measure, MeasureSet},
    pb::{self, quality_measures_server::QualityMeasures},
    store::{AuditEntry, EncounterStore, Recorded, StoreError, Submission, Voided},
};

/// Serves `QualityMeasures` over the measures in force, the current code
/// registry (for the recording rules) and the encounter store.
#[derive(Debug, Clone)]
pub struct QualityMeasuresService {
    registry: Arc<ArcSwap<CodeRegistry>>,
    measures: Arc<MeasureSet>,
    store: Arc<EncounterStore>,
    /// One permit an import running.
    imports: Arc<Semaphore>,
    /// Where imports are prepared.
    import_threads: Arc<rayon::ThreadPool>,
    max_concurrent_imports: usize,
    /// Longest wait for an import's next message.
    import_message_timeout: Duration,
    strict_codes: bool,
}

/// What bounds the imports of a [`QualityMeasuresService`].
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Imports running at once.
    pub max_concurrent: usize,
    /// Longest wait for an import's next message; a client silent for longer
    /// is answered `DEADLINE_EXCEEDED`, and its import's place is freed.
    pub message_timeout: Duration,
}

impl QualityMeasuresService {
    /// A service over the shared registry, measures and store, running
    /// imports within `imports`. With `strict_codes`, a well-formed code the
    /// registry does not hold is an error rather than a warning.
    pub fn new(
        registry: Arc<ArcSwap<CodeRegistry>>,
        measures: Arc<MeasureSet>,
        store: Arc<EncounterStore>,
        imports: ImportLimits,
        strict_codes: bool,
    ) -> Result<QualityMeasuresService, rayon::ThreadPoolBuildError> {
        Ok(QualityMeasuresService {
            registry,
            measures,
            store,
            import_threads: Arc::new(super::import_threads::pool()?),
            imports: Arc::new(Semaphore::new(imports.max_concurrent)),
            max_concurrent_imports: imports.max_concurrent,
            import_message_timeout: imports.message_timeout,
            strict_codes,
        })
    }

    /// Longest wait for an import's next message.
    pub(super) fn import_message_timeout(&self) -> Duration {
        self.import_message_timeout
    }

    /// The measure with `id`, or `NOT_FOUND`.
    fn measure(&self, id: &str) -> Result<Arc<Measure>, Status> {
        self.measures
            .get(id)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no measure {id:?} is in force")))
    }

    /// The code set as it stands now, for parsing encounters against.
    pub(super) fn registry(&self) -> Guard<Arc<CodeRegistry>> {
        self.registry.load()
    }

    /// Parses one encounter against `registry`; service dates after `today`
    /// are refused.
    pub(super) fn parse(
        &self,
        registry: &CodeRegistry,
        encounter: Option<&pb::Encounter>,
        replace: bool,
        today: Date,
    ) -> Result<ParsedEncounter, Violations> {
        let rules = EncounterRules {
            registry,
            strict_codes: self.strict_codes,
            today,
        };
        parse_encounter(encounter, replace, &rules)
    }

    pub(super) fn import_threads(&self) -> &rayon::ThreadPool {
        &self.import_threads
    }

    pub(super) fn store(&self) -> &EncounterStore {
        &self.store
    }

    pub(super) fn measures(&self) -> &MeasureSet {
        &self.measures
    }
}

/// What a caller is told when an encounter id belongs to a voided encounter.
pub(super) fn voided_message(encounter_id: &str) -> String {
    format!(
        "encounter {encounter_id:?} was recorded and then voided; set replace to record it again"
    )
}

/// What a caller is told when an encounter id is taken by different content.
pub(super) fn conflict_message(encounter_id: &str) -> String {
    format!(
        "encounter {encounter_id:?} is already recorded with different content; \
         set replace to record this version in its place"
    )
}

#[tonic::async_trait]
impl QualityMeasures for QualityMeasuresService {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_measures(
        &self,
        request: Request<pb::ListMeasuresRequest>,
    ) -> Result<Response<pb::ListMeasuresResponse>, Status> {
        let request = ListMeasures::try_from(request.into_inner())?;
        let all = self.measures.measures();
        let end = request
            .offset
            .saturating_add(request.page_size)
            .min(all.len());
        let page = all.get(request.offset..end).unwrap_or_default();
        let next_page_token = if end < all.len() {
            page_token::encode(PageStart::Offset(end), LIST_MEASURES_FINGERPRINT)
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListMeasuresResponse {
            measures: page
                .iter()
                .map(|measure| pb::Measure::from(&**measure))
                .collect(),
            next_page_token,
            total_size: i32::try_from(all.len()).unwrap_or(i32::MAX),
        }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_measure(
        &self,
        request: Request<pb::GetMeasureRequest>,
    ) -> Result<Response<pb::Measure>, Status> {
        let request = GetMeasure::try_from(request.into_inner())?;
        let measure = self.measures.get(&request.measure_id).ok_or_else(|| {
            Status::not_found(format!("no measure {:?} is in force", request.measure_id))
        })?;
        Ok(Response::new(pb::Measure::from(&**measure)))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_encounter(
        &self,
        request: Request<pb::RecordEncounterRequest>,
    ) -> Result<Response<pb::RecordEncounterResponse>, Status> {
        let call = AuditedCall::new(
            &request,
            "RecordEncounter",
            sent_id(request.get_ref().encounter.as_ref()),
        );
        let result = self.record(request.into_inner()).await;
        let duplicate = matches!(&result, Ok(response) if response.get_ref().duplicate);
        self.audited(call, result, if duplicate { " duplicate" } else { "" })
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_encounters(
        &self,
        request: Request<Streaming<pb::ImportEncountersRequest>>,
    ) -> Result<Response<pb::ImportEncountersResponse>, Status> {
        let mut call = AuditedCall::new(&request, "ImportEncounters", String::new());
        let Ok(_running) = self.imports.clone().try_acquire_owned() else {
            let refused = Err(Status::resource_exhausted(format!(
                "at most {} imports run at once; none of this one was read, so send it \
                 again once another has finished",
                self.max_concurrent_imports
            )));
            return self.audited(call, refused, "").await;
        };
        let _gauge = crate::metrics::import_running();
        let (result, sent_ids) = quality_import::import(self, request.into_inner()).await;
        call.subject = sent_ids.join(",");
        self.audited(call, result.map(Response::new), "").await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_performance(
        &self,
        request: Request<pb::GetPerformanceRequest>,
    ) -> Result<Response<pb::PerformanceReport>, Status> {
        let call = AuditedCall::query(&request, "GetPerformance");
        let result = self.performance(request.into_inner()).await;
        self.audited(call, result, "").await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn void_encounter(
        &self,
        request: Request<pb::VoidEncounterRequest>,
    ) -> Result<Response<pb::VoidEncounterResponse>, Status> {
        let call = AuditedCall::query(&request, "VoidEncounter");
        let result = self.void(request.into_inner()).await;
        let already = matches!(&result, Ok(response) if response.get_ref().already_voided);
        self.audited(call, result, if already { " already voided" } else { "" })
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_encounter(
        &self,
        request: Request<pb::GetEncounterRequest>,
    ) -> Result<Response<pb::StoredEncounter>, Status> {
        let call = AuditedCall::query(&request, "GetEncounter");
        let result = self.stored_encounter(request.into_inner()).await;
        self.audited(call, result, "").await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_care_gaps(
        &self,
        request: Request<pb::ListCareGapsRequest>,
    ) -> Result<Response<pb::ListCareGapsResponse>, Status> {
        let call = AuditedCall::query(&request, "ListCareGaps");
        let result = self.care_gaps(request.into_inner()).await;
        self.audited(call, result, "").await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn export_measurement_set(
        &self,
        request: Request<pb::ExportMeasurementSetRequest>,
    ) -> Result<Response<pb::ExportMeasurementSetResponse>, Status> {
        let call = AuditedCall::query(&request, "ExportMeasurementSet");
        let result = self.export(request.into_inner()).await;
        self.audited(call, result, "").await
    }
}

/// The calls that read or write encounter data, as the trait's methods call
/// them once their audit record is begun.
impl QualityMeasuresService {
    async fn record(
        &self,
        request: pb::RecordEncounterRequest,
    ) -> Result<Response<pb::RecordEncounterResponse>, Status> {
        // Parsed against one snapshot, whose version the answer names; the
        // snapshot itself is let go before the wait for the disk.
        let (parsed, registry_version) = {
            let registry = self.registry();
            let parsed = self
                .parse(
                    &registry,
                    request.encounter.as_ref(),
                    request.replace,
                    calendar::today(),
                )
                .map_err(|violations| violations.into_status(tonic::Code::InvalidArgument))?;
            (parsed, registry.version().clone())
        };
        let ParsedEncounter {
            encounter,
            replace,
            warnings,
        } = parsed;
        let encounter_id = encounter.encounter_id.clone();
        let judged = self.measures.judge(&encounter.claim);
        let outcomes = judged
            .iter()
            .map(|judged| pb::MeasureOutcome::from(&judged.verdict()))
            .collect();
        let submission = Submission {
            encounter,
            replace,
            judged,
        };
        let recorded = self.store.record(vec![submission]).await?;
        let duplicate = match recorded.first() {
            Some(Recorded::Stored | Recorded::Replaced) => false,
            Some(Recorded::Duplicate) => true,
            Some(Recorded::Voided) => {
                return Err(Status::already_exists(voided_message(&encounter_id)));
            }
            Some(Recorded::Conflict) | None => {
                return Err(Status::already_exists(conflict_message(&encounter_id)));
            }
        };
        let mut response = Response::new(pb::RecordEncounterResponse {
            encounter_id,
            outcomes,
            duplicate,
            warnings,
        });
        // Which codes were known, and so which warnings were given, depends on
        // the code set.
        name_registry(&mut response, &registry_version);
        Ok(response)
    }

    async fn performance(
        &self,
        request: pb::GetPerformanceRequest,
    ) -> Result<Response<pb::PerformanceReport>, Status> {
        let request = GetPerformance::try_from(request)?;
        let measure = self.measure(&request.measure_id)?;
        let report = self
            .store
            .report(measure, request.providers, request.period)
            .await?;
        Ok(Response::new(pb::PerformanceReport::from(&report)))
    }

    async fn void(
        &self,
        request: pb::VoidEncounterRequest,
    ) -> Result<Response<pb::VoidEncounterResponse>, Status> {
        let EncounterId(encounter_id) = EncounterId::try_from(request)?;
        let already_voided = match self.store.void(&encounter_id).await? {
            Voided::Voided => false,
            Voided::AlreadyVoided => true,
            Voided::NotFound => return Err(no_encounter(&encounter_id)),
        };
        Ok(Response::new(pb::VoidEncounterResponse {
            encounter_id,
            already_voided,
        }))
    }

    async fn stored_encounter(
        &self,
        request: pb::GetEncounterRequest,
    ) -> Result<Response<pb::StoredEncounter>, Status> {
        let EncounterId(encounter_id) = EncounterId::try_from(request)?;
        let stored = self
            .store
            .encounter(&encounter_id)
            .await?
            .ok_or_else(|| no_encounter(&encounter_id))?;
        Ok(Response::new(pb::StoredEncounter::from(&stored)))
    }

    async fn care_gaps(
        &self,
        request: pb::ListCareGapsRequest,
    ) -> Result<Response<pb::ListCareGapsResponse>, Status> {
        let request = ListCareGaps::try_from(request)?;
        let measure = self.measure(&request.measure_id)?;
        let page = self
            .store
            .care_gaps(
                measure.clone(),
                request.providers,
                request.period,
                request.offset,
                request.page_size,
            )
            .await?;
        let next_page_token = if page.more {
            let next = request.offset + page.gaps.len();
            page_token::encode(PageStart::Offset(next), request.fingerprint)
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListCareGapsResponse {
            gaps: page
                .gaps
                .iter()
                .map(|gap| care_gap_message(&measure, gap))
                .collect(),
            next_page_token,
            total_size: i32::try_from(page.total).unwrap_or(i32::MAX),
        }))
    }

    async fn export(
        &self,
        request: pb::ExportMeasurementSetRequest,
    ) -> Result<Response<pb::ExportMeasurementSetResponse>, Status> {
        let request = ExportMeasurementSet::try_from(request)?;
        let set = self
            .store
            .measurement_set(&request.tin, &request.npi, request.year)
            .await?;
        let measurements = set["measurements"].as_array().map_or(0, Vec::len);
        Ok(Response::new(pb::ExportMeasurementSetResponse {
            measurement_set_json: set.to_string(),
            measurements: i32::try_from(measurements).unwrap_or(i32::MAX),
        }))
    }
}

/// The audit record of one call, begun before the request is taken apart.
struct AuditedCall {
    caller: Option<String>,
    method: &'static str,
    subject: String,
}

impl AuditedCall {
    fn new<T>(request: &Request<T>, method: &'static str, subject: String) -> AuditedCall {
        let caller = request
            .extensions()
            .get::<CallerName>()
            .and_then(|name| name.0.as_ref().map(|caller| caller.name.clone()));
        AuditedCall {
            caller,
            method,
            subject,
        }
    }

    /// A call whose request holds no patient data: its subject is the
    /// request as sent (cut to a bounded length).
    fn query<T: std::fmt::Debug>(request: &Request<T>, method: &'static str) -> AuditedCall {
        let mut subject = format!("{:?}", request.get_ref());
        if let Some((end, _)) = subject.char_indices().nth(MAX_QUERY_SUBJECT_CHARS) {
            subject.truncate(end);
        }
        AuditedCall::new(request, method, subject)
    }
}

/// Longest query an audit record keeps.
const MAX_QUERY_SUBJECT_CHARS: usize = 2_000;

impl QualityMeasuresService {
    /// Writes the call's audit record, then answers: a call whose record
    /// cannot be made durable is answered `UNAVAILABLE`, never with the data.
    async fn audited<T>(
        &self,
        call: AuditedCall,
        result: Result<Response<T>, Status>,
        note: &str,
    ) -> Result<Response<T>, Status> {
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        let entry = AuditEntry {
            caller: call.caller,
            method: call.method.to_string(),
            subject: call.subject,
            outcome: format!("{code:?}{note}"),
        };
        let Err(error) = self.store.audit(vec![entry]).await else {
            return result;
        };
        tracing::error!(%error, method = call.method, "the audit record was not written");
        // A call that failed keeps its own answer; one that succeeded is
        // refused, since its data may not leave unaudited. A write it made
        // stands, and resending it is safe.
        result?;
        Err(match error {
            StoreError::NoRoom => Status::resource_exhausted(
                "the server's disk is full, so this call's audit record cannot be written and \
                 its answer is withheld; retry once space is freed (retrying is safe)",
            ),
            StoreError::Closed => Status::unavailable("the server is shutting down; retry"),
            _ => Status::unavailable(
                "the audit trail cannot be written just now, so the answer is withheld; retry \
                 (retrying is safe)",
            ),
        })
    }
}

fn no_encounter(encounter_id: &str) -> Status {
    Status::not_found(format!("no encounter {encounter_id:?} is recorded"))
}
