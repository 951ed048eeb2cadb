//! cptd answers procedure-code questions for the billing and quality services of a
//! pain-management practice, over gRPC.
//!
//! # Layout
//!
//! - [`codes`]: the code domain. [`codes::CodeValue`] is a parsed, normalised
//!   code; [`codes::CodeRegistry`] is an immutable snapshot of every code version,
//!   built from code-set files (the built-in set is embedded), that answers
//!   look-ups, validation, listing and search as of any day.
//! - [`measures`]: the quality-measure domain. [`measures::MeasureSet`] holds the
//!   measures in force (CMS single-source definitions, two built in); the engine
//!   sorts an [`measures::Encounter`] into one outcome per measure and option
//!   group.
//! - [`claims`]: the claim domain. [`claims::check_claim`] runs CMS's edits
//!   ([`claims::ClaimEdits`]: NCCI pairs, MUEs, add-on edits, fee-schedule
//!   indicators, ICD-10-CM) over a [`claims::Claim`]; [`claims::quality_gaps`]
//!   names the measures it enters but does not report.
//! - [`store`]: the durable encounter store (embedded SQLite behind one writer
//!   thread that commits in groups), which keeps the units and totals reports
//!   read in the same database, and patient ids only as keyed hashes.
//! - [`api`]: the gRPC edge. Converts requests into domain values, asks the
//!   registry, converts answers back, and maps errors to statuses in one place.
//! - [`server`]: assembles the services (each served by its generated tonic
//!   server), health and reflection, and the tower layers in front of them (the
//!   request log and load shedding), and runs them until shutdown.
//!   [`connections`] accepts client connections within their limits.
//!   [`shutdown`] is the signal, [`config`] the flags, [`telemetry`] the log
//!   setup; `calendar` is the date format of the API and `source_files` the
//!   reading of the operator's data files.
//! - [`pb`]: the generated protobuf types, used only by `api` and `server`.
//! - [`access`]: who may call what (callers, roles, the check of each call);
//!   [`tls`]: the listener's certificates, re-read on SIGHUP; [`metrics`]:
//!   the Prometheus metrics and their listener.

#![warn(missing_docs)]

pub mod access;
pub(crate) mod api;
pub(crate) mod bulk_priority;
pub(crate) mod calendar;
pub mod claims;
pub mod codes;
pub mod config;
pub mod connections;
pub mod measures;
pub mod metrics;
pub mod pb;
pub mod server;
pub mod shutdown;
pub(crate) mod source_files;
pub mod store;
pub mod telemetry;

/// The request conversions, for the fuzz targets in `fuzz/`.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use api::fuzzing::convert_request;
pub mod tls;
