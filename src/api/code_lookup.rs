//! The `cpt.v1.CodeLookup` service: parse, ask the registry, convert back.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tonic::{Request, Response, Status};

use tonic::metadata::AsciiMetadataValue;

use super::{
    code_requests::{BatchGetCodes, GetCode, ListCodes, SearchCodes, ValidateCodes},
    convert::{CodeView, JudgedInput, code_message, search_result},
    page_token::{self, PageStart},
};
use crate::{
    codes::{CodeRegistry, Explain, SearchQuery},
    pb::{self, code_lookup_server::CodeLookup},
};

/// Response metadata naming the registry snapshot that answered.
pub const REGISTRY_VERSION_HEADER: &str = "cptd-registry-version";

/// Names the registry `version` in `response`'s metadata: answers that depend
/// on the code set say which one.
pub fn name_registry<T>(response: &mut Response<T>, version: &str) {
    if let Ok(version) = AsciiMetadataValue::try_from(version) {
        response
            .metadata_mut()
            .insert(REGISTRY_VERSION_HEADER, version);
    }
}

/// `message` as the answer of `registry`.
fn answer<T>(registry: &CodeRegistry, message: T) -> Response<T> {
    let mut response = Response::new(message);
    name_registry(&mut response, registry.version());
    response
}

/// Serves `CodeLookup` from whichever registry snapshot is current when a call
/// arrives; a call keeps that snapshot to its end, so a reload never mixes two.
#[derive(Debug, Clone)]
pub struct CodeLookupService {
    registry: Arc<ArcSwap<CodeRegistry>>,
}

impl CodeLookupService {
    /// A service over the shared, swappable registry.
    pub fn new(registry: Arc<ArcSwap<CodeRegistry>>) -> CodeLookupService {
        CodeLookupService { registry }
    }
}

fn total_size(count: usize) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// From this many indexed code versions on, a broad search takes milliseconds
/// and runs on the blocking pool rather than holding a tokio worker; below it a
/// search takes microseconds and a thread hand-off would cost more than it does.
const BLOCKING_SEARCH_DOCUMENTS: usize = 10_000;

pub(super) fn search_response(
    registry: &CodeRegistry,
    request: &SearchCodes,
) -> Response<pb::SearchCodesResponse> {
    let query = SearchQuery {
        text: &request.query,
        filter: &request.filter,
        as_of: request.as_of,
    };
    // Explaining costs about as much as searching; a typeahead's basic
    // answers go without.
    let explain = match request.view {
        CodeView::Basic => Explain::Nothing,
        CodeView::Full => Explain::Matches,
    };
    let page = registry.search_page(&query, request.offset, request.page_size, explain);
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
    answer(registry, response)
}

#[tonic::async_trait]
impl CodeLookup for CodeLookupService {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn get_code(
        &self,
        request: Request<pb::GetCodeRequest>,
    ) -> Result<Response<pb::Code>, Status> {
        let request = GetCode::try_from(request.into_inner())?;
        let registry = self.registry.load();
        let found = registry.get(request.code, request.as_of)?;
        Ok(answer(&registry, found.into()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn batch_get_codes(
        &self,
        request: Request<pb::BatchGetCodesRequest>,
    ) -> Result<Response<pb::BatchGetCodesResponse>, Status> {
        let request = BatchGetCodes::try_from(request.into_inner())?;
        let registry = self.registry.load();
        let found = request.look_up(&registry)?;
        let codes = found
            .into_iter()
            .map(|found| code_message(found, request.view))
            .collect();
        Ok(answer(&registry, pb::BatchGetCodesResponse { codes }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn validate_codes(
        &self,
        request: Request<pb::ValidateCodesRequest>,
    ) -> Result<Response<pb::ValidateCodesResponse>, Status> {
        let request = ValidateCodes::try_from(request.into_inner())?;
        let registry = self.registry.load();
        let results = request
            .inputs
            .into_iter()
            .map(|input| {
                let validation = registry.validate(&input, request.as_of);
                JudgedInput { input, validation }.into()
            })
            .collect();
        Ok(answer(&registry, pb::ValidateCodesResponse { results }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn search_codes(
        &self,
        request: Request<pb::SearchCodesRequest>,
    ) -> Result<Response<pb::SearchCodesResponse>, Status> {
        let request = SearchCodes::try_from(request.into_inner())?;
        let registry = self.registry.load_full();
        if registry.search_index().documents() < BLOCKING_SEARCH_DOCUMENTS {
            return Ok(search_response(&registry, &request));
        }
        tokio::task::spawn_blocking(move || search_response(&registry, &request))
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
        let registry = self.registry.load();
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
        Ok(answer(&registry, response))
    }
}
