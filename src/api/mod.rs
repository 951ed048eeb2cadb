//! The gRPC edge: generated types in, domain calls, generated types out.
//!
//! Each service converts its request (`TryFrom`), asks the domain one question
//! and converts the answer (`From`); every error becomes a status in `error`.
//! `request_log` writes one line per call; `admission` gives calls their places.

mod admission;
mod claim_check;
mod claim_requests;
mod code_lookup;
mod code_requests;
mod codec;
mod convert;
mod error;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzzing;
mod import_threads;
mod page_token;
mod quality_convert;
mod quality_import;
mod quality_measures;
mod quality_requests;
mod request_log;
mod trace_context;

pub(crate) use admission::AdmissionLayer;
pub(crate) use claim_check::ClaimCheckService;
pub(crate) use code_lookup::CodeLookupService;
pub(crate) use codec::ProtobufCodec;
pub(crate) use quality_measures::{ImportLimits, QualityMeasuresService};
pub(crate) use request_log::RequestLogLayer;
pub(crate) use trace_context::TraceContextLayer;
