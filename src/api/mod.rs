//! The gRPC edge: generated types in, domain calls, generated types out.
//!
//! Each service converts its request (`TryFrom`), asks the domain one question and
//! converts the answer (`From`); every error becomes a status in `error`. The
//! tower layers here log each call, shed load, and tell the scheduler which
//! calls have a caller waiting.

mod admission;
mod code_lookup;
mod code_requests;
mod convert;
mod error;
mod get_code_route;
mod import_decoder;
mod import_route;
mod interactive_calls;
mod method_route;
mod page_token;
mod quality_convert;
mod quality_import;
mod quality_measures;
mod quality_requests;
mod request_log;
mod snapshot_answers;

pub use admission::AdmissionLayer;
pub use code_lookup::CodeLookupService;
pub use code_requests::{MAX_BATCH_CODES, MAX_FILTER_CHARS};
pub use get_code_route::{CodeLookupRoutes, code_lookup_routes};
pub use import_route::{QualityMeasuresRoutes, quality_measures_routes};
pub use interactive_calls::InteractiveCallsLayer;
pub use page_token::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use quality_import::{
    IMPORT_CHUNK, MAX_CONCURRENT_IMPORTS, MAX_IMPORT_ENCOUNTERS, MAX_IMPORT_ERRORS,
};
pub use quality_measures::QualityMeasuresService;
pub use request_log::{RequestLogLayer, status_name};
pub use snapshot_answers::{MAX_KEPT_ANSWERS, REGISTRY_VERSION_HEADER};
