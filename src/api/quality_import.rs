//! `ImportEncounters`: a client stream recorded in chunks.
//!
//! Good encounters are gathered into chunks and handed to the store's writer in
//! stream order, a few chunks in flight at once so parsing and committing
//! overlap. A bad encounter is rejected alone, with its index and id. The summary
//! is sent only after every chunk's commit has been answered, so everything it
//! counts as accepted is durable.

use std::collections::VecDeque;

use jiff::civil::Date;
use tonic::{Status, Streaming};

use super::quality_measures::{QualityMeasuresService, conflict_message};
use crate::{
    calendar,
    measures::MAX_ID_CHARS,
    pb,
    store::{PendingWrite, Recorded, Submission},
};

/// Most encounters in one stream.
pub const MAX_IMPORT_ENCOUNTERS: usize = 100_000;

/// Most rejected encounters listed in a summary; the count covers them all.
pub const MAX_IMPORT_ERRORS: usize = 1000;

/// Encounters per write handed to the store: small enough that preparing one
/// stays well under a millisecond of the async runtime, large enough that the
/// writer's commits stay big.
const CHUNK: usize = 64;

/// Chunks awaiting their commit before reading more of the stream: as many rows
/// as the writer takes into one transaction, so commits stay full.
const IN_FLIGHT: usize = 64;

/// The stream position and id of each encounter of a chunk, to name it later.
type ChunkIds = Vec<(usize, String)>;

/// The state of one import.
pub struct Import<'a> {
    service: &'a QualityMeasuresService,
    chunk: Vec<Submission>,
    chunk_ids: ChunkIds,
    in_flight: VecDeque<(ChunkIds, PendingWrite)>,
    summary: pb::ImportEncountersResponse,
    // Taken once: the time-zone look-up costs more than the rest of a date
    // check, and one import is judged against one day.
    today: Date,
}

impl<'a> Import<'a> {
    /// An import through `service`.
    pub fn new(service: &'a QualityMeasuresService) -> Import<'a> {
        Import {
            service,
            chunk: Vec::with_capacity(CHUNK),
            chunk_ids: Vec::with_capacity(CHUNK),
            in_flight: VecDeque::new(),
            summary: pb::ImportEncountersResponse::default(),
            today: calendar::today(),
        }
    }

    /// Reads the whole stream, records it, and answers the summary once durable.
    pub async fn run(
        mut self,
        mut stream: Streaming<pb::ImportEncountersRequest>,
    ) -> Result<pb::ImportEncountersResponse, Status> {
        let mut index = 0usize;
        while let Some(message) = stream.message().await? {
            if index == MAX_IMPORT_ENCOUNTERS {
                self.drain().await?;
                return Err(Status::invalid_argument(format!(
                    "an import stream holds at most {MAX_IMPORT_ENCOUNTERS} encounters; the first \
                     {MAX_IMPORT_ENCOUNTERS} were handled ({} accepted, {} duplicates, {} rejected); \
                     send the rest in another import (resending is safe)",
                    self.summary.accepted, self.summary.duplicates, self.summary.rejected
                )));
            }
            self.take(index, message).await?;
            index += 1;
        }
        self.drain().await?;
        Ok(self.summary)
    }

    async fn take(
        &mut self,
        index: usize,
        message: pb::ImportEncountersRequest,
    ) -> Result<(), Status> {
        let sent_id: String = message
            .encounter
            .as_ref()
            .map(|encounter| {
                encounter
                    .encounter_id
                    .trim()
                    .chars()
                    .take(MAX_ID_CHARS)
                    .collect()
            })
            .unwrap_or_default();
        match self
            .service
            .parse(message.encounter, message.replace, self.today)
        {
            Err(violations) => {
                let status = violations.into_status(tonic::Code::InvalidArgument);
                self.reject(index, sent_id, status.message().to_string());
            }
            Ok(parsed) => {
                let (submission, _) = self.service.submission(parsed);
                self.chunk.push(submission);
                self.chunk_ids.push((index, sent_id));
                if self.chunk.len() == CHUNK {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    fn reject(&mut self, index: usize, encounter_id: String, message: String) {
        self.summary.rejected += 1;
        if self.summary.errors.len() < MAX_IMPORT_ERRORS {
            self.summary.errors.push(pb::ImportError {
                index: index as i64,
                encounter_id,
                message,
            });
        }
    }

    async fn flush(&mut self) -> Result<(), Status> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let ids = std::mem::replace(&mut self.chunk_ids, Vec::with_capacity(CHUNK));
        let pending = self.service.store().submit(chunk).await?;
        self.in_flight.push_back((ids, pending));
        while self.in_flight.len() > IN_FLIGHT {
            self.settle_oldest().await?;
        }
        // A fast client keeps the stream's buffer full, so reading never waits;
        // yielding once per chunk lets other calls on this worker run between
        // chunks instead of after the whole import.
        tokio::task::yield_now().await;
        Ok(())
    }

    async fn settle_oldest(&mut self) -> Result<(), Status> {
        let Some((ids, pending)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let results = pending.finish().await?;
        for ((index, encounter_id), recorded) in ids.into_iter().zip(results) {
            match recorded {
                Recorded::Stored | Recorded::Replaced => self.summary.accepted += 1,
                Recorded::Duplicate => self.summary.duplicates += 1,
                Recorded::Conflict => {
                    let message = conflict_message(&encounter_id);
                    self.reject(index, encounter_id, message);
                }
            }
        }
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), Status> {
        self.flush().await?;
        while !self.in_flight.is_empty() {
            self.settle_oldest().await?;
        }
        // Rejections from parsing and from conflicts arrive out of order.
        self.summary.errors.sort_by_key(|error| error.index);
        Ok(())
    }
}
