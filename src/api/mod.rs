//! The gRPC edge: generated types in, domain calls, generated types out.
//!
//! Each service converts its request (`TryFrom`), asks the domain one question and
//! converts the answer (`From`); every error becomes a status in `error`. The
//! tower layers here log each call and shed load.

mod admission;
mod code_lookup;
mod code_requests;
mod convert;
mod error;
mod page_token;
mod quality_convert;
mod quality_import;
mod quality_measures;
mod quality_requests;
mod request_log;

pub use admission::AdmissionLayer;
pub use code_lookup::{CodeLookupService, REGISTRY_VERSION_HEADER};
pub use code_requests::{MAX_BATCH_CODES, MAX_FILTER_CHARS};
pub use page_token::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use quality_import::{MAX_IMPORT_ENCOUNTERS, MAX_IMPORT_ERRORS};
pub use quality_measures::QualityMeasuresService;
pub use request_log::{RequestLogLayer, status_name};
