//! CodeLookup requests parsed into domain values, every problem named by field.

use jiff::civil::Date;
use tonic::Status;

use super::{
    convert::{CodeView, category_of, imaging_of, status_of, view_of},
    error::Violations,
    page_token::{self, PageStart},
};
use crate::{
    calendar,
    codes::{
        ACCEPTED_FORMS, CodeAsOf, CodeFilter, CodeRegistry, CodeValue, MAX_QUERY_CHARS,
        MalformedCode,
    },
    pb,
};

/// Most codes in one `BatchGetCodes` or `ValidateCodes` call.
pub const MAX_BATCH_CODES: usize = 1000;

/// Longest string `ValidateCodes` judges, in characters. Each input is echoed
/// back, so the bound keeps a full batch's answer far below the 4 MiB a client
/// accepts by default.
pub const MAX_VALIDATE_INPUT_CHARS: usize = 64;

/// Longest text filter (`section`, `anatomy`), in characters.
pub const MAX_FILTER_CHARS: usize = 128;

/// A parsed `GetCode` request.
#[derive(Debug)]
pub struct GetCode {
    /// The code asked about.
    pub code: CodeValue,
    /// The day to answer for.
    pub as_of: Date,
}

/// A parsed `BatchGetCodes` request. Malformed codes are kept, not refused at once,
/// so that the error can also name the well-formed codes the registry lacks.
#[derive(Debug)]
pub struct BatchGetCodes {
    /// Each code in request order, or why it is not a code.
    pub codes: Vec<Result<CodeValue, MalformedCode>>,
    /// The day to answer for.
    pub as_of: Date,
    /// How much of each code to answer.
    pub view: CodeView,
}

impl BatchGetCodes {
    /// Every code as it stood on `as_of`; or one error naming every malformed code
    /// (`INVALID_ARGUMENT`, with the unknown ones named too), else every unknown
    /// one (`NOT_FOUND`).
    pub fn look_up<'a>(&self, registry: &'a CodeRegistry) -> Result<Vec<CodeAsOf<'a>>, Status> {
        let mut violations = Violations::default();
        let mut any_malformed = false;
        let mut found = Vec::with_capacity(self.codes.len());
        for (index, code) in self.codes.iter().enumerate() {
            let field = || format!("codes[{index}]");
            match code {
                Ok(code) => match registry.get(*code, self.as_of) {
                    Ok(code) => found.push(code),
                    Err(missing) => violations.add(field(), missing.to_string()),
                },
                Err(malformed) => {
                    any_malformed = true;
                    violations.add(field(), malformed.brief());
                    violations.note(ACCEPTED_FORMS);
                }
            }
        }
        match (violations.is_empty(), any_malformed) {
            (true, _) => Ok(found),
            (false, true) => Err(violations.into_status(tonic::Code::InvalidArgument)),
            (false, false) => Err(violations.into_status(tonic::Code::NotFound)),
        }
    }
}

/// A parsed `ValidateCodes` request: inputs stay raw, since judging them is the
/// point.
#[derive(Debug)]
pub struct ValidateCodes {
    /// The strings as sent.
    pub inputs: Vec<String>,
    /// The day to judge for.
    pub as_of: Date,
}

/// A parsed `SearchCodes` request.
#[derive(Debug)]
pub struct SearchCodes {
    /// What was typed.
    pub query: String,
    /// The filters.
    pub filter: CodeFilter,
    /// The day to search as of.
    pub as_of: Date,
    /// Results per page.
    pub page_size: usize,
    /// Results to skip.
    pub offset: usize,
    /// Identifies the query and filters, for page tokens.
    pub fingerprint: u64,
    /// How much of each code to answer.
    pub view: CodeView,
}

/// A parsed `ListCodes` request.
#[derive(Debug)]
pub struct ListCodes {
    /// The filters, range included.
    pub filter: CodeFilter,
    /// The day to list as of.
    pub as_of: Date,
    /// Codes per page.
    pub page_size: usize,
    /// The last code of the previous page.
    pub after: Option<CodeValue>,
    /// Identifies the filters, for page tokens.
    pub fingerprint: u64,
    /// How much of each code to answer.
    pub view: CodeView,
}

fn as_of(text: &str, violations: &mut Violations) -> Date {
    if text.is_empty() {
        return calendar::today();
    }
    calendar::parse_date(text).unwrap_or_else(|error| {
        violations.add("as_of", error.to_string());
        calendar::today()
    })
}

fn code_field(text: &str, field: &str, violations: &mut Violations) -> Option<CodeValue> {
    CodeValue::parse(text)
        .map_err(|error| violations.add(field, error.to_string()))
        .ok()
}

fn batch_size(count: usize, violations: &mut Violations) {
    if count == 0 {
        violations.add("codes", "give at least one code");
    } else if count > MAX_BATCH_CODES {
        violations.add(
            "codes",
            format!("{count} codes is more than the limit of {MAX_BATCH_CODES} per call; split the batch"),
        );
    }
}

fn text_filter(text: &str, field: &str, violations: &mut Violations) -> Option<String> {
    let text = text.trim();
    if text.chars().count() > MAX_FILTER_CHARS {
        violations.add(field, format!("longer than {MAX_FILTER_CHARS} characters"));
    }
    (!text.is_empty()).then(|| text.to_string())
}

fn enum_filter<T>(
    values: &[i32],
    field: &str,
    read: fn(i32) -> Option<T>,
    violations: &mut Violations,
) -> Vec<T> {
    values
        .iter()
        .enumerate()
        .filter_map(|(index, value)| {
            let read = read(*value);
            if read.is_none() {
                violations.add(
                    format!("{field}[{index}]"),
                    format!("{value} is not a value this filter accepts"),
                );
            }
            read
        })
        .collect()
}

fn view(value: i32, default: CodeView, violations: &mut Violations) -> CodeView {
    view_of(value, default).unwrap_or_else(|| {
        violations.add(
            "view",
            format!(
                "{value} is not a view: send 1 (CODE_VIEW_BASIC), 2 (CODE_VIEW_FULL) or 0 for \
                 the method's default"
            ),
        );
        default
    })
}

fn page_size(requested: i32, violations: &mut Violations) -> usize {
    page_token::page_size(requested).unwrap_or_else(|error| {
        violations.add("page_size", error);
        page_token::DEFAULT_PAGE_SIZE
    })
}

fn page_start(token: &str, fingerprint: u64, violations: &mut Violations) -> Option<PageStart> {
    page_token::decode(token, fingerprint)
        .map_err(|error| violations.add("page_token", error))
        .ok()
        .flatten()
}

impl TryFrom<pb::GetCodeRequest> for GetCode {
    type Error = Status;

    fn try_from(request: pb::GetCodeRequest) -> Result<Self, Status> {
        let mut violations = Violations::default();
        let code = code_field(&request.code, "code", &mut violations);
        let as_of = as_of(&request.as_of, &mut violations);
        match code {
            Some(code) => violations.into_result(GetCode { code, as_of }),
            None => Err(violations.into_status(tonic::Code::InvalidArgument)),
        }
    }
}

impl TryFrom<pb::BatchGetCodesRequest> for BatchGetCodes {
    type Error = Status;

    fn try_from(request: pb::BatchGetCodesRequest) -> Result<Self, Status> {
        let mut violations = Violations::default();
        batch_size(request.codes.len(), &mut violations);
        let codes = request
            .codes
            .iter()
            .take(MAX_BATCH_CODES)
            .map(|code| CodeValue::parse(code))
            .collect();
        let as_of = as_of(&request.as_of, &mut violations);
        let view = view(request.view, CodeView::Full, &mut violations);
        violations.into_result(BatchGetCodes { codes, as_of, view })
    }
}

impl TryFrom<pb::ValidateCodesRequest> for ValidateCodes {
    type Error = Status;

    fn try_from(request: pb::ValidateCodesRequest) -> Result<Self, Status> {
        let mut violations = Violations::default();
        batch_size(request.codes.len(), &mut violations);
        for (index, input) in request.codes.iter().enumerate() {
            if input.chars().count() > MAX_VALIDATE_INPUT_CHARS {
                violations.add(
                    format!("codes[{index}]"),
                    format!(
                        "longer than {MAX_VALIDATE_INPUT_CHARS} characters; no code comes close"
                    ),
                );
            }
        }
        let as_of = as_of(&request.as_of, &mut violations);
        violations.into_result(ValidateCodes {
            inputs: request.codes,
            as_of,
        })
    }
}

impl TryFrom<pb::SearchCodesRequest> for SearchCodes {
    type Error = Status;

    fn try_from(request: pb::SearchCodesRequest) -> Result<Self, Status> {
        let mut violations = Violations::default();
        if request.query.chars().count() > MAX_QUERY_CHARS {
            violations.add("query", format!("longer than {MAX_QUERY_CHARS} characters"));
        }
        let filter = CodeFilter {
            categories: enum_filter(
                &request.categories,
                "categories",
                category_of,
                &mut violations,
            ),
            anatomy: text_filter(&request.anatomy, "anatomy", &mut violations),
            imaging: enum_filter(&request.imaging, "imaging", imaging_of, &mut violations),
            add_on: request.add_on,
            statuses: enum_filter(&request.statuses, "statuses", status_of, &mut violations),
            ..CodeFilter::default()
        };
        let as_of = as_of(&request.as_of, &mut violations);
        // A trailing space is kept: it says the last word is finished, so search
        // stops matching it as a prefix.
        let query = request.query.trim_start().to_string();
        // The view is left out: it changes what each code shows, not which codes
        // the pages hold, so a token stays good when the next page asks for
        // another view.
        let fingerprint = page_token::fingerprint(&(&query, &filter, &request.as_of));
        let offset = match page_start(&request.page_token, fingerprint, &mut violations) {
            Some(PageStart::Offset(offset)) => offset,
            Some(PageStart::After(_)) => {
                violations.add("page_token", "page token is not one SearchCodes issued");
                0
            }
            None => 0,
        };
        let page_size = page_size(request.page_size, &mut violations);
        let view = view(request.view, CodeView::Basic, &mut violations);
        violations.into_result(SearchCodes {
            query,
            filter,
            as_of,
            page_size,
            offset,
            fingerprint,
            view,
        })
    }
}

impl TryFrom<pb::ListCodesRequest> for ListCodes {
    type Error = Status;

    fn try_from(request: pb::ListCodesRequest) -> Result<Self, Status> {
        let mut violations = Violations::default();
        let bound = |text: &str, field: &str, violations: &mut Violations| {
            (!text.trim().is_empty())
                .then(|| code_field(text, field, violations))
                .flatten()
        };
        let range_start = bound(&request.range_start, "range_start", &mut violations);
        let range_end = bound(&request.range_end, "range_end", &mut violations);
        if let (Some(start), Some(end)) = (range_start, range_end)
            && end < start
        {
            violations.add(
                "range_end",
                format!("{end} sorts before range_start {start}"),
            );
        }
        let filter = CodeFilter {
            range_start,
            range_end,
            categories: enum_filter(
                &request.categories,
                "categories",
                category_of,
                &mut violations,
            ),
            section: text_filter(&request.section, "section", &mut violations),
            statuses: enum_filter(&request.statuses, "statuses", status_of, &mut violations),
            ..CodeFilter::default()
        };
        let as_of = as_of(&request.as_of, &mut violations);
        // Without the view, as for SearchCodes.
        let fingerprint = page_token::fingerprint(&(&filter, &request.as_of));
        let after = match page_start(&request.page_token, fingerprint, &mut violations) {
            Some(PageStart::After(code)) => Some(code),
            Some(PageStart::Offset(_)) => {
                violations.add("page_token", "page token is not one ListCodes issued");
                None
            }
            None => None,
        };
        let page_size = page_size(request.page_size, &mut violations);
        let view = view(request.view, CodeView::Full, &mut violations);
        violations.into_result(ListCodes {
            filter,
            as_of,
            page_size,
            after,
            fingerprint,
            view,
        })
    }
}
