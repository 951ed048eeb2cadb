//! `ImportEncountersRequest` messages decoded into one value kept from message
//! to message.
//!
//! prost's `decode` builds a new `pb::Encounter` for every message: a dozen
//! allocations or so (every id, the date, the lists), all freed again once the
//! encounter is parsed into domain types. An import does this for every
//! encounter on its preparation threads. Cleared instead of dropped, one
//! value keeps its strings' and lists' room: the import threads' CPU per
//! encounter fell by a tenth (BENCHMARKS.md, session 9).

use prost::{
    DecodeError,
    bytes::{Buf, Bytes},
    encoding::{DecodeContext, bool as protobuf_bool, decode_key, message, skip_field},
};

use crate::pb;

/// Field numbers of `cpt.v1.ImportEncountersRequest`.
const ENCOUNTER_FIELD: u32 = 1;
const REPLACE_FIELD: u32 = 2;

/// One message, as [`RequestDecoder::decode`] read it.
#[derive(Debug, PartialEq)]
pub struct DecodedRequest<'a> {
    /// The encounter, unless the message had none.
    pub encounter: Option<&'a pb::Encounter>,
    pub replace: bool,
}

/// Decodes import messages one after another into the same encounter value.
#[derive(Debug, Default)]
pub struct RequestDecoder {
    encounter: pb::Encounter,
}

impl RequestDecoder {
    /// Reads `bytes` as `pb::ImportEncountersRequest::decode` would: unknown
    /// fields skipped, and an encounter sent in several parts merged, as
    /// protobuf merges a repeated message field.
    pub fn decode(&mut self, mut bytes: Bytes) -> Result<DecodedRequest<'_>, DecodeError> {
        prost::Message::clear(&mut self.encounter);
        let (mut has_encounter, mut replace) = (false, false);
        while bytes.has_remaining() {
            let (field, wire_type) = decode_key(&mut bytes)?;
            let context = DecodeContext::default();
            match field {
                ENCOUNTER_FIELD => {
                    has_encounter = true;
                    message::merge(wire_type, &mut self.encounter, &mut bytes, context)?;
                }
                REPLACE_FIELD => {
                    protobuf_bool::merge(wire_type, &mut replace, &mut bytes, context)?
                }
                _ => skip_field(wire_type, field, &mut bytes, context)?,
            }
        }
        Ok(DecodedRequest {
            encounter: has_encounter.then_some(&self.encounter),
            replace,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    fn encounter(
        id: &str,
        place: &str,
        codes: &[(&str, &[&str])],
        diagnoses: &[&str],
    ) -> pb::Encounter {
        pb::Encounter {
            encounter_id: id.into(),
            patient_id: "MRN-1".into(),
            provider_id: "npi-1".into(),
            service_date: "2025-03-04".into(),
            place_of_service: place.into(),
            patient_age: (!place.is_empty()).then_some(61),
            patient_sex: String::new(),
            codes: codes
                .iter()
                .map(|(code, modifiers)| pb::EncounterCode {
                    code: (*code).into(),
                    modifiers: modifiers.iter().map(|m| (*m).into()).collect(),
                    units: 1,
                })
                .collect(),
            diagnoses: diagnoses.iter().map(|d| (*d).into()).collect(),
        }
    }

    fn request(encounter: Option<pb::Encounter>, replace: bool) -> Vec<u8> {
        pb::ImportEncountersRequest { encounter, replace }.encode_to_vec()
    }

    /// Messages in an order where each leaves more behind than the next
    /// holds, so a decoder that kept anything from one message in the next
    /// would be caught.
    fn messages() -> Vec<Vec<u8>> {
        let full = encounter(
            "e1",
            "11",
            &[("99213", &["25"]), ("1125F", &[])],
            &["C50.911", "G89.3"],
        );
        let small = encounter("e2", "", &[("99213", &[])], &[]);
        let mut unknown_field = request(Some(small.clone()), false);
        // Field 15, varint 1: not in the message, to be skipped.
        unknown_field.extend([0x78, 0x01]);
        let mut in_two_parts = request(Some(encounter("e3", "", &[("1126F", &[])], &[])), false);
        in_two_parts.extend(request(Some(encounter("", "22", &[], &["G89.3"])), true));
        vec![
            request(Some(full), true),
            request(Some(small), false),
            request(None, true),
            request(Some(pb::Encounter::default()), false),
            unknown_field,
            in_two_parts,
            Vec::new(),
        ]
    }

    #[test]
    fn messages_decode_as_prost_decodes_them_one_after_another() {
        let mut decoder = RequestDecoder::default();
        for bytes in messages() {
            let expected = pb::ImportEncountersRequest::decode(bytes.as_slice()).unwrap();
            let decoded = decoder.decode(Bytes::from(bytes)).unwrap();
            assert_eq!(decoded.encounter, expected.encounter.as_ref());
            assert_eq!(decoded.replace, expected.replace);
        }
    }

    #[test]
    fn what_prost_refuses_is_refused() {
        let mut decoder = RequestDecoder::default();
        let mut cut_short = request(Some(encounter("e1", "11", &[("99213", &[])], &[])), false);
        cut_short.truncate(cut_short.len() - 3);
        let mut not_utf8 = request(Some(encounter("e1", "", &[], &[])), false);
        let at = not_utf8.iter().position(|byte| *byte == b'e').unwrap();
        not_utf8[at] = 0xff;
        for bytes in [vec![0x00, 0x01, 0x02], cut_short, not_utf8] {
            assert!(pb::ImportEncountersRequest::decode(bytes.as_slice()).is_err());
            assert!(decoder.decode(Bytes::from(bytes)).is_err());
        }
    }
}
