//! `ImportEncounters`: a client stream recorded in chunks.
//!
//! Messages are read into chunks; each chunk is parsed, judged and made ready
//! for the store on the import threads, then queued for the store's writer,
//! whose commits overlap the reading of the next chunks. A client that pauses
//! has what it sent so far committed. A bad encounter is rejected alone, with
//! its index and id; a message that is not valid protobuf ends the import. The
//! summary is sent only once every chunk's commit has been answered, so
//! everything it counts as accepted is durable.

use std::{collections::VecDeque, time::Duration};

use jiff::civil::Date;
use tonic::{Status, Streaming};

use super::{
    import_threads,
    quality_measures::{QualityMeasuresService, conflict_message, voided_message},
};
use crate::{
    calendar,
    measures::MAX_ID_CHARS,
    pb,
    store::{PendingWrite, PreparedRow, Recorded, StoreError, Submission},
};

/// Most encounters in one stream.
pub const MAX_IMPORT_ENCOUNTERS: usize = 100_000;

/// Most rejected encounters listed in a summary; the count covers them all.
pub const MAX_IMPORT_ERRORS: usize = 1000;

/// Encounters per chunk: per hand-off to the blocking pool and per write
/// queued for the store. Every commit costs a disk sync whatever its size, so
/// chunks of a few hundred let an import's commits carry thousands of rows.
pub const IMPORT_CHUNK: usize = 512;

/// Chunks of one import awaiting their commit before it reads on: enough that
/// the writer always has the next chunk queued while it commits one.
const IN_FLIGHT: usize = 4;

/// Messages read between yields to the runtime.
const READ_BETWEEN_YIELDS: usize = 64;

/// Longest a chunk waits to fill: a client sending slower than this has its
/// encounters committed as they come, rather than held until a whole chunk has
/// arrived. A fast client fills a chunk in a few milliseconds.
const MAX_CHUNK_WAIT: Duration = Duration::from_millis(50);

/// The id a caller sent, as a summary names it: trimmed, and cut to the
/// longest id accepted, so a rejection never echoes an unbounded string.
pub(super) fn sent_id(encounter: Option<&pb::Encounter>) -> String {
    let Some(encounter) = encounter else {
        return String::new();
    };
    encounter
        .encounter_id
        .trim()
        .chars()
        .take(MAX_ID_CHARS)
        .collect()
}

/// A chunk as read: each message with its position in the stream.
type Chunk = Vec<(usize, pb::ImportEncountersRequest)>;

/// A chunk parsed, judged and made ready for the writer.
struct PreparedChunk {
    rows: Vec<PreparedRow>,
    /// The position and id (as sent) of each row, to name it should it
    /// conflict.
    ids: Vec<(usize, String)>,
    /// Position, id as sent, and every problem found.
    rejected: Vec<(usize, String, String)>,
}

/// Reads the whole stream, records it, and answers the summary once durable.
///
/// A failure is answered only once every chunk already handed to the writer
/// has committed or failed: what the caller then counts of the import stays
/// as it is, and no chunk of it lands after the answer.
/// With the answer come the ids of every encounter read, as sent, for the
/// audit trail.
pub async fn import(
    service: &QualityMeasuresService,
    stream: Streaming<pb::ImportEncountersRequest>,
) -> (Result<pb::ImportEncountersResponse, Status>, Vec<String>) {
    let mut import = Import {
        service: service.clone(),
        in_flight: VecDeque::new(),
        summary: pb::ImportEncountersResponse::default(),
        today: calendar::today(),
        sent_ids: Vec::new(),
    };
    let answer = match import.record(stream).await {
        Ok(()) => Ok(std::mem::take(&mut import.summary)),
        Err(status) => {
            while let Some((_, pending)) = import.in_flight.pop_front() {
                let _ = pending.finish().await;
            }
            Err(status)
        }
    };
    (answer, import.sent_ids)
}

/// What ends a chunk.
enum ChunkEnd {
    /// The chunk is full or waited long enough; more may follow.
    More,
    /// The client ended the stream.
    StreamEnd,
    /// The client sent more than [`MAX_IMPORT_ENCOUNTERS`].
    TooLong,
}

struct Import {
    service: QualityMeasuresService,
    in_flight: VecDeque<(Vec<(usize, String)>, PendingWrite)>,
    summary: pb::ImportEncountersResponse,
    // Taken once: one import is judged against one day.
    today: Date,
    /// The id of every encounter read, as sent.
    sent_ids: Vec<String>,
}

impl Import {
    async fn record(
        &mut self,
        mut stream: Streaming<pb::ImportEncountersRequest>,
    ) -> Result<(), Status> {
        let mut read = 0;
        loop {
            let (chunk, after) = self.next_chunk(&mut stream, &mut read).await?;
            if !chunk.is_empty() {
                self.queue(chunk).await?;
            }
            match after {
                ChunkEnd::More => continue,
                ChunkEnd::StreamEnd => break,
                ChunkEnd::TooLong => {
                    self.settle_all().await?;
                    return Err(Status::invalid_argument(format!(
                        "an import stream holds at most {MAX_IMPORT_ENCOUNTERS} encounters; the \
                         first {MAX_IMPORT_ENCOUNTERS} were handled ({} accepted, {} duplicates, \
                         {} rejected); send the rest in another import (resending is safe)",
                        self.summary.accepted, self.summary.duplicates, self.summary.rejected
                    )));
                }
            }
        }
        self.settle_all().await
    }

    async fn settle_all(&mut self) -> Result<(), Status> {
        while !self.in_flight.is_empty() {
            self.settle_oldest().await?;
        }
        // Rejections from parsing and from conflicts arrive out of order.
        self.summary.errors.sort_by_key(|error| error.index);
        Ok(())
    }

    /// The next chunk, and what follows it. A chunk ends when full, when the
    /// stream ends, or [`MAX_CHUNK_WAIT`] after its first message.
    async fn next_chunk(
        &mut self,
        stream: &mut Streaming<pb::ImportEncountersRequest>,
        read: &mut usize,
    ) -> Result<(Chunk, ChunkEnd), Status> {
        let mut chunk = Vec::new();
        let mut deadline = None;
        while chunk.len() < IMPORT_CHUNK {
            let message = match deadline {
                // A client that stops sending would otherwise hold its
                // import's place until the request timeout.
                None => {
                    let timeout = self.service.import_message_timeout();
                    match tokio::time::timeout(timeout, stream.message()).await {
                        Ok(message) => message,
                        Err(_) => {
                            return Err(Status::deadline_exceeded(format!(
                                "no import message arrived within {timeout:?} after the first \
                                 {read} (--message-timeout); those were handled: send the rest \
                                 in another import (resending is safe)"
                            )));
                        }
                    }
                }
                // Cancelling a wait for a message loses nothing: the stream
                // keeps what it has buffered.
                Some(deadline) => match tokio::time::timeout_at(deadline, stream.message()).await {
                    Ok(message) => message,
                    Err(_) => return Ok((chunk, ChunkEnd::More)),
                },
            };
            let message = message.map_err(|status| self.stopped_at(*read, status))?;
            let Some(message) = message else {
                return Ok((chunk, ChunkEnd::StreamEnd));
            };
            if *read == MAX_IMPORT_ENCOUNTERS {
                return Ok((chunk, ChunkEnd::TooLong));
            }
            deadline.get_or_insert_with(|| tokio::time::Instant::now() + MAX_CHUNK_WAIT);
            self.sent_ids.push(sent_id(message.encounter.as_ref()));
            chunk.push((*read, message));
            *read += 1;
            // A fast client keeps the stream's buffer full, so reading never
            // waits; other calls on this worker get a turn every few dozen
            // messages rather than after a whole chunk.
            if read.is_multiple_of(READ_BETWEEN_YIELDS) {
                tokio::task::yield_now().await;
            }
        }
        Ok((chunk, ChunkEnd::More))
    }

    /// What the caller hears when the stream itself fails at message `index`.
    fn stopped_at(&self, index: usize, status: Status) -> Status {
        if status.code() != tonic::Code::InvalidArgument {
            return status;
        }
        Status::invalid_argument(format!(
            "message {index} of the import: {}; the import stopped there, and the encounters \
             before it may be stored: fix the message and send the whole import again \
             (resending is safe: stored encounters count as duplicates)",
            status.message()
        ))
    }

    /// Prepares `chunk` on the import threads, then queues it for the writer
    /// once fewer than [`IN_FLIGHT`] of this import's chunks await their commit.
    async fn queue(&mut self, chunk: Chunk) -> Result<(), Status> {
        let service = self.service.clone();
        let today = self.today;
        let prepared = import_threads::run(self.service.import_threads(), move || {
            prepare(&service, today, chunk)
        })
        .await
        .ok_or_else(|| {
            Status::internal("the import failed; encounters answered as accepted are stored")
        })?;
        for (index, encounter_id, message) in prepared.rejected {
            self.reject(index, encounter_id, message);
        }
        if prepared.rows.is_empty() {
            return Ok(());
        }
        while self.in_flight.len() >= IN_FLIGHT {
            self.settle_oldest().await?;
        }
        let pending = self
            .service
            .store()
            .submit(prepared.rows)
            .await
            .map_err(import_stopped)?;
        self.in_flight.push_back((prepared.ids, pending));
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

    async fn settle_oldest(&mut self) -> Result<(), Status> {
        let Some((ids, pending)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let results = pending.finish().await.map_err(import_stopped)?;
        for ((index, encounter_id), recorded) in ids.into_iter().zip(results) {
            match recorded {
                Recorded::Stored | Recorded::Replaced => self.summary.accepted += 1,
                Recorded::Duplicate => self.summary.duplicates += 1,
                Recorded::Conflict => {
                    let message = conflict_message(&encounter_id);
                    self.reject(index, encounter_id, message);
                }
                Recorded::Voided => {
                    let message = voided_message(&encounter_id);
                    self.reject(index, encounter_id, message);
                }
            }
        }
        Ok(())
    }
}

/// A store failure as the import's answer. No summary follows, so the caller
/// cannot know which chunks committed before it; what it needs to hear is that
/// sending the whole import again is safe.
fn import_stopped(error: StoreError) -> Status {
    const RESEND: &str = "those stored before stay stored, and sending the whole import again \
                          is safe (they count as duplicates)";
    match Status::from(error) {
        status if status.code() == tonic::Code::ResourceExhausted => Status::resource_exhausted(
            format!("the import stopped: the server's disk is full; once space is freed, {RESEND}"),
        ),
        status if status.code() == tonic::Code::Internal => Status::internal(format!(
            "the import stopped: the server could not store its encounters (its log says why); \
             {RESEND}"
        )),
        status => status,
    }
}

/// Parses and judges each message of a chunk, and makes the good ones ready
/// for the writer. Runs on an import thread.
fn prepare(service: &QualityMeasuresService, today: Date, chunk: Chunk) -> PreparedChunk {
    let store = service.store();
    let mut prepared = PreparedChunk {
        rows: Vec::with_capacity(chunk.len()),
        ids: Vec::with_capacity(chunk.len()),
        rejected: Vec::new(),
    };
    // One code set for the whole chunk.
    let registry = service.registry();
    for (index, message) in chunk {
        let encounter = message.encounter.as_ref();
        match service.parse(&registry, encounter, message.replace, today) {
            Err(violations) => {
                let status = violations.into_status(tonic::Code::InvalidArgument);
                let problem = status.message().to_string();
                prepared.rejected.push((index, sent_id(encounter), problem));
            }
            Ok(parsed) => {
                prepared.ids.push((index, sent_id(encounter)));
                let judged = service.measures().judge(&parsed.encounter.claim);
                prepared.rows.push(store.prepare(Submission {
                    encounter: parsed.encounter,
                    replace: parsed.replace,
                    judged,
                }));
            }
        }
    }
    prepared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_id_is_trimmed_and_cut_to_the_longest_id_accepted() {
        let with_id = |id: &str| pb::Encounter {
            encounter_id: id.into(),
            ..pb::Encounter::default()
        };
        assert_eq!(sent_id(None), "");
        assert_eq!(sent_id(Some(&with_id("  e-1 \t"))), "e-1");
        let long = "é".repeat(MAX_ID_CHARS + 5);
        let cut = sent_id(Some(&with_id(&long)));
        assert_eq!(cut.chars().count(), MAX_ID_CHARS);
        assert!(long.starts_with(&cut));
    }
}
