//! How failures become gRPC statuses, in one place.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::codes::LookupError;

/// Most field violations one error lists; a batch of bad codes names them all up
/// to this many.
const MAX_LISTED_VIOLATIONS: usize = 1000;

/// The problems found in a request, each tied to the field path that has it
/// (`codes[2]`, `as_of`).
#[derive(Debug, Default)]
pub struct Violations {
    found: Vec<FieldViolation>,
}

impl Violations {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.found.len() < MAX_LISTED_VIOLATIONS {
            self.found.push(FieldViolation::new(field, description));
        }
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
            .take(5)
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect();
        let more = self.found.len().saturating_sub(summary.len());
        let mut message = summary.join("; ");
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        Status::with_error_details(code, message, ErrorDetails::with_bad_request(self.found))
    }
}

impl From<LookupError> for Status {
    fn from(error: LookupError) -> Status {
        Status::not_found(error.to_string())
    }
}
