//! How failures become gRPC statuses, in one place.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{codes::LookupError, store::StoreError};

/// Most field violations one error lists. Error details travel in a response
/// header, and clients refuse headers past a few KiB (tonic at 16 KiB, grpc-java
/// at 8 KiB), so a batch of a thousand bad codes names the first ones and counts
/// the rest.
pub const MAX_LISTED_VIOLATIONS: usize = 50;

/// The problems found in a request, each tied to the field path that has it
/// (`codes[2]`, `as_of`).
#[derive(Debug, Default)]
pub struct Violations {
    found: Vec<FieldViolation>,
    total: usize,
    // Sentences that explain many violations at once (such as the accepted code
    // forms), said once in the message instead of in every violation.
    notes: Vec<&'static str>,
}

impl Violations {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.total += 1;
        if self.found.len() < MAX_LISTED_VIOLATIONS {
            self.found.push(FieldViolation::new(field, description));
        }
    }

    /// Adds a sentence to the error message, once however often it is added.
    pub fn note(&mut self, note: &'static str) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// `Ok(value)` when nothing was recorded, else the `INVALID_ARGUMENT` status.
    pub fn into_result<T>(self, value: T) -> Result<T, Status> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            Err(self.into_status(Code::InvalidArgument))
        }
    }

    /// The status naming every violation, with a `BadRequest` detail.
    pub fn into_status(self, code: Code) -> Status {
        let summary: Vec<String> = self
            .found
            .iter()
            .take(3)
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect();
        let more = self.total.saturating_sub(summary.len());
        let mut message = summary.join("; ");
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        if self.total > self.found.len() {
            message.push_str(&format!(
                " (the details list the first {} of {})",
                self.found.len(),
                self.total
            ));
        }
        for note in &self.notes {
            message.push_str("; ");
            message.push_str(note);
        }
        Status::with_error_details(code, message, ErrorDetails::with_bad_request(self.found))
    }
}

impl From<LookupError> for Status {
    fn from(error: LookupError) -> Status {
        Status::not_found(error.to_string())
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        // The writer has logged the details for operators; a caller learns
        // only that it failed and that retrying is safe (recording is
        // idempotent).
        match error {
            StoreError::Closed => Status::unavailable("the server is shutting down; retry"),
            StoreError::Unavailable(_) => Status::unavailable(
                "the encounter database is unavailable just now (unreachable, or too slow): nothing \
                 of this call was written; retry (retrying is safe)",
            ),
            StoreError::MeasuresDiffer => Status::failed_precondition(
                "this server's measure definitions differ from those the shared database is \
                 counted under, so it does not write; its operators must start it with the same \
                 --measures files as the other replicas",
            ),
            StoreError::NoRoom => Status::resource_exhausted(
                "the server's disk is full: nothing of this write was stored; retry once space \
                 is freed (retrying is safe)",
            ),
            _ => Status::internal("the encounter could not be stored; retrying is safe"),
        }
    }
}
