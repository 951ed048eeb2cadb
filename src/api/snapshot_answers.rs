//! What a registry snapshot answers the same way every time, worked out once.
//!
//! A snapshot never changes, so the `cptd-registry-version` metadata value, and
//! the encoded `Code` message of a version in a given status, are the same on
//! every call that reads it. `GetCode` is the hottest call and its answer is
//! almost all conversion and encoding (about twenty strings copied into a
//! `pb::Code`, then encoded), so its answers are kept encoded here and sent as
//! they are. A reload builds a new snapshot and so starts a new memo.
//!
//! The memo only points at its snapshot (a `Weak`): it must never be what keeps
//! a replaced registry alive, or the registry's teardown (millions of frees for
//! a licensed set) would run on whichever tokio worker dropped the memo. The
//! `Weak` also pins the snapshot's address, so a later registry can never be
//! mistaken for it.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock, Weak},
};

use prost::{Message, bytes::Bytes};
use tonic::{
    Response,
    metadata::{AsciiMetadataKey, AsciiMetadataValue},
};

use crate::{
    codes::{CodeAsOf, CodeRegistry, CodeStatus},
    pb,
};

/// Response metadata naming the registry snapshot that answered.
pub const REGISTRY_VERSION_HEADER: &str = "cptd-registry-version";

/// Names the registry `version` in `response`'s metadata, for answers that
/// depend on the code set but are not kept per snapshot.
pub fn name_registry<T>(response: &mut Response<T>, version: &str) {
    if let Ok(version) = AsciiMetadataValue::try_from(version) {
        response
            .metadata_mut()
            .insert(REGISTRY_VERSION_HEADER, version);
    }
}

/// Most encoded `Code` answers one snapshot keeps (about 0.4 KiB each, so a few
/// MiB at most). A practice asks about a few hundred codes day to day; past the
/// cap, answers are still right, only encoded on each call.
pub const MAX_KEPT_ANSWERS: usize = 8192;

/// One encoded answer: which version (by its place in the snapshot, which pins
/// it) and the status it is answered with.
type AnswerKey = (usize, Option<CodeStatus>);

/// The answers worked out from one registry snapshot so far.
#[derive(Debug)]
pub struct SnapshotAnswers {
    registry: Weak<CodeRegistry>,
    // The header's name and value, checked once rather than on every answer.
    version_header: Option<(AsciiMetadataKey, AsciiMetadataValue)>,
    encoded_codes: RwLock<HashMap<AnswerKey, Bytes>>,
}

impl SnapshotAnswers {
    /// An empty memo for `registry`.
    pub fn new(registry: &Arc<CodeRegistry>) -> SnapshotAnswers {
        let version_header = AsciiMetadataValue::try_from(&**registry.version())
            .ok()
            .map(|value| {
                (
                    AsciiMetadataKey::from_static(REGISTRY_VERSION_HEADER),
                    value,
                )
            });
        SnapshotAnswers {
            registry: Arc::downgrade(registry),
            version_header,
            encoded_codes: RwLock::new(HashMap::new()),
        }
    }

    /// Whether this is the memo of `registry`.
    pub fn belongs_to(&self, registry: &Arc<CodeRegistry>) -> bool {
        std::ptr::eq(self.registry.as_ptr(), Arc::as_ptr(registry))
    }

    /// `message` as a response that names this snapshot's version.
    pub fn respond<T>(&self, message: T) -> Response<T> {
        let mut response = Response::new(message);
        if let Some((name, value)) = &self.version_header {
            response.metadata_mut().insert(name.clone(), value.clone());
        }
        response
    }

    /// The `Code` message for `found`, encoded. `found` must come from this
    /// memo's registry, which the caller holds: the key is the version's
    /// address, stable and unique while the registry lives.
    pub fn encoded_code(&self, found: CodeAsOf<'_>) -> Bytes {
        debug_assert!(
            self.registry
                .upgrade()
                .is_some_and(|registry| registry.holds(found.version))
        );
        let key: AnswerKey = (
            std::ptr::from_ref(found.version) as usize,
            CodeStatus::of(found.standing),
        );
        let kept = self
            .encoded_codes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(encoded) = kept {
            return encoded;
        }
        let encoded = Bytes::from(pb::Code::from(found).encode_to_vec());
        let mut kept = self
            .encoded_codes
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if kept.len() < MAX_KEPT_ANSWERS {
            kept.insert(key, encoded.clone());
        }
        encoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{Date, date};

    fn built_in() -> (Arc<CodeRegistry>, SnapshotAnswers) {
        let registry = Arc::new(CodeRegistry::built_in().unwrap());
        let answers = SnapshotAnswers::new(&registry);
        (registry, answers)
    }

    /// Days on either side of the built-in set's deletions and effective dates.
    const DAYS: [Date; 4] = [
        date(2000, 1, 1),
        date(2015, 6, 1),
        date(2020, 1, 1),
        date(2026, 11, 29),
    ];

    #[test]
    fn every_answer_decodes_to_the_converted_code_on_every_day_asked_twice() {
        let (registry, answers) = built_in();
        let mut statuses = std::collections::HashSet::new();
        for day in DAYS {
            for history in registry.histories() {
                let found = history.as_of(day);
                let expected = pb::Code::from(found);
                statuses.insert(expected.status);
                for _ in 0..2 {
                    let encoded = answers.encoded_code(found);
                    assert_eq!(pb::Code::decode(encoded).unwrap(), expected);
                }
            }
        }
        assert!(statuses.contains(&(pb::Status::Deleted as i32)));
        assert!(statuses.contains(&(pb::Status::Active as i32)));
    }

    #[test]
    fn answers_past_the_cap_are_still_right_and_not_kept() {
        let (registry, answers) = built_in();
        answers
            .encoded_codes
            .write()
            .unwrap()
            .extend((0..MAX_KEPT_ANSWERS).map(|n| ((usize::MAX - n, None), Bytes::new())));
        let found = registry.histories()[0].as_of(DAYS[3]);
        let encoded = answers.encoded_code(found);
        assert_eq!(pb::Code::decode(encoded).unwrap(), pb::Code::from(found));
        assert_eq!(
            answers.encoded_codes.read().unwrap().len(),
            MAX_KEPT_ANSWERS
        );
    }

    #[test]
    fn responses_name_the_snapshot_version() {
        let (registry, answers) = built_in();
        let response = answers.respond(());
        let named = response.metadata().get(REGISTRY_VERSION_HEADER).unwrap();
        assert_eq!(named.to_str().unwrap(), &**registry.version());
    }

    #[test]
    fn a_memo_belongs_to_its_registry_only_and_does_not_keep_it() {
        let (registry, answers) = built_in();
        let equal_but_another = Arc::new(CodeRegistry::built_in().unwrap());
        assert!(answers.belongs_to(&registry));
        assert!(!answers.belongs_to(&equal_but_another));
        drop(registry);
        assert!(answers.registry.upgrade().is_none());
    }
}
