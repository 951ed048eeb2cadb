//! What cptd knows of CMS's claims measures that CMS's measure files do not
//! say: how CMS counts each (its calculation type, which CMS's public engine
//! keeps in code by measure number), which are inverse, and measure 226's
//! strata. Facts of the 2025 performance year, whose list of 25 claims measures
//! stands unchanged in 2026 and 2027. A file's own keys (`calculationType`,
//! `isInverse`, `strata`, `overallAlgorithm`, `additionalProcedureCodes`) take
//! precedence over these.

use super::{
    CalculationType::{self, *},
    definition::{OverallAlgorithm, QualityCode, Stratum},
};
use crate::codes::CodeValue;

/// One CMS claims measure.
#[derive(Debug, Clone, Copy)]
pub(super) struct KnownMeasure {
    pub id: &'static str,
    pub calculation: CalculationType,
    pub inverse: bool,
    /// Stratum names, in option-group order, for a multi-strata measure.
    pub strata: Option<&'static [&'static str]>,
    pub overall: Option<OverallAlgorithm>,
    /// A code every claim of the named stratum must carry to enter it.
    pub stratum_requires: Option<(&'static str, &'static str)>,
}

const fn counted(id: &'static str, calculation: CalculationType) -> KnownMeasure {
    KnownMeasure {
        id,
        calculation,
        inverse: false,
        strata: None,
        overall: None,
        stratum_requires: None,
    }
}

const fn inverse(id: &'static str, calculation: CalculationType) -> KnownMeasure {
    KnownMeasure {
        inverse: true,
        ..counted(id, calculation)
    }
}

/// The 2025 claims measures, in id order.
const KNOWN: [KnownMeasure; 25] = [
    inverse("001", PatientIntermediate),
    counted("024", IntersectingDiagnosis),
    counted("039", PatientProcess),
    counted("047", PatientProcess),
    counted("112", PatientProcess),
    counted("113", PatientProcess),
    counted("128", PatientIntermediate),
    counted("134", PatientProcess),
    counted("141", PatientProcess),
    counted("145", Procedure),
    counted("181", PatientProcess),
    // Tobacco use: screening, then cessation for users only (the performance
    // stratum's claims must report G9902, tobacco user), then both together.
    KnownMeasure {
        strata: Some(&["reporting", "performance", "combinedPopulations"]),
        overall: Some(OverallAlgorithm::Split),
        stratum_requires: Some(("performance", "G9902")),
        ..counted("226", PatientProcess)
    },
    counted("236", PatientIntermediate),
    counted("249", Procedure),
    counted("250", Procedure),
    counted("261", PatientProcess),
    counted("317", PatientProcess),
    counted("320", Procedure),
    counted("395", Procedure),
    counted("396", Procedure),
    counted("397", Procedure),
    counted("405", Procedure),
    inverse("406", Procedure),
    counted("418", IntersectingDiagnosis),
    counted("422", Procedure),
];

/// What cptd knows of the CMS claims measure `id`.
pub(super) fn known(id: &str) -> Option<&'static KnownMeasure> {
    KNOWN.iter().find(|known| known.id == id)
}

impl KnownMeasure {
    /// Adds the code a stratum requires to each of its eligibility options,
    /// unless the file already names codes the options require.
    pub fn add_required_codes(&self, strata: &mut [Stratum]) {
        let Some((name, code)) = self.stratum_requires else {
            return;
        };
        let Ok(code) = CodeValue::parse(code) else {
            return;
        };
        let stratum = strata
            .iter_mut()
            .find(|stratum| stratum.name.as_deref() == Some(name));
        for option in stratum
            .into_iter()
            .flat_map(|stratum| &mut stratum.eligibility)
        {
            if option.required.is_empty() {
                option.required.push(QualityCode {
                    code,
                    modifiers: Vec::new(),
                    modifier_exclusions: Vec::new(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_id_order_and_every_id_once() {
        assert!(KNOWN.windows(2).all(|pair| pair[0].id < pair[1].id));
    }
}
