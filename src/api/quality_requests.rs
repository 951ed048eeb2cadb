//! QualityMeasures requests parsed into domain values, every problem named by its
//! field path (`encounter.codes[2].modifiers[0]`).
//!
//! Recording rules that need the code registry (a code deleted or not yet in
//! effect on the service date, an unknown code under `--strict-codes`) are judged
//! in the same pass, so one `INVALID_ARGUMENT` names every problem at once.

use jiff::civil::Date;

use super::{
    error::Violations,
    page_token::{self, PageStart},
};
use crate::{
    calendar,
    codes::{CodeRegistry, CodeValue},
    measures::{
        Claim, CodeFinding, Diagnosis, Encounter, MAX_CODE_MODIFIERS, MAX_ENCOUNTER_CODES,
        MAX_ENCOUNTER_DIAGNOSES, MAX_PATIENT_AGE, MAX_UNITS, Modifier, PatientId, Period,
        PlaceOfService, ProviderFilter, ReportedCode, Sex, Tin, judge_code, modifier_problem,
        parse_id,
    },
    pb,
};

/// What recording rules depend on besides the encounter itself.
#[derive(Debug, Clone, Copy)]
pub struct EncounterRules<'a> {
    /// The code set as it stands now.
    pub registry: &'a CodeRegistry,
    /// Unknown codes are errors rather than warnings.
    pub strict_codes: bool,
    /// Service dates after this day are refused.
    pub today: Date,
}

/// A parsed encounter with the warnings recording it will carry.
#[derive(Debug)]
pub struct ParsedEncounter {
    /// The encounter.
    pub encounter: Encounter,
    /// Replace a stored encounter with different content.
    pub replace: bool,
    /// Well-formed codes the registry does not hold, and the like.
    pub warnings: Vec<String>,
}

fn id_field(text: &str, what: &str, field: &str, violations: &mut Violations) -> Option<String> {
    parse_id(text, what)
        .map_err(|error| violations.add(field, error.to_string()))
        .ok()
}

/// The earliest service date accepted: CPT's first edition (1966). An older
/// date is a typo or a placeholder (`0001-01-01`), never a real claim.
const EARLIEST_SERVICE_DATE: Date = jiff::civil::date(1966, 1, 1);

fn service_date(text: &str, today: Date, violations: &mut Violations) -> Option<Date> {
    const FIELD: &str = "encounter.service_date";
    if text.trim().is_empty() {
        violations.add(FIELD, "service_date is required (YYYY-MM-DD)");
        return None;
    }
    match calendar::parse_date(text) {
        Err(error) => {
            violations.add(FIELD, error.to_string());
            None
        }
        Ok(date) if date < EARLIEST_SERVICE_DATE => {
            violations.add(
                FIELD,
                format!(
                    "{date} is before {EARLIEST_SERVICE_DATE}, when CPT was first published; \
                     no claim this service counts can be that old"
                ),
            );
            None
        }
        Ok(date) if date > today => {
            violations.add(
                FIELD,
                format!("{date} lies in the future; the server's today is {today}"),
            );
            None
        }
        Ok(date) => Some(date),
    }
}

/// Parses the first `limit` items of a list, naming each one that fails by its
/// path (`{field}[i]`); the list only if every item parsed, so positions in it
/// are those of the request. The path is written only for a failure: an
/// import parses every list of every encounter, and nearly all are fine.
fn parse_each<T, E: ToString>(
    items: &[String],
    limit: usize,
    field: impl Fn() -> String,
    parse: impl Fn(&str) -> Result<T, E>,
    violations: &mut Violations,
) -> Option<Vec<T>> {
    let mut parsed = Vec::with_capacity(items.len().min(limit));
    let mut all_parsed = true;
    for (index, text) in items.iter().take(limit).enumerate() {
        match parse(text) {
            Ok(value) => parsed.push(value),
            Err(error) => {
                violations.add(format!("{}[{index}]", field()), error.to_string());
                all_parsed = false;
            }
        }
    }
    all_parsed.then_some(parsed)
}

fn reported_code(
    index: usize,
    code: &pb::EncounterCode,
    date: Option<Date>,
    rules: &EncounterRules<'_>,
    warnings: &mut Vec<String>,
    violations: &mut Violations,
) -> Option<ReportedCode> {
    // Written only when something is named: most codes have nothing wrong.
    let path = || format!("encounter.codes[{index}]");
    let parsed = CodeValue::parse(&code.code)
        .map_err(|error| violations.add(format!("{}.code", path()), error.to_string()))
        .ok();
    if code.modifiers.len() > MAX_CODE_MODIFIERS {
        violations.add(
            format!("{}.modifiers", path()),
            format!("at most {MAX_CODE_MODIFIERS} modifiers per code"),
        );
    }
    let modifiers = parse_each(
        &code.modifiers,
        MAX_CODE_MODIFIERS,
        || format!("{}.modifiers", path()),
        Modifier::parse,
        violations,
    );
    let units = u16::try_from(code.units)
        .ok()
        .filter(|units| *units <= MAX_UNITS);
    if units.is_none() {
        violations.add(
            format!("{}.units", path()),
            format!("units must be 0 to {MAX_UNITS}"),
        );
    }
    let parsed = parsed?;
    let modifiers = modifiers?;
    for position in 0..modifiers.len() {
        if let Some(problem) = modifier_problem(parsed, &modifiers, position) {
            violations.add(format!("{}.modifiers[{position}]", path()), problem);
        }
    }
    if let Some(date) = date {
        match judge_code(rules.registry, parsed, date) {
            CodeFinding::Known => {}
            CodeFinding::Unknown(message) if rules.strict_codes => violations.add(
                format!("{}.code", path()),
                format!("{message}; unknown codes are refused under --strict-codes"),
            ),
            CodeFinding::Unknown(message) => warnings.push(format!("{}.code: {message}", path())),
            CodeFinding::NotReportable(message) => {
                violations.add(format!("{}.code", path()), message)
            }
        }
    }
    Some(ReportedCode {
        code: parsed,
        modifiers,
        units: units?,
    })
}

/// Parses one encounter (or names every problem in `violations`).
pub fn parse_encounter(
    encounter: Option<&pb::Encounter>,
    replace: bool,
    rules: &EncounterRules<'_>,
) -> Result<ParsedEncounter, Violations> {
    let mut violations = Violations::default();
    let Some(encounter) = encounter else {
        violations.add("encounter", "encounter is required");
        return Err(violations);
    };
    let encounter_id = id_field(
        &encounter.encounter_id,
        "encounter_id",
        "encounter.encounter_id",
        &mut violations,
    );
    let patient_id = PatientId::parse(&encounter.patient_id)
        .map_err(|error| violations.add("encounter.patient_id", error.to_string()))
        .ok();
    let provider_id = id_field(
        &encounter.provider_id,
        "provider_id",
        "encounter.provider_id",
        &mut violations,
    );
    let tin = if encounter.tin.trim().is_empty() {
        violations.add(
            "encounter.tin",
            "tin is required: the billing TIN, nine digits (with the NPI in provider_id, the \
             provider CMS counts for)",
        );
        None
    } else {
        Tin::parse(&encounter.tin)
            .map_err(|error| violations.add("encounter.tin", error.to_string()))
            .ok()
    };
    let date = service_date(&encounter.service_date, rules.today, &mut violations);
    let place_of_service = (!encounter.place_of_service.trim().is_empty())
        .then(|| {
            PlaceOfService::parse(&encounter.place_of_service)
                .map_err(|error| violations.add("encounter.place_of_service", error.to_string()))
                .ok()
        })
        .flatten();
    let patient_age = encounter.patient_age.and_then(|age| {
        let parsed = u8::try_from(age).ok().filter(|age| *age <= MAX_PATIENT_AGE);
        if parsed.is_none() {
            violations.add(
                "encounter.patient_age",
                format!("patient_age must be 0 to {MAX_PATIENT_AGE} whole years, or unset"),
            );
        }
        parsed
    });
    let patient_sex = (!encounter.patient_sex.trim().is_empty())
        .then(|| {
            Sex::parse(&encounter.patient_sex)
                .map_err(|error| violations.add("encounter.patient_sex", error.to_string()))
                .ok()
        })
        .flatten();
    if encounter.codes.len() > MAX_ENCOUNTER_CODES {
        violations.add(
            "encounter.codes",
            format!(
                "{} codes is more than the limit of {MAX_ENCOUNTER_CODES} per encounter",
                encounter.codes.len()
            ),
        );
    }
    let mut warnings = Vec::new();
    // A code that fails leaves a violation, so the encounter is refused and
    // the codes that parsed are not needed.
    let codes: Vec<ReportedCode> = encounter
        .codes
        .iter()
        .take(MAX_ENCOUNTER_CODES)
        .enumerate()
        .filter_map(|(index, code)| {
            reported_code(index, code, date, rules, &mut warnings, &mut violations)
        })
        .collect();
    if encounter.diagnoses.len() > MAX_ENCOUNTER_DIAGNOSES {
        violations.add(
            "encounter.diagnoses",
            format!(
                "{} diagnoses is more than the limit of {MAX_ENCOUNTER_DIAGNOSES} per encounter",
                encounter.diagnoses.len()
            ),
        );
    }
    let diagnoses = parse_each(
        &encounter.diagnoses,
        MAX_ENCOUNTER_DIAGNOSES,
        || "encounter.diagnoses".to_string(),
        Diagnosis::parse,
        &mut violations,
    );

    let complete = violations.is_empty();
    match (encounter_id, patient_id, provider_id, tin, date, diagnoses) {
        (
            Some(encounter_id),
            Some(patient_id),
            Some(provider_id),
            Some(tin),
            Some(service_date),
            Some(diagnoses),
        ) if complete => Ok(ParsedEncounter {
            encounter: Encounter {
                encounter_id,
                patient_id,
                claim: Claim {
                    provider_id,
                    tin: Some(tin),
                    service_date,
                    place_of_service,
                    patient_age,
                    patient_sex,
                    codes,
                    diagnoses,
                },
            },
            replace,
            warnings,
        }),
        _ => Err(violations),
    }
}

/// A parsed `ListMeasures` request.
#[derive(Debug)]
pub struct ListMeasures {
    /// Measures per page.
    pub page_size: usize,
    /// Measures to skip.
    pub offset: usize,
}

/// The fingerprint of `ListMeasures` page tokens; the listing has no filters.
pub const LIST_MEASURES_FINGERPRINT: u64 = 0x6d65_6173_7572_6573;

impl TryFrom<pb::ListMeasuresRequest> for ListMeasures {
    type Error = tonic::Status;

    fn try_from(request: pb::ListMeasuresRequest) -> Result<Self, tonic::Status> {
        let mut violations = Violations::default();
        let page_size = page_token::page_size(request.page_size).unwrap_or_else(|error| {
            violations.add("page_size", error);
            page_token::DEFAULT_PAGE_SIZE
        });
        let offset = match page_token::decode(&request.page_token, LIST_MEASURES_FINGERPRINT) {
            Ok(Some(PageStart::Offset(offset))) => offset,
            Ok(None) => 0,
            Ok(Some(_)) | Err(_) => {
                violations.add(
                    "page_token",
                    "page token is not one ListMeasures issued; pass next_page_token unchanged",
                );
                0
            }
        };
        violations.into_result(ListMeasures { page_size, offset })
    }
}

/// A parsed `GetMeasure` request.
#[derive(Debug)]
pub struct GetMeasure {
    /// The measure asked about.
    pub measure_id: String,
}

impl TryFrom<pb::GetMeasureRequest> for GetMeasure {
    type Error = tonic::Status;

    fn try_from(request: pb::GetMeasureRequest) -> Result<Self, tonic::Status> {
        let mut violations = Violations::default();
        let measure_id = id_field(
            &request.measure_id,
            "measure_id",
            "measure_id",
            &mut violations,
        );
        violations.into_result(GetMeasure {
            measure_id: measure_id.unwrap_or_default(),
        })
    }
}

/// A measure id, required.
fn measure_field(text: &str, violations: &mut Violations) -> String {
    id_field(text, "measure_id", "measure_id", violations).unwrap_or_default()
}

/// Whose units: a TIN, an NPI, both or neither.
fn providers(tin: &str, npi: &str, npi_field: &str, violations: &mut Violations) -> ProviderFilter {
    let tin = (!tin.trim().is_empty())
        .then(|| {
            Tin::parse(tin)
                .map_err(|error| violations.add("tin", error.to_string()))
                .ok()
        })
        .flatten();
    let npi = (!npi.trim().is_empty())
        .then(|| id_field(npi, npi_field, npi_field, violations))
        .flatten();
    ProviderFilter {
        tin: tin.map(|tin| tin.to_string()),
        npi,
    }
}

/// The period of a request: both ends, or neither for the calendar year of
/// `today`.
fn period(start: &str, end: &str, today: Date, violations: &mut Violations) -> Period {
    let fallback = Period::year(today.year());
    match (start.trim().is_empty(), end.trim().is_empty()) {
        (true, true) => fallback,
        (false, true) | (true, false) => {
            let (missing, given, text) = if start.trim().is_empty() {
                ("period_start", "period_end", end)
            } else {
                ("period_end", "period_start", start)
            };
            date_field(text, given, violations);
            violations.add(
                missing,
                "give both ends of the period (YYYY-MM-DD), or neither for the calendar year",
            );
            fallback
        }
        (false, false) => {
            let start = date_field(start, "period_start", violations);
            let end = date_field(end, "period_end", violations);
            match (start, end) {
                (Some(start), Some(end)) if end < start => {
                    violations.add(
                        "period_end",
                        format!("{end} is before period_start {start}"),
                    );
                    fallback
                }
                (Some(start), Some(end)) => Period { start, end },
                _ => fallback,
            }
        }
    }
}

fn date_field(text: &str, field: &str, violations: &mut Violations) -> Option<Date> {
    calendar::parse_date(text)
        .map_err(|error| violations.add(field, error.to_string()))
        .ok()
}

/// What a report or care-gap list covers: the measure, the provider
/// (`tin`, `provider_id`) and the period (`period_start`, `period_end`).
fn report_scope(
    measure_id: &str,
    (tin, provider_id): (&str, &str),
    (start, end): (&str, &str),
    violations: &mut Violations,
) -> (String, ProviderFilter, Period) {
    (
        measure_field(measure_id, violations),
        providers(tin, provider_id, "provider_id", violations),
        period(start, end, calendar::today(), violations),
    )
}

/// A parsed `GetPerformance` request.
#[derive(Debug)]
pub struct GetPerformance {
    /// The measure.
    pub measure_id: String,
    /// Whose units.
    pub providers: ProviderFilter,
    /// Which days.
    pub period: Period,
}

impl TryFrom<pb::GetPerformanceRequest> for GetPerformance {
    type Error = tonic::Status;

    fn try_from(request: pb::GetPerformanceRequest) -> Result<Self, tonic::Status> {
        let mut violations = Violations::default();
        let (measure_id, providers, period) = report_scope(
            &request.measure_id,
            (&request.tin, &request.provider_id),
            (&request.period_start, &request.period_end),
            &mut violations,
        );
        violations.into_result(GetPerformance {
            measure_id,
            providers,
            period,
        })
    }
}

/// A parsed `VoidEncounter` or `GetEncounter` request: one encounter id.
#[derive(Debug)]
pub struct EncounterId(pub String);

fn encounter_id(text: &str) -> Result<EncounterId, tonic::Status> {
    let mut violations = Violations::default();
    let id = id_field(text, "encounter_id", "encounter_id", &mut violations);
    violations.into_result(EncounterId(id.unwrap_or_default()))
}

impl TryFrom<pb::VoidEncounterRequest> for EncounterId {
    type Error = tonic::Status;

    fn try_from(request: pb::VoidEncounterRequest) -> Result<Self, tonic::Status> {
        encounter_id(&request.encounter_id)
    }
}

impl TryFrom<pb::GetEncounterRequest> for EncounterId {
    type Error = tonic::Status;

    fn try_from(request: pb::GetEncounterRequest) -> Result<Self, tonic::Status> {
        encounter_id(&request.encounter_id)
    }
}

/// A parsed `ListCareGaps` request.
#[derive(Debug)]
pub struct ListCareGaps {
    /// The measure.
    pub measure_id: String,
    /// Whose units.
    pub providers: ProviderFilter,
    /// Which days.
    pub period: Period,
    /// Gaps per page.
    pub page_size: usize,
    /// Gaps before this page.
    pub offset: usize,
    /// Identifies the listing, for page tokens.
    pub fingerprint: u64,
}

impl TryFrom<pb::ListCareGapsRequest> for ListCareGaps {
    type Error = tonic::Status;

    fn try_from(request: pb::ListCareGapsRequest) -> Result<Self, tonic::Status> {
        let mut violations = Violations::default();
        let (measure_id, providers, period) = report_scope(
            &request.measure_id,
            (&request.tin, &request.provider_id),
            (&request.period_start, &request.period_end),
            &mut violations,
        );
        let page_size = page_token::page_size(request.page_size).unwrap_or_else(|error| {
            violations.add("page_size", error);
            page_token::DEFAULT_PAGE_SIZE
        });
        let fingerprint = page_token::fingerprint(&(&measure_id, &providers, &period));
        let offset = match page_token::decode(&request.page_token, fingerprint) {
            Ok(Some(PageStart::Offset(offset))) => offset,
            Ok(None) => 0,
            Ok(Some(_)) => {
                violations.add(
                    "page_token",
                    "page token is not one ListCareGaps issued; pass next_page_token unchanged",
                );
                0
            }
            Err(error) => {
                violations.add("page_token", error);
                0
            }
        };
        violations.into_result(ListCareGaps {
            measure_id,
            providers,
            period,
            page_size,
            offset,
            fingerprint,
        })
    }
}

/// A parsed `ExportMeasurementSet` request.
#[derive(Debug)]
pub struct ExportMeasurementSet {
    /// The provider's TIN.
    pub tin: Tin,
    /// The provider's NPI.
    pub npi: String,
    /// The performance year.
    pub year: i16,
}

impl TryFrom<pb::ExportMeasurementSetRequest> for ExportMeasurementSet {
    type Error = tonic::Status;

    fn try_from(request: pb::ExportMeasurementSetRequest) -> Result<Self, tonic::Status> {
        let mut violations = Violations::default();
        let tin = Tin::parse(&request.tin)
            .map_err(|error| violations.add("tin", error.to_string()))
            .ok();
        let npi = id_field(&request.npi, "npi", "npi", &mut violations);
        let year = i16::try_from(request.performance_year)
            .ok()
            .filter(|year| (2017..=9999).contains(year));
        if year.is_none() {
            violations.add(
                "performance_year",
                "performance_year is required: a year from 2017 (the first MIPS year), e.g. 2025",
            );
        }
        match (tin, npi, year) {
            (Some(tin), Some(npi), Some(year)) if violations.is_empty() => {
                Ok(ExportMeasurementSet { tin, npi, year })
            }
            _ => Err(violations.into_status(tonic::Code::InvalidArgument)),
        }
    }
}
