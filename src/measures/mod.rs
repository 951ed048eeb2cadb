//! The quality-measure domain: measure definitions in the shapes CMS publishes,
//! the engine that judges a claim under each measure, the units CMS groups
//! claims into and the marker each keeps, the counts and rates of a report,
//! and the recording rules that need the code registry.
//!
//! Nothing here knows about protobuf, gRPC or storage; the `api` edge converts and
//! the `store` keeps encounters.

mod cms_claims;
mod definition;
mod describe;
mod encounter;
mod engine;
#[cfg(test)]
mod engine_tests;
mod report;
mod set;
mod submission;
mod units;
mod values;

/// A hash map for look-ups made for every claim judged, where SipHash was
/// most of their cost. Keys are codes from configuration and callers, with a
/// seed chosen per map.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub use definition::{
    CalculationType, EligibilityOption, Measure, MeasureProblem, OverallAlgorithm, PerformanceKind,
    PerformanceOption, ProcedureRule, QualityCode, Stratum,
};
pub use describe::{eligibility, performance_option, rules, units as unit_rule};
pub use encounter::{
    Claim, CodeFinding, Encounter, MAX_CODE_MODIFIERS, MAX_ENCOUNTER_CODES,
    MAX_ENCOUNTER_DIAGNOSES, MAX_PATIENT_AGE, MAX_UNITS, ReportedCode, judge_code,
    modifier_problem,
};
pub use engine::{
    EncounterField, Judgement, Outcome, Reason, Verdict, describe_quality_code, evaluate, judge,
};
pub use report::{Counts, Overall, PerformanceReport, Period, ProviderFilter, StratumReport};
pub use set::{BUILT_IN_MEASURE_SOURCE, Judged, MeasureSet, MeasureSetError};
pub use submission::measurement_set;
pub use units::{MarkedClaim, Unit, decide};
pub use values::{
    Diagnosis, MAX_ID_CHARS, MalformedValue, Modifier, PERFORMANCE_MODIFIERS, PatientId,
    PlaceOfService, Sex, Tin, parse_id,
};
