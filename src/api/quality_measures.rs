//! The `cpt.v1.QualityMeasures` service: parse, judge under the measures, store,
//! convert back.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use jiff::civil::Date;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status, Streaming};

use super::{
    code_lookup::name_registry,
    error::Violations,
    page_token::{self, PageStart},
    quality_import,
    quality_requests::{
        EncounterRules, GetMeasure, GetPerformance, LIST_MEASURES_FINGERPRINT, ListMeasures,
        ParsedEncounter, parse_encounter,
    },
};
use crate::{
    calendar,
    codes::CodeRegistry,
    measures::MeasureSet,
    pb::{self, quality_measures_server::QualityMeasures},
    store::{EncounterStore, Recorded, Submission},
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
    strict_codes: bool,
}

impl QualityMeasuresService {
    /// A service over the shared registry, measures and store, running at
    /// most `max_concurrent_imports` imports at once. With `strict_codes`, a
    /// well-formed code the registry does not hold is an error rather than a
    /// warning.
    pub fn new(
        registry: Arc<ArcSwap<CodeRegistry>>,
        measures: Arc<MeasureSet>,
        store: Arc<EncounterStore>,
        max_concurrent_imports: usize,
        strict_codes: bool,
    ) -> Result<QualityMeasuresService, rayon::ThreadPoolBuildError> {
        Ok(QualityMeasuresService {
            registry,
            measures,
            store,
            import_threads: Arc::new(super::import_threads::pool()?),
            imports: Arc::new(Semaphore::new(max_concurrent_imports)),
            max_concurrent_imports,
            strict_codes,
        })
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
        let request = request.into_inner();
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
        let verdicts = self.measures.evaluate(&encounter.claim);
        let submission = Submission {
            encounter,
            replace,
            outcomes: verdicts.iter().map(|verdict| verdict.outcome).collect(),
        };
        let outcomes = verdicts.iter().map(pb::MeasureOutcome::from).collect();
        let recorded = self.store.record(vec![submission]).await?;
        let duplicate = match recorded.first() {
            Some(Recorded::Stored | Recorded::Replaced) => false,
            Some(Recorded::Duplicate) => true,
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

    #[tracing::instrument(level = "debug", skip_all)]
    async fn import_encounters(
        &self,
        request: Request<Streaming<pb::ImportEncountersRequest>>,
    ) -> Result<Response<pb::ImportEncountersResponse>, Status> {
        let Ok(_running) = self.imports.clone().try_acquire_owned() else {
            return Err(Status::resource_exhausted(format!(
                "at most {} imports run at once; none of this one was read, so send it \
                 again once another has finished",
                self.max_concurrent_imports
            )));
        };
        let summary = quality_import::import(self, request.into_inner()).await?;
        Ok(Response::new(summary))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_performance(
        &self,
        request: Request<pb::GetPerformanceRequest>,
    ) -> Result<Response<pb::PerformanceReport>, Status> {
        let request = GetPerformance::try_from(request.into_inner())?;
        let measure = self.measures.get(&request.measure_id).ok_or_else(|| {
            Status::not_found(format!("no measure {:?} is in force", request.measure_id))
        })?;
        let report = self.store.report(
            measure,
            request.provider_id.as_deref(),
            request.period_start,
            request.period_end,
        );
        Ok(Response::new(pb::PerformanceReport::from(&report)))
    }
}
