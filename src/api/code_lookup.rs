//! The `cpt.v1.CodeLookup` service: parse, ask the registry, convert back.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use tonic::{Request, Response, Status};

use super::{
    code_requests::{BatchGetCodes, GetCode, ListCodes, SearchCodes, ValidateCodes},
    convert::{JudgedInput, code_message, search_result},
    method_route::EncodedMessage,
    page_token::{self, PageStart},
    snapshot_answers::SnapshotAnswers,
};
use crate::{
    codes::{CodeRegistry, SearchQuery},
    pb::{self, code_lookup_server::CodeLookup},
};

/// Serves `CodeLookup` from whichever registry snapshot is current when a call
/// arrives; a call keeps that snapshot to its end, so a reload never mixes two.
#[derive(Debug, Clone)]
pub struct CodeLookupService {
    registry: Arc<ArcSwap<CodeRegistry>>,
    answers: Arc<ArcSwap<SnapshotAnswers>>,
}

impl CodeLookupService {
    /// A service over the shared, swappable registry.
    pub fn new(registry: Arc<ArcSwap<CodeRegistry>>) -> CodeLookupService {
        let answers = SnapshotAnswers::new(&registry.load());
        CodeLookupService {
            registry,
            answers: Arc::new(ArcSwap::from_pointee(answers)),
        }
    }

    /// The current snapshot with its kept answers; after a reload, the first
    /// call to see the new registry starts its memo.
    fn snapshot(&self) -> Snapshot {
        let registry = self.registry.load();
        let answers = self.answers.load();
        if answers.belongs_to(&registry) {
            return Snapshot { registry, answers };
        }
        let fresh = Arc::new(SnapshotAnswers::new(&registry));
        self.answers.store(Arc::clone(&fresh));
        Snapshot {
            registry,
            answers: Guard::from_inner(fresh),
        }
    }

    /// `GetCode` with its answer already encoded, as `CodeLookupRoutes` serves it.
    pub(super) fn get_code_encoded(
        &self,
        request: pb::GetCodeRequest,
    ) -> Result<Response<EncodedMessage>, Status> {
        let request = GetCode::try_from(request)?;
        let snapshot = self.snapshot();
        let found = snapshot.registry.get(request.code, request.as_of)?;
        let encoded = snapshot.answers.encoded_code(found);
        Ok(snapshot.answers.respond(EncodedMessage(encoded)))
    }
}

/// The registry a call reads, held for the whole call, and its memo.
struct Snapshot {
    registry: Guard<Arc<CodeRegistry>>,
    answers: Guard<Arc<SnapshotAnswers>>,
}

fn total_size(count: usize) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// From this many indexed code versions on, a broad search takes milliseconds
/// and runs on the blocking pool rather than holding a tokio worker; below it a
/// search takes microseconds and a thread hand-off would cost more than it does.
const BLOCKING_SEARCH_DOCUMENTS: usize = 10_000;

fn search_response(
    registry: &CodeRegistry,
    answers: &SnapshotAnswers,
    request: &SearchCodes,
) -> Response<pb::SearchCodesResponse> {
    let query = SearchQuery {
        text: &request.query,
        filter: &request.filter,
        as_of: request.as_of,
    };
    let page = registry.search_page(&query, request.offset, request.page_size);
    let page_end = request.offset.saturating_add(request.page_size);
    let next_page_token = if page_end < page.total {
        page_token::encode(PageStart::Offset(page_end), request.fingerprint)
    } else {
        String::new()
    };
    let response = pb::SearchCodesResponse {
        total_size: total_size(page.total),
        results: page
            .hits
            .into_iter()
            .map(|explained| search_result(explained, request.view))
            .collect(),
        next_page_token,
    };
    answers.respond(response)
}

#[tonic::async_trait]
impl CodeLookup for CodeLookupService {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_code(
        &self,
        request: Request<pb::GetCodeRequest>,
    ) -> Result<Response<pb::Code>, Status> {
        let request = GetCode::try_from(request.into_inner())?;
        let snapshot = self.snapshot();
        let registry = &snapshot.registry;
        let found = registry.get(request.code, request.as_of)?;
        Ok(snapshot.answers.respond(found.into()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn batch_get_codes(
        &self,
        request: Request<pb::BatchGetCodesRequest>,
    ) -> Result<Response<pb::BatchGetCodesResponse>, Status> {
        let request = BatchGetCodes::try_from(request.into_inner())?;
        let snapshot = self.snapshot();
        let registry = &snapshot.registry;
        let found = request.look_up(registry)?;
        let codes = found
            .into_iter()
            .map(|found| code_message(found, request.view))
            .collect();
        Ok(snapshot
            .answers
            .respond(pb::BatchGetCodesResponse { codes }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn validate_codes(
        &self,
        request: Request<pb::ValidateCodesRequest>,
    ) -> Result<Response<pb::ValidateCodesResponse>, Status> {
        let request = ValidateCodes::try_from(request.into_inner())?;
        let snapshot = self.snapshot();
        let registry = &snapshot.registry;
        let results = request
            .inputs
            .into_iter()
            .map(|input| {
                let validation = registry.validate(&input, request.as_of);
                JudgedInput { input, validation }.into()
            })
            .collect();
        Ok(snapshot
            .answers
            .respond(pb::ValidateCodesResponse { results }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn search_codes(
        &self,
        request: Request<pb::SearchCodesRequest>,
    ) -> Result<Response<pb::SearchCodesResponse>, Status> {
        let request = SearchCodes::try_from(request.into_inner())?;
        let snapshot = self.snapshot();
        if snapshot.registry.search_index().documents() < BLOCKING_SEARCH_DOCUMENTS {
            return Ok(search_response(
                &snapshot.registry,
                &snapshot.answers,
                &request,
            ));
        }
        let registry = Guard::into_inner(snapshot.registry);
        let answers = Guard::into_inner(snapshot.answers);
        tokio::task::spawn_blocking(move || search_response(&registry, &answers, &request))
            .await
            .map_err(|failed| {
                tracing::error!(error = %failed, "search task failed");
                Status::internal("the search failed; retrying is safe")
            })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_codes(
        &self,
        request: Request<pb::ListCodesRequest>,
    ) -> Result<Response<pb::ListCodesResponse>, Status> {
        let request = ListCodes::try_from(request.into_inner())?;
        let snapshot = self.snapshot();
        let registry = &snapshot.registry;
        let total = registry.list(&request.filter, request.as_of, None).count();
        let mut page: Vec<_> = registry
            .list(&request.filter, request.as_of, request.after)
            .take(request.page_size + 1)
            .collect();
        let next_page_token = if page.len() > request.page_size {
            page.truncate(request.page_size);
            let last = page.last().map(|found| found.version.code);
            last.map(|code| page_token::encode(PageStart::After(code), request.fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let response = pb::ListCodesResponse {
            codes: page
                .into_iter()
                .map(|found| code_message(found, request.view))
                .collect(),
            next_page_token,
            total_size: total_size(total),
        };
        Ok(snapshot.answers.respond(response))
    }
}
