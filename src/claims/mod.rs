//! The claim domain: checking a claim before it goes out against the edits
//! a payer runs (CMS's NCCI procedure-to-procedure pairs, medically unlikely
//! edits, add-on code edits and fee-schedule payment indicators), the code set
//! and the ICD-10-CM list, and naming the quality codes it is missing.
//!
//! Nothing here knows about protobuf or gRPC; the `api` edge converts.
//!
//! # Layout
//!
//! - `claim`: the parsed [`Claim`] and its limits.
//! - `edit_file`: what the loaders share: file names and editions, row
//!   sources, problems.
//! - `ptp`, `mue`, `add_on`, `pfs`, `icd10cm`: one loader and table per CMS
//!   file, each reading CMS's published layout and the built-in extract's.
//! - `edits`: [`ClaimEdits`], every table in use, built whole or refused.
//! - `finding` and `check`: what a check says, and the checks.
//! - `quality_gaps`: measures the claim enters but does not report.

/// A hash map keyed by codes from CMS files, looked up several times for
/// every line of every claim checked, where SipHash was a visible part of the
/// cost; the seed is chosen per map.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

mod add_on;
mod check;
mod claim;
mod edit_file;
mod edits;
mod finding;
mod icd10cm;
mod mue;
mod pfs;
mod ptp;
mod quality_gaps;

pub use add_on::{AddOnEdit, AddOnTable, AddOnType};
pub use check::{
    ANATOMIC_MODIFIERS, CheckContext, DISTINCT_SERVICE_MODIFIERS, check_claim, is_visit,
};
pub use claim::{
    Claim, ClaimLine, MAX_CLAIM_DIAGNOSES, MAX_CLAIM_LINES, MAX_DIAGNOSIS_POINTERS,
    MAX_LINE_MODIFIERS, MAX_LINE_UNITS,
};
pub use edit_file::{EditFile, EditFileKind, EditProblem, MAX_LISTED_EDIT_PROBLEMS, RowSource};
pub use edits::{ClaimEdits, ClaimEditsError, EditFiles};
pub use finding::{Finding, FindingKind, RuleSource, Severity};
pub use icd10cm::{DiagnosisStanding, Icd10CmList};
pub use mue::{Adjudication, MueEdit, MueTable};
pub use pfs::{GlobalPeriod, PaymentIndicators, PfsTable};
pub use ptp::{ModifierIndicator, PtpEdit, PtpTable};
pub use quality_gaps::{QualityGap, quality_gaps};
