//! The checks: one claim against the edit tables and the code registry.
//!
//! Each check is a function of the claim and the tables that adds findings.
//! A claim has at most [`super::MAX_CLAIM_LINES`] lines, so the pair checks
//! look at every pair of lines (1,225 at most) in both orders: each line's
//! column-1 pairs are found once, then searched for each other line.

use super::{
    claim::{Claim, ClaimLine},
    edit_file::RowSource,
    edits::ClaimEdits,
    finding::{Finding, FindingKind, RuleSource, Severity},
    icd10cm::DiagnosisStanding,
    mue::Adjudication,
    pfs::GlobalPeriod,
    ptp::{ModifierIndicator, PairsOf},
};
use crate::{
    codes::{Category, CodeRegistry, CodeValue},
    measures::{CodeFinding, Modifier, judge_code, modifier_problem},
};

/// The modifiers NCCI accepts as marking a distinct procedural service.
pub const DISTINCT_SERVICE_MODIFIERS: [&str; 5] = ["59", "XE", "XS", "XP", "XU"];

/// The anatomic modifiers NCCI accepts as marking a different site: eyelids,
/// fingers, sides, coronary arteries and toes.
pub const ANATOMIC_MODIFIERS: [&str; 31] = [
    "E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "LC", "LD",
    "LM", "LT", "RC", "RI", "RT", "TA", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9",
];

/// Everything a check reads besides the claim.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    /// The edit tables.
    pub edits: &'a ClaimEdits,
    /// The code set.
    pub registry: &'a CodeRegistry,
}

impl CheckContext<'_> {
    fn source(&self, source: RowSource) -> Option<RuleSource> {
        self.edits.file_of(source).map(|file| RuleSource {
            file: file.name.clone(),
            edition: file.edition.clone(),
            row: source.row,
        })
    }
}

/// Every finding on `claim`, in line order, then by kind.
///
/// ```
/// use cptd::claims::{CheckContext, ClaimEdits, check_claim, Claim, ClaimLine, FindingKind};
/// use cptd::codes::{CodeRegistry, CodeValue};
/// use cptd::measures::Diagnosis;
/// use jiff::civil::date;
///
/// let edits = ClaimEdits::built_in().unwrap();
/// let registry = CodeRegistry::built_in().unwrap();
/// let line = |code: &str| ClaimLine {
///     code: CodeValue::parse(code).unwrap(),
///     modifiers: vec![],
///     units: 1,
///     diagnosis_pointers: vec![1],
/// };
/// let claim = Claim {
///     service_date: date(2024, 8, 1),
///     place_of_service: None,
///     provider_id: String::new(),
///     tin: None,
///     patient_age: None,
///     patient_sex: None,
///     diagnoses: vec![Diagnosis::parse("M47.816").unwrap()],
///     lines: vec![line("64483"), line("77003")],
/// };
/// let findings = check_claim(&claim, CheckContext { edits: &edits, registry: &registry });
/// assert!(findings.iter().any(|finding| finding.kind == FindingKind::PtpPair));
/// ```
pub fn check_claim(claim: &Claim, context: CheckContext<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    code_status(claim, context, &mut findings);
    ptp_pairs(claim, context, &mut findings);
    unlikely_units(claim, context, &mut findings);
    add_ons(claim, context, &mut findings);
    bilateral(claim, context, &mut findings);
    visit_on_procedure_day(claim, context, &mut findings);
    category_ii_units(claim, context, &mut findings);
    diagnoses(claim, context, &mut findings);
    // Stable: findings of one line and kind keep the order they were found in.
    findings.sort_by_key(|finding| {
        (
            finding.lines.first().copied().unwrap_or(usize::MAX),
            finding.kind,
        )
    });
    findings
}

/// True for an evaluation and management visit code (99202–99499).
pub fn is_visit(code: CodeValue) -> bool {
    // Five digits compare as their numbers do.
    code.category() == Some(Category::I) && ("99202"..="99499").contains(&code.as_str())
}

fn code_status(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    for (index, line) in claim.lines.iter().enumerate() {
        let code = line.code;
        match judge_code(context.registry, code, claim.service_date) {
            CodeFinding::Known => {}
            CodeFinding::NotReportable(message) => findings.push(Finding::new(
                FindingKind::CodeStatus,
                Severity::Deny,
                vec![index],
                "code not reportable on the date of service",
                message,
            )),
            CodeFinding::Unknown(_) => findings.push(Finding::new(
                FindingKind::CodeStatus,
                Severity::Info,
                vec![index],
                "code not in cptd's code set",
                format!(
                    "{code} is not in the loaded code set, so its status on {} is not checked; \
                     the CMS edits that name it still are",
                    claim.service_date
                ),
            )),
        }
        // Category II codes carry status M or I: they report measures and are
        // never paid, so their fee-schedule status says nothing about denial.
        if let Some(indicators) = context
            .edits
            .pfs
            .get(code)
            .filter(|_| code.category() != Some(Category::II))
        {
            let never_paid = match indicators.status {
                'B' => Some("bundled into other services and never paid on its own"),
                'I' => Some("not valid for Medicare; report the HCPCS code Medicare uses instead"),
                'N' => Some("not covered by Medicare"),
                'X' => Some("excluded from Medicare by statute"),
                _ => None,
            };
            if let Some(why) = never_paid {
                findings.push(
                    Finding::new(
                        FindingKind::CodeStatus,
                        Severity::Deny,
                        vec![index],
                        format!("PFS status {}", indicators.status),
                        format!(
                            "{code} has fee-schedule status {}: {why}",
                            indicators.status
                        ),
                    )
                    .from_source(context.source(indicators.source)),
                );
            }
        }
        for position in 0..line.modifiers.len() {
            if let Some(problem) = modifier_problem(code, &line.modifiers, position) {
                findings.push(Finding::new(
                    FindingKind::PerformanceModifier,
                    Severity::Deny,
                    vec![index],
                    "performance modifiers belong on Category II codes only",
                    problem,
                ));
            }
        }
    }
}

/// The modifier on `line` among `allowed`, if any.
fn carried(line: &ClaimLine, allowed: &[&str]) -> Option<Modifier> {
    line.modifiers
        .iter()
        .copied()
        .find(|modifier| allowed.contains(&modifier.as_str()))
}

/// The modifier that bypasses a pair whose indicator allows it: a
/// distinct-service modifier on either line, different anatomic sites on the
/// two, or 25 on the visit of a visit and procedure pair.
fn pair_bypass(paid: &ClaimLine, denied: &ClaimLine) -> Option<Modifier> {
    if let Some(modifier) = carried(denied, &DISTINCT_SERVICE_MODIFIERS)
        .or_else(|| carried(paid, &DISTINCT_SERVICE_MODIFIERS))
    {
        return Some(modifier);
    }
    let sites = |line: &ClaimLine| -> Vec<Modifier> {
        line.modifiers
            .iter()
            .copied()
            .filter(|modifier| ANATOMIC_MODIFIERS.contains(&modifier.as_str()))
            .collect()
    };
    let (paid_sites, denied_sites) = (sites(paid), sites(denied));
    if !paid_sites.is_empty()
        && !denied_sites.is_empty()
        && denied_sites.iter().all(|site| !paid_sites.contains(site))
    {
        return denied_sites.first().copied();
    }
    [denied, paid]
        .into_iter()
        .find(|line| is_visit(line.code))
        .and_then(|visit| carried(visit, &["25"]))
}

/// The distinct-service modifiers, and 25.
const VISIT_PAIR_MODIFIERS: [&str; 6] = ["59", "XE", "XS", "XP", "XU", "25"];

/// The modifiers besides anatomic ones that bypass a pair of these codes:
/// 25 counts only when one of them is a visit.
fn pair_bypass_modifiers(paid: CodeValue, denied: CodeValue) -> &'static [&'static str] {
    if is_visit(paid) || is_visit(denied) {
        &VISIT_PAIR_MODIFIERS
    } else {
        &DISTINCT_SERVICE_MODIFIERS
    }
}

fn ptp_pairs(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    let table = &context.edits.ptp;
    let of_column_1: Vec<PairsOf<'_>> = claim
        .lines
        .iter()
        .map(|line| table.of_column_1(line.code))
        .collect();
    for first in 0..claim.lines.len() {
        for second in first + 1..claim.lines.len() {
            let (a, b) = (&claim.lines[first], &claim.lines[second]);
            if a.code == b.code {
                continue;
            }
            // CMS lists some pairs in both orders. One finding per pair of
            // lines: the order that cannot be bypassed if either, else the one
            // whose column-1 code comes first on the claim.
            let forward = of_column_1[first].in_force(b.code, claim.service_date);
            let backward = of_column_1[second].in_force(a.code, claim.service_date);
            let (paid_index, denied_index, edit) = match (forward, backward) {
                (Some(forward), Some(backward))
                    if backward.indicator == ModifierIndicator::NotAllowed
                        && forward.indicator != ModifierIndicator::NotAllowed =>
                {
                    (second, first, backward)
                }
                (Some(forward), _) => (first, second, forward),
                (None, Some(backward)) => (second, first, backward),
                (None, None) => continue,
            };
            let (paid, denied) = (&claim.lines[paid_index], &claim.lines[denied_index]);
            let (column_1, column_2) = (paid.code, denied.code);
            let rule = format!(
                "NCCI PTP {column_1}/{column_2}, modifier indicator {}",
                edit.indicator.digit()
            );
            let why = table.rationale(edit);
            let lines = vec![denied_index, paid_index];
            let source = context.source(edit.source);
            let finding = match edit.indicator {
                ModifierIndicator::NotAllowed => Finding::new(
                    FindingKind::PtpPair,
                    Severity::Deny,
                    lines,
                    rule,
                    format!(
                        "{column_2} (line {denied_index}) is not paid with {column_1} (line \
                         {paid_index}) on the same date ({why}); no modifier bypasses this pair"
                    ),
                ),
                ModifierIndicator::Allowed => match pair_bypass(paid, denied) {
                    Some(modifier) => {
                        let mut finding = Finding::new(
                            FindingKind::PtpPair,
                            Severity::Review,
                            lines,
                            rule,
                            format!(
                                "{column_2} (line {denied_index}) is bundled into {column_1} (line \
                                 {paid_index}) ({why}); modifier {modifier} bypasses the edit, so \
                                 the record must show a separate site, session or service"
                            ),
                        )
                        .bypassable_by(pair_bypass_modifiers(column_1, column_2), true);
                        finding.bypassed_by = Some(modifier);
                        finding
                    }
                    None => Finding::new(
                        FindingKind::PtpPair,
                        Severity::Deny,
                        lines,
                        rule,
                        format!(
                            "{column_2} (line {denied_index}) is bundled into {column_1} (line \
                             {paid_index}) ({why}); if it was a separate site, session or \
                             service and the record says so, add an NCCI-associated modifier"
                        ),
                    )
                    .bypassable_by(pair_bypass_modifiers(column_1, column_2), true),
                },
                // Never returned by `in_force`.
                ModifierIndicator::NotApplicable => continue,
            };
            findings.push(finding.from_source(source));
        }
    }
}

/// The modifiers that let more units than a line MUE be reported on another
/// line of the same date.
const LINE_MUE_MODIFIERS: [&str; 7] = ["76", "77", "59", "XE", "XS", "XP", "XU"];

fn unlikely_units(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    let mut seen: Vec<CodeValue> = Vec::new();
    for line in &claim.lines {
        if seen.contains(&line.code) {
            continue;
        }
        seen.push(line.code);
        let code = line.code;
        let Some(edit) = context.edits.mue.get(code) else {
            continue;
        };
        let why = context.edits.mue.rationale(edit);
        // Written only for a finding: most codes are within their MUE.
        let rule = || {
            format!(
                "MUE {code}: {} unit(s), MAI {}",
                edit.units,
                edit.adjudication.number()
            )
        };
        let source = || context.source(edit.source);
        let lines = || -> Vec<usize> {
            claim
                .lines
                .iter()
                .enumerate()
                .filter(|(_, other)| other.code == code)
                .map(|(index, _)| index)
                .collect()
        };
        match edit.adjudication {
            Adjudication::Line => {
                for index in lines() {
                    let units = claim.lines[index].units;
                    if u32::from(units) > edit.units {
                        findings.push(
                            Finding::new(
                                FindingKind::Mue,
                                Severity::Deny,
                                vec![index],
                                rule(),
                                format!(
                                    "line {index} bills {units} units of {code}; CMS pays at most \
                                     {} on one line ({why}); units that were truly given at \
                                     another site or session go on a line of their own with a \
                                     modifier that says so",
                                    edit.units
                                ),
                            )
                            .bypassable_by(&LINE_MUE_MODIFIERS, true)
                            .from_source(source()),
                        );
                    }
                }
            }
            Adjudication::DatePolicy | Adjudication::DateClinical => {
                let total: u32 = claim
                    .lines
                    .iter()
                    .filter(|other| other.code == code)
                    .map(|other| u32::from(other.units))
                    .sum();
                if total <= edit.units {
                    continue;
                }
                let (severity, advice) = if edit.adjudication == Adjudication::DatePolicy {
                    (
                        Severity::Deny,
                        "this limit is policy and absolute: no modifier or appeal pays more",
                    )
                } else {
                    (
                        Severity::Review,
                        "this limit is clinical: the units beyond it are denied, but a \
                         contractor may pay them on appeal if the record supports them",
                    )
                };
                findings.push(
                    Finding::new(
                        FindingKind::Mue,
                        severity,
                        lines(),
                        rule(),
                        format!(
                            "{total} units of {code} on {}; CMS pays at most {} per date of \
                             service ({why}); {advice}",
                            claim.service_date, edit.units
                        ),
                    )
                    .from_source(source()),
                );
            }
        }
    }
}

/// True when `code` is an add-on: the add-on edits list it, or its global
/// period is ZZZ.
fn is_add_on(code: CodeValue, edits: &ClaimEdits) -> bool {
    edits.add_ons.get(code).is_some()
        || edits
            .pfs
            .get(code)
            .is_some_and(|indicators| indicators.global == GlobalPeriod::AddOn)
}

fn add_ons(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    let edits = context.edits;
    let on_claim = |code: CodeValue| claim.lines.iter().any(|line| line.code == code);
    let has_other_procedure = |own: CodeValue| {
        claim.lines.iter().any(|line| {
            line.code != own
                && !is_add_on(line.code, edits)
                && line.code.category() != Some(Category::II)
        })
    };
    for (index, line) in claim.lines.iter().enumerate() {
        let code = line.code;
        if let Some(rows) = edits.add_ons.get(code) {
            let primaries: Vec<CodeValue> = rows.iter().filter_map(|row| row.primary).collect();
            if primaries.iter().any(|primary| on_claim(*primary)) {
                continue;
            }
            let first = rows[0];
            let listed: Vec<&str> = primaries.iter().map(CodeValue::as_str).collect();
            let kind = rows
                .iter()
                .map(|row| row.kind)
                .max_by_key(|kind| kind.number())
                .unwrap_or(first.kind);
            let rule = format!("NCCI add-on code edit {code}, type {}", kind.number());
            let (severity, message) = match kind {
                super::add_on::AddOnType::Listed => (
                    Severity::Deny,
                    format!(
                        "{code} is an add-on paid only with one of its primary codes ({}), and \
                         none is on the claim",
                        listed.join(", ")
                    ),
                ),
                super::add_on::AddOnType::ListedAndOthers => (
                    Severity::Review,
                    format!(
                        "{code} is an add-on; none of the primary codes CMS lists ({}) is on the \
                         claim, and the contractor decides whether another primary is accepted",
                        listed.join(", ")
                    ),
                ),
                super::add_on::AddOnType::ContractorDefined => {
                    if has_other_procedure(code) {
                        continue;
                    }
                    (
                        Severity::Deny,
                        format!(
                            "{code} is an add-on and the claim has no procedure it could add to"
                        ),
                    )
                }
            };
            findings.push(
                Finding::new(
                    FindingKind::AddOnWithoutPrimary,
                    severity,
                    vec![index],
                    rule,
                    message,
                )
                .from_source(context.source(first.source)),
            );
        } else if let Some(indicators) = edits.pfs.get(code)
            && indicators.global == GlobalPeriod::AddOn
            && !has_other_procedure(code)
        {
            findings.push(
                Finding::new(
                    FindingKind::AddOnWithoutPrimary,
                    Severity::Deny,
                    vec![index],
                    format!("PFS global period ZZZ for {code}"),
                    format!(
                        "{code} is an add-on (its global period is ZZZ) and the claim has no \
                         procedure it could add to"
                    ),
                )
                .from_source(context.source(indicators.source)),
            );
        }
    }
}

fn bilateral(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    for (index, line) in claim.lines.iter().enumerate() {
        let Some(indicators) = context.edits.pfs.get(line.code) else {
            continue;
        };
        let code = line.code;
        // Written only for a finding: most lines carry neither 50 nor a side.
        let rule = || {
            format!(
                "PFS bilateral indicator {} for {code}",
                indicators.bilateral
            )
        };
        let source = || context.source(indicators.source);
        if line.has("50") {
            let why = match indicators.bilateral {
                0 => Some(
                    "the fee schedule does not pay it as a bilateral procedure; report each side as CMS allows (RT and LT) or once",
                ),
                2 => Some("its value already covers both sides; report it once without 50"),
                9 => Some("the bilateral concept does not apply to it; report it without 50"),
                _ => None,
            };
            if let Some(why) = why {
                findings.push(
                    Finding::new(
                        FindingKind::Bilateral,
                        Severity::Deny,
                        vec![index],
                        rule(),
                        format!("{code} carries modifier 50, but {why}"),
                    )
                    .from_source(source()),
                );
            }
        }
        if indicators.bilateral == 1 && line.has("RT") && !line.has("50") {
            let pair = claim.lines.iter().enumerate().find(|(other_index, other)| {
                *other_index != index && other.code == code && other.has("LT") && !other.has("50")
            });
            if let Some((other_index, _)) = pair {
                findings.push(
                    Finding::new(
                        FindingKind::Bilateral,
                        Severity::Deny,
                        vec![other_index, index],
                        rule(),
                        format!(
                            "{code} is billed for the right side (line {index}) and the left \
                             (line {other_index}); for a code with bilateral indicator 1, \
                             Medicare wants one line with modifier 50 and 1 unit"
                        ),
                    )
                    .from_source(source()),
                );
            }
        }
    }
}

fn visit_on_procedure_day(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    let procedure = claim.lines.iter().enumerate().find_map(|(index, line)| {
        let indicators = context.edits.pfs.get(line.code)?;
        matches!(indicators.global, GlobalPeriod::Zero | GlobalPeriod::Ten)
            .then_some((index, line.code, indicators))
    });
    let Some((procedure_index, procedure_code, indicators)) = procedure else {
        return;
    };
    let rule = format!(
        "PFS global period {} for {procedure_code}",
        indicators.global.as_str()
    );
    for (index, line) in claim.lines.iter().enumerate() {
        if !is_visit(line.code) {
            continue;
        }
        let visit = line.code;
        let finding = match carried(line, &["25"]) {
            Some(modifier) => {
                let mut finding = Finding::new(
                    FindingKind::Modifier25,
                    Severity::Review,
                    vec![index, procedure_index],
                    rule.clone(),
                    format!(
                        "{visit} (line {index}) is billed with 25 on the day of {procedure_code}, \
                         a {}-day global procedure; the record must show a significant, separately \
                         identifiable visit beyond the procedure's own evaluation",
                        indicators.global.as_str()
                    ),
                )
                .bypassable_by(&["25"], false);
                finding.bypassed_by = Some(modifier);
                finding
            }
            None => Finding::new(
                FindingKind::Modifier25,
                Severity::Deny,
                vec![index, procedure_index],
                rule.clone(),
                format!(
                    "{visit} (line {index}) is on the day of {procedure_code}, a {}-day global \
                     procedure whose payment includes that day's visit; add 25 only if the \
                     visit was significant and separately identifiable",
                    indicators.global.as_str()
                ),
            )
            .bypassable_by(&["25"], false),
        };
        findings.push(finding.from_source(context.source(indicators.source)));
    }
}

fn category_ii_units(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    for (index, line) in claim.lines.iter().enumerate() {
        if line.code.category() != Some(Category::II) || line.units <= 1 {
            continue;
        }
        let source = context
            .edits
            .pfs
            .get(line.code)
            .and_then(|indicators| context.source(indicators.source));
        findings.push(
            Finding::new(
                FindingKind::CategoryIiUnits,
                Severity::Deny,
                vec![index],
                "Category II codes are billed with one unit",
                format!(
                    "{} is a Category II code, which reports that a measure's action happened, \
                     once; bill it with 1 unit, not {}",
                    line.code, line.units
                ),
            )
            .from_source(source),
        );
    }
}

fn diagnoses(claim: &Claim, context: CheckContext<'_>, findings: &mut Vec<Finding>) {
    let list = &context.edits.icd10cm;
    for (position, diagnosis) in claim.diagnoses.iter().enumerate() {
        let (standing, row) = list.standing(diagnosis.compact());
        let (rule, message) = match standing {
            DiagnosisStanding::Billable => continue,
            DiagnosisStanding::Header => {
                let children = list.billable_under(diagnosis.compact(), 6);
                (
                    "ICD-10-CM category header",
                    format!(
                        "{diagnosis} is a category header, not valid on a claim; report one of \
                         the codes under it{}",
                        if children.is_empty() {
                            String::new()
                        } else {
                            format!(", e.g. {}", children.join(", "))
                        }
                    ),
                )
            }
            DiagnosisStanding::Unknown => (
                "not an ICD-10-CM code",
                format!("{diagnosis} is not an ICD-10-CM code in the loaded edition"),
            ),
        };
        let source = match row {
            Some(row) => context.source(row),
            None => context
                .edits
                .files()
                .iter()
                .find(|file| file.kind == super::EditFileKind::Icd10Cm)
                .map(|file| RuleSource {
                    file: file.name.clone(),
                    edition: file.edition.clone(),
                    row: 0,
                }),
        };
        let pointer = u8::try_from(position + 1).unwrap_or(u8::MAX);
        let lines: Vec<usize> = claim
            .lines
            .iter()
            .enumerate()
            .filter(|(_, line)| line.diagnosis_pointers.contains(&pointer))
            .map(|(index, _)| index)
            .collect();
        let mut finding =
            Finding::new(FindingKind::Diagnosis, Severity::Deny, lines, rule, message)
                .from_source(source);
        finding.diagnosis = Some(position);
        findings.push(finding);
    }
    for (index, line) in claim.lines.iter().enumerate() {
        if line.diagnosis_pointers.is_empty() {
            findings.push(Finding::new(
                FindingKind::DiagnosisPointer,
                Severity::Deny,
                vec![index],
                "every line points at a diagnosis",
                format!(
                    "line {index} ({}) points at no diagnosis; point it at the diagnosis it treats",
                    line.code
                ),
            ));
        }
        for pointer in &line.diagnosis_pointers {
            if usize::from(*pointer) > claim.diagnoses.len() {
                findings.push(Finding::new(
                    FindingKind::DiagnosisPointer,
                    Severity::Deny,
                    vec![index],
                    "a pointer names a diagnosis on the claim",
                    format!(
                        "line {index} ({}) points at diagnosis {pointer}, but the claim has {}",
                        line.code,
                        claim.diagnoses.len()
                    ),
                ));
            }
        }
    }
}
