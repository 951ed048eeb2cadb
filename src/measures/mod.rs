//! The quality-measure domain: measure definitions in CMS's single-source shape,
//! the engine that sorts an encounter into each measure's outcomes, the recording
//! rules that need the code registry, and the running performance totals.
//!
//! Nothing here knows about protobuf, gRPC or storage; the `api` edge converts and
//! the `store` keeps encounters.

mod definition;
mod describe;
mod encounter;
mod engine;
#[cfg(test)]
mod engine_tests;
mod report;
mod set;
mod values;

/// A hash map for look-ups made for every encounter judged or counted, where
/// SipHash was most of their cost (the totals' maps, at start-up, for every
/// stored encounter). Keys are ids and codes from configuration and callers,
/// with a seed chosen per map.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use definition::{
    EligibilityOption, Measure, MeasureProblem, OptionGroup, PerformanceKind, PerformanceOption,
    ProcedureRule, QualityCode, read_measure_file,
};
pub use describe::{eligibility, performance_option, rules};
pub use encounter::{
    Claim, CodeFinding, Encounter, MAX_CODE_MODIFIERS, MAX_ENCOUNTER_CODES,
    MAX_ENCOUNTER_DIAGNOSES, MAX_PATIENT_AGE, MAX_UNITS, ReportedCode, judge_code,
    modifier_problem,
};
pub use engine::{
    EncounterField, Outcome, Reason, Verdict, describe_quality_code, evaluate, evaluate_group,
};
pub use report::{GroupReport, PerformanceReport, PerformanceTotals, Tally};
pub use set::{BUILT_IN_MEASURE_SOURCE, MeasureSet, MeasureSetError};
pub use values::{
    Diagnosis, MAX_ID_CHARS, MalformedValue, Modifier, PERFORMANCE_MODIFIERS, PatientId,
    PlaceOfService, Sex, parse_id,
};
