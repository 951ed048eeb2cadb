//! The request conversions, reachable from the fuzz targets in `fuzz/` (built
//! only with the `fuzzing` feature): bytes as a client could send them,
//! decoded as a request and converted as the services convert it.

use std::sync::LazyLock;

use prost::Message;

use super::{
    code_requests::{BatchGetCodes, GetCode, ListCodes, SearchCodes, ValidateCodes},
    quality_requests::{
        EncounterId, EncounterRules, ExportMeasurementSet, GetMeasure, GetPerformance,
        ListCareGaps, ListMeasures, parse_encounter,
    },
};
use crate::{codes::CodeRegistry, pb};

static REGISTRY: LazyLock<Option<CodeRegistry>> = LazyLock::new(|| CodeRegistry::built_in().ok());

/// Decodes `data` (after its first byte, which picks the method) as that
/// method's request and converts it; a request that converts is asked of
/// the built-in code set where that needs no store. Must never panic.
pub fn convert_request(data: &[u8]) {
    let Some((&method, bytes)) = data.split_first() else {
        return;
    };
    fn convert<M: Message + Default, T: TryFrom<M>>(bytes: &[u8]) -> Option<T> {
        T::try_from(M::decode(bytes).ok()?).ok()
    }
    let Some(registry) = REGISTRY.as_ref() else {
        return;
    };
    match method % 12 {
        0 => {
            if let Some(get) = convert::<pb::GetCodeRequest, GetCode>(bytes) {
                let _ = registry.get(get.code, get.as_of);
            }
        }
        1 => {
            if let Some(batch) = convert::<pb::BatchGetCodesRequest, BatchGetCodes>(bytes) {
                let _ = batch.look_up(registry);
            }
        }
        2 => drop(convert::<pb::ValidateCodesRequest, ValidateCodes>(bytes)),
        3 => {
            if let Some(search) = convert::<pb::SearchCodesRequest, SearchCodes>(bytes) {
                let _ = super::code_lookup::search_response(registry, &search);
            }
        }
        4 => drop(convert::<pb::ListCodesRequest, ListCodes>(bytes)),
        5 => drop(convert::<pb::ListMeasuresRequest, ListMeasures>(bytes)),
        6 => drop(convert::<pb::GetMeasureRequest, GetMeasure>(bytes)),
        7 => drop(convert::<pb::GetPerformanceRequest, GetPerformance>(bytes)),
        8 => drop(convert::<pb::VoidEncounterRequest, EncounterId>(bytes)),
        9 => drop(convert::<pb::ListCareGapsRequest, ListCareGaps>(bytes)),
        10 => drop(convert::<
            pb::ExportMeasurementSetRequest,
            ExportMeasurementSet,
        >(bytes)),
        _ => {
            if let Ok(request) = pb::RecordEncounterRequest::decode(bytes) {
                let rules = EncounterRules {
                    registry,
                    strict_codes: method & 0x80 != 0,
                    today: crate::calendar::today(),
                };
                let _ = parse_encounter(request.encounter.as_ref(), request.replace, &rules);
            }
        }
    }
}
