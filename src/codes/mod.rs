//! The code domain: code values, the registry of code versions, and the questions
//! asked of it (look up, validate, list, search).
//!
//! Nothing here knows about protobuf or gRPC; the `api` edge converts.

mod code_file;
mod filter;
mod record;
mod registry;
mod search;
mod validation;
mod value;

pub use code_file::{LoadProblem, MAX_DESCRIPTOR_CHARS, MAX_REPORTED_PROBLEMS, read_code_file};
pub use filter::{CodeFilter, CodeStatus};
pub use record::{CodeAsOf, CodeVersion, Imaging, MAX_SHORT_NAME_CHARS, Period, Standing};
pub use registry::{BUILT_IN_SOURCE, CodeHistory, CodeRegistry, CodeSetError, LookupError};
pub use search::{
    Explain, ExplainedHit, MAX_QUERY_CHARS, MAX_QUERY_WORDS, MatchKind, SearchField, SearchHit,
    SearchIndex, SearchMatch, SearchPage, SearchQuery,
};
pub use validation::{Validation, ValidationReason};
pub use value::{
    ACCEPTED_FORMS, Category, CodeForm, CodeValue, MAX_CODE_INPUT_CHARS, MalformedCode,
};
