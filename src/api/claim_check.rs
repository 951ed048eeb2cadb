//! The `cpt.v1.ClaimCheck` service: parse the claim, run the checks against
//! the current edit tables and code set, convert the findings back.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tonic::{Request, Response, Status, metadata::AsciiMetadataValue};

use super::{claim_requests::parse_claim, code_lookup::name_registry};
use crate::{
    claims::{
        CheckContext, ClaimEdits, Finding, FindingKind, QualityGap, RuleSource, Severity,
        check_claim, quality_gaps,
    },
    codes::CodeRegistry,
    measures::MeasureSet,
    pb::{self, claim_check_server::ClaimCheck},
};

/// Response metadata naming the editions of the edit files that answered.
pub const CLAIM_EDITS_VERSION_HEADER: &str = "cptd-claim-edits-version";

/// Serves `ClaimCheck` from whichever edit tables and code set are current
/// when a call arrives; a call keeps both to its end.
#[derive(Debug, Clone)]
pub struct ClaimCheckService {
    registry: Arc<ArcSwap<CodeRegistry>>,
    edits: Arc<ArcSwap<ClaimEdits>>,
    measures: Arc<MeasureSet>,
}

impl ClaimCheckService {
    /// A service over the shared, swappable code set and edit tables, and the
    /// measures in force.
    pub fn new(
        registry: Arc<ArcSwap<CodeRegistry>>,
        edits: Arc<ArcSwap<ClaimEdits>>,
        measures: Arc<MeasureSet>,
    ) -> ClaimCheckService {
        ClaimCheckService {
            registry,
            edits,
            measures,
        }
    }
}

#[tonic::async_trait]
impl ClaimCheck for ClaimCheckService {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn check_claim(
        &self,
        request: Request<pb::CheckClaimRequest>,
    ) -> Result<Response<pb::CheckClaimResponse>, Status> {
        let claim = parse_claim(request.get_ref())
            .map_err(|violations| violations.into_status(tonic::Code::InvalidArgument))?;
        let registry = self.registry.load();
        let edits = self.edits.load();
        let context = CheckContext {
            edits: &edits,
            registry: &registry,
        };
        let findings = check_claim(&claim, context);
        let gaps = quality_gaps(&claim, &self.measures);
        let mut response = Response::new(pb::CheckClaimResponse {
            findings: findings.into_iter().map(pb::Finding::from).collect(),
            quality_gaps: gaps.iter().map(pb::QualityGap::from).collect(),
        });
        name_registry(&mut response, registry.version());
        if let Ok(version) = AsciiMetadataValue::try_from(&**edits.version()) {
            response
                .metadata_mut()
                .insert(CLAIM_EDITS_VERSION_HEADER, version);
        }
        Ok(response)
    }
}

impl From<FindingKind> for pb::FindingKind {
    fn from(kind: FindingKind) -> pb::FindingKind {
        match kind {
            FindingKind::CodeStatus => pb::FindingKind::CodeStatus,
            FindingKind::PerformanceModifier => pb::FindingKind::PerformanceModifier,
            FindingKind::PtpPair => pb::FindingKind::PtpPair,
            FindingKind::Mue => pb::FindingKind::Mue,
            FindingKind::AddOnWithoutPrimary => pb::FindingKind::AddOnWithoutPrimary,
            FindingKind::Bilateral => pb::FindingKind::Bilateral,
            FindingKind::Modifier25 => pb::FindingKind::Modifier25,
            FindingKind::CategoryIiUnits => pb::FindingKind::CategoryIiUnits,
            FindingKind::Diagnosis => pb::FindingKind::Diagnosis,
            FindingKind::DiagnosisPointer => pb::FindingKind::DiagnosisPointer,
        }
    }
}

impl From<Severity> for pb::Severity {
    fn from(severity: Severity) -> pb::Severity {
        match severity {
            Severity::Deny => pb::Severity::Deny,
            Severity::Review => pb::Severity::Review,
            Severity::Info => pb::Severity::Info,
        }
    }
}

impl From<&RuleSource> for pb::RuleSource {
    fn from(source: &RuleSource) -> pb::RuleSource {
        pb::RuleSource {
            file: source.file.to_string(),
            edition: source.edition.to_string(),
            row: i64::from(source.row),
        }
    }
}

fn position(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

impl From<Finding> for pb::Finding {
    fn from(finding: Finding) -> pb::Finding {
        pb::Finding {
            lines: finding.lines.iter().copied().map(position).collect(),
            kind: pb::FindingKind::from(finding.kind).into(),
            severity: pb::Severity::from(finding.severity).into(),
            bypassable: finding.is_bypassable(),
            rule: finding.rule,
            source: finding.source.as_ref().map(pb::RuleSource::from),
            bypass_modifiers: finding
                .bypass_modifiers
                .iter()
                .map(|modifier| modifier.to_string())
                .collect(),
            bypassed_by: finding
                .bypassed_by
                .map(|modifier| modifier.to_string())
                .unwrap_or_default(),
            message: finding.message,
            diagnosis_index: finding.diagnosis.map_or(-1, position),
            anatomic_modifiers_bypass: finding.anatomic_bypass,
        }
    }
}

impl From<&QualityGap> for pb::QualityGap {
    fn from(gap: &QualityGap) -> pb::QualityGap {
        let stratum = gap.measure.strata.get(gap.stratum);
        pb::QualityGap {
            measure_id: gap.measure.id.to_string(),
            measure_title: gap.measure.title.clone(),
            stratum: stratum
                .and_then(|stratum| stratum.name.as_deref())
                .unwrap_or_default()
                .to_string(),
            reporting_options: gap
                .reporting_options()
                .iter()
                .map(pb::PerformanceOption::from)
                .collect(),
            message: gap.message(),
        }
    }
}
