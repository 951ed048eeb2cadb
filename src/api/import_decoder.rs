//! `ImportEncountersRequest` messages decoded into one value kept from message
//! to message.
//!
//! prost's `decode` builds a new `pb::Encounter` for every message: a dozen
//! allocations or so (every id, the date, the lists), all freed again once the
//! encounter is parsed into domain types. An import does this for every
//! encounter on its preparation threads. Cleared instead of dropped, one
//! value keeps its strings' and lists' room: the import threads' CPU per
//! encounter fell by a tenth (BENCHMARKS.md, session 9). Clearing a list
//! still drops its items, each with a string of its own, so the codes and
//! diagnoses of one message are kept aside and decoded into again by the
//! next.

use prost::{
    DecodeError, Message,
    bytes::{Buf, Bytes},
    encoding::{
        DecodeContext, WireType, bool as protobuf_bool, check_wire_type, decode_key, merge_loop,
        message, skip_field, string,
    },
};

use crate::pb;

/// Field numbers of `cpt.v1.ImportEncountersRequest`.
const ENCOUNTER_FIELD: u32 = 1;
const REPLACE_FIELD: u32 = 2;

/// Field numbers of `cpt.v1.Encounter`'s lists.
const CODES_FIELD: u32 = 8;
const DIAGNOSES_FIELD: u32 = 9;

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
    /// Codes and diagnoses of earlier messages, to decode the next ones into.
    spare_codes: Vec<pb::EncounterCode>,
    spare_diagnoses: Vec<String>,
}

impl RequestDecoder {
    /// Reads `bytes` as `pb::ImportEncountersRequest::decode` would: unknown
    /// fields skipped, and an encounter sent in several parts merged, as
    /// protobuf merges a repeated message field.
    pub fn decode(&mut self, mut bytes: Bytes) -> Result<DecodedRequest<'_>, DecodeError> {
        self.spare_codes.append(&mut self.encounter.codes);
        self.spare_diagnoses.append(&mut self.encounter.diagnoses);
        self.encounter.clear();
        let (mut has_encounter, mut replace) = (false, false);
        while bytes.has_remaining() {
            let (field, wire_type) = decode_key(&mut bytes)?;
            let context = DecodeContext::default();
            match field {
                ENCOUNTER_FIELD => {
                    has_encounter = true;
                    self.merge_encounter(wire_type, &mut bytes, context)
                        .map_err(|mut error| {
                            error.push("ImportEncountersRequest", "encounter");
                            error
                        })?;
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

    /// Merges one encoded encounter into the kept one as prost's
    /// `message::merge` would, but with each code and diagnosis decoded into
    /// a spare one when there is one.
    fn merge_encounter(
        &mut self,
        wire_type: WireType,
        bytes: &mut Bytes,
        context: DecodeContext,
    ) -> Result<(), DecodeError> {
        check_wire_type(WireType::LengthDelimited, wire_type)?;
        let RequestDecoder {
            encounter,
            spare_codes,
            spare_diagnoses,
        } = self;
        merge_loop(encounter, bytes, context, |encounter, bytes, context| {
            let (field, wire_type) = decode_key(bytes)?;
            let merged = match field {
                CODES_FIELD => merge_item(&mut encounter.codes, spare_codes, |code| {
                    code.clear();
                    message::merge(wire_type, code, bytes, context)
                })
                .map_err(|error| (error, "codes")),
                DIAGNOSES_FIELD => {
                    merge_item(&mut encounter.diagnoses, spare_diagnoses, |diagnosis| {
                        diagnosis.clear();
                        string::merge(wire_type, diagnosis, bytes, context)
                    })
                    .map_err(|error| (error, "diagnoses"))
                }
                _ => return encounter.merge_field(field, wire_type, bytes, context),
            };
            merged.map_err(|(mut error, list)| {
                error.push("Encounter", list);
                error
            })
        })
    }
}

/// Decodes one item of a list into a spare one, or a new one when none is
/// left, and appends it.
fn merge_item<T: Default>(
    list: &mut Vec<T>,
    spares: &mut Vec<T>,
    merge: impl FnOnce(&mut T) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut item = spares.pop().unwrap_or_default();
    let merged = merge(&mut item);
    list.push(item);
    merged
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    /// A message whose first byte equal to `target` is made invalid UTF-8.
    fn spoiled(bytes: Vec<u8>, target: u8) -> Vec<u8> {
        let mut bytes = bytes;
        let at = bytes.iter().position(|byte| *byte == target).unwrap();
        bytes[at] = 0xff;
        bytes
    }

    #[test]
    fn what_prost_refuses_is_refused_with_prosts_words() {
        let mut decoder = RequestDecoder::default();
        let mut cut_short = request(Some(encounter("e1", "11", &[("99213", &[])], &[])), false);
        cut_short.truncate(cut_short.len() - 3);
        let refused = [
            vec![0x00, 0x01, 0x02],
            cut_short,
            spoiled(request(Some(encounter("e1", "", &[], &[])), false), b'e'),
            spoiled(
                request(Some(encounter("x", "", &[("99213", &[])], &[])), false),
                b'9',
            ),
            spoiled(
                request(Some(encounter("x", "", &[], &["G89.3"])), false),
                b'G',
            ),
        ];
        for bytes in refused {
            let expected = pb::ImportEncountersRequest::decode(bytes.as_slice()).unwrap_err();
            let error = decoder.decode(Bytes::from(bytes)).unwrap_err();
            assert_eq!(error.to_string(), expected.to_string());
        }
        // What a refused message left behind is not in the next one.
        let good = request(Some(encounter("e2", "", &[], &[])), false);
        let expected = pb::ImportEncountersRequest::decode(good.as_slice()).unwrap();
        let decoded = decoder.decode(Bytes::from(good)).unwrap();
        assert_eq!(decoded.encounter, expected.encounter.as_ref());
    }

    fn any_encounter() -> impl Strategy<Value = pb::Encounter> {
        let text = || "[a-zA-Z0-9 .]{0,6}";
        let code = (text(), prop::collection::vec(text(), 0..3), any::<i32>()).prop_map(
            |(code, modifiers, units)| pb::EncounterCode {
                code,
                modifiers,
                units,
            },
        );
        (
            (text(), text(), text(), text()),
            (text(), prop::option::of(any::<i32>()), text()),
            prop::collection::vec(code, 0..5),
            prop::collection::vec(text(), 0..5),
        )
            .prop_map(
                |(
                    (encounter_id, patient_id, provider_id, service_date),
                    (place_of_service, patient_age, patient_sex),
                    codes,
                    diagnoses,
                )| pb::Encounter {
                    encounter_id,
                    patient_id,
                    provider_id,
                    service_date,
                    place_of_service,
                    patient_age,
                    patient_sex,
                    codes,
                    diagnoses,
                },
            )
    }

    /// One message: an encounter sent whole, in two parts that merge, or not
    /// at all.
    fn any_message() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::option::of(any_encounter()),
            prop::option::of(any_encounter()),
            any::<bool>(),
        )
            .prop_map(|(first, second, replace)| {
                let mut bytes = request(first, replace);
                if let Some(second) = second {
                    bytes.extend(request(Some(second), replace));
                }
                bytes
            })
    }

    proptest::proptest! {
        #[test]
        fn any_run_of_messages_decodes_as_prost_decodes_each(
            messages in prop::collection::vec(any_message(), 1..8)
        ) {
            let mut decoder = RequestDecoder::default();
            for bytes in messages {
                let expected = pb::ImportEncountersRequest::decode(bytes.as_slice()).unwrap();
                let decoded = decoder.decode(Bytes::from(bytes)).unwrap();
                prop_assert_eq!(decoded.encounter, expected.encounter.as_ref());
                prop_assert_eq!(decoded.replace, expected.replace);
            }
        }
    }
}
