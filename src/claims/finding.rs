//! What a check says about a claim: findings, each naming its lines, its rule
//! and where the rule came from.

use std::sync::Arc;

use crate::measures::Modifier;

/// The kind of edit a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// A code status on the date of service (deleted, not yet effective,
    /// sunset, unknown, or a fee-schedule status that is never paid).
    CodeStatus,
    /// A performance modifier on a code that is not Category II.
    PerformanceModifier,
    /// An NCCI procedure-to-procedure pair.
    PtpPair,
    /// A medically unlikely edit.
    Mue,
    /// An add-on without one of its primaries.
    AddOnWithoutPrimary,
    /// Bilateral reporting against the bilateral indicator.
    Bilateral,
    /// An E/M on the day of a 0- or 10-day global procedure.
    Modifier25,
    /// A Category II code with more than one unit.
    CategoryIiUnits,
    /// A diagnosis not valid on a claim.
    Diagnosis,
    /// A line pointing at no diagnosis.
    DiagnosisPointer,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// A payer will deny the line as it stands.
    Deny,
    /// A person must look.
    Review,
    /// Worth knowing.
    Info,
}

/// The file, edition and row a rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// The file's name.
    pub file: Arc<str>,
    /// Its edition.
    pub edition: Arc<str>,
    /// The line, from 1.
    pub row: u32,
}

/// One edit that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The lines concerned, positions from 0; the one denied first.
    pub lines: Vec<usize>,
    /// The kind of edit.
    pub kind: FindingKind,
    /// How much it matters.
    pub severity: Severity,
    /// The rule in a few words.
    pub rule: String,
    /// Where the rule came from; `None` for cptd's own rules.
    pub source: Option<RuleSource>,
    /// The modifiers that may legitimately bypass it.
    pub bypass_modifiers: &'static [&'static str],
    /// Different anatomic modifiers on the lines concerned (RT and LT, two
    /// fingers, …) bypass it; the anatomic modifiers are not repeated in
    /// `bypass_modifiers`.
    pub anatomic_bypass: bool,
    /// The modifier on the claim that bypasses it.
    pub bypassed_by: Option<Modifier>,
    /// What is wrong and what to do.
    pub message: String,
    /// The diagnosis concerned, a position from 0.
    pub diagnosis: Option<usize>,
}

impl Finding {
    /// A finding with no bypass and no diagnosis; the builders below add them.
    pub fn new(
        kind: FindingKind,
        severity: Severity,
        lines: Vec<usize>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            lines,
            kind,
            severity,
            rule: rule.into(),
            source: None,
            bypass_modifiers: &[],
            anatomic_bypass: false,
            bypassed_by: None,
            message: message.into(),
            diagnosis: None,
        }
    }

    /// The same, with its source.
    pub fn from_source(mut self, source: Option<RuleSource>) -> Finding {
        self.source = source;
        self
    }

    /// The same, bypassable by `modifiers`, and by different anatomic
    /// modifiers on its lines when `anatomic`.
    pub fn bypassable_by(mut self, modifiers: &'static [&'static str], anatomic: bool) -> Finding {
        self.bypass_modifiers = modifiers;
        self.anatomic_bypass = anatomic;
        self
    }

    /// True when some modifier may bypass it.
    pub fn is_bypassable(&self) -> bool {
        !self.bypass_modifiers.is_empty() || self.anatomic_bypass
    }
}
