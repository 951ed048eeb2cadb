//! `ImportEncounters`: a client stream recorded in chunks.
//!
//! Messages are gathered into chunks; each chunk is parsed, judged and made
//! ready for the store on the low-priority import threads, several chunks at
//! once, then handed to the store's writer in stream order as soon as it is
//! ready, so reading, preparing and committing overlap. A client that pauses
//! has what it sent so far prepared and committed. A bad encounter is rejected
//! alone, with its index and id. The summary is sent only after every chunk's
//! commit has been answered, so everything it counts as accepted is durable.

use std::{collections::VecDeque, time::Duration};

use jiff::civil::Date;
use tonic::{Status, Streaming};

use super::{
    import_decoder::RequestDecoder,
    method_route::EncodedMessage,
    quality_measures::{QualityMeasuresService, conflict_message},
};
use crate::{
    background::{Answer, Unfinished},
    calendar,
    measures::MAX_ID_CHARS,
    pb,
    scheduling::{BulkWork, CooperativeYield},
    store::{PendingWrite, PreparedRows, Recorded, StoreError},
};

/// Most encounters in one stream.
pub const MAX_IMPORT_ENCOUNTERS: usize = 100_000;

/// Most imports running at once. One writer commits them all and the import
/// threads number one a core, so beyond a few concurrent imports none goes
/// faster; each more only holds its share of memory (up to some 5,000
/// prepared rows, a few MiB, and its stream's flow-control window, 128 KiB).
/// Beyond it an import is refused before any of it is read.
pub const MAX_CONCURRENT_IMPORTS: usize = 8;

/// Most rejected encounters listed in a summary; the count covers them all.
pub const MAX_IMPORT_ERRORS: usize = 1000;

/// Encounters per preparation task and per write handed to the store. Every
/// commit costs a disk sync and SQLite's own commit work whatever its size, and
/// the writer commits what is queued as soon as it is free, so small writes
/// made small commits: 64-row writes made commits of about 120 rows and cost a
/// fifth more CPU a row in all. Larger than this gained no more, and left
/// look-ups waiting longer for a core during an import (BENCHMARKS.md).
pub const IMPORT_CHUNK: usize = 256;

/// Chunks awaiting their commit before reading more of the stream: twice the
/// bulk rows the writer takes into one transaction
/// ([`crate::store::MAX_BULK_ROWS_PER_COMMIT`]), so that while one transaction
/// commits the next is already filling, and the writer never waits for this
/// import to read on.
const IN_FLIGHT: usize = 2 * crate::store::MAX_BULK_ROWS_PER_COMMIT / IMPORT_CHUNK;

/// Messages read between yields to the runtime. A fast client keeps the
/// stream's buffer full, so reading never waits; yielding this often lets
/// other calls on the same worker run between a few dozen messages rather
/// than after a whole chunk.
const READ_BETWEEN_YIELDS: usize = 64;

/// Longest a chunk waits to fill: a client sending slower than this keeps its
/// encounters being prepared and committed as they come, rather than held
/// until a whole chunk has arrived. A fast client fills a chunk in a few
/// milliseconds.
const MAX_CHUNK_WAIT: Duration = Duration::from_millis(50);

/// The stream position and id (as sent) of each encounter of a chunk that
/// goes to the writer, to name it later should it conflict. The ids share one
/// string: they are made on an import thread and freed on the runtime, and
/// few are ever read.
#[derive(Debug, Default)]
struct ChunkIds {
    /// Each encounter's position in the stream, and where its id ends.
    positions: Vec<(usize, usize)>,
    text: String,
}

impl ChunkIds {
    fn with_capacity(encounters: usize) -> ChunkIds {
        ChunkIds {
            positions: Vec::with_capacity(encounters),
            text: String::with_capacity(encounters * 16),
        }
    }

    fn push(&mut self, index: usize, encounter_id: &str) {
        self.text.push_str(encounter_id);
        self.positions.push((index, self.text.len()));
    }

    /// Each encounter's position and id, in the order pushed.
    fn iter(&self) -> impl Iterator<Item = (usize, &str)> {
        let starts = std::iter::once(0).chain(self.positions.iter().map(|&(_, end)| end));
        self.positions
            .iter()
            .zip(starts)
            .map(|(&(index, end), start)| (index, &self.text[start..end]))
    }
}

/// The id a caller sent, as a summary names it: trimmed, and cut to the
/// longest id accepted, so a rejection never echoes an unbounded string.
fn sent_id(encounter: Option<&pb::Encounter>) -> &str {
    let Some(encounter) = encounter else {
        return "";
    };
    let trimmed = encounter.encounter_id.trim();
    let end = trimmed
        .char_indices()
        .nth(MAX_ID_CHARS)
        .map_or(trimmed.len(), |(end, _)| end);
    &trimmed[..end]
}

/// A chunk as read from the stream, each message with its position, still
/// encoded: the import threads decode it.
type ChunkMessages = Vec<(usize, EncodedMessage)>;

/// A chunk parsed, judged and made ready for the writer.
struct PreparedChunk {
    rows: PreparedRows,
    ids: ChunkIds,
    /// Position, id as sent, and every problem found.
    rejected: Vec<(usize, String, String)>,
}

/// The state of one import.
///
/// The stream is read on the async runtime; each chunk is parsed, judged,
/// hashed and serialised on the import threads, as many chunks at once as
/// there are threads, while the next chunk is read and earlier ones commit.
/// So an import never holds a runtime worker for long, the calls of other
/// clients on the same workers wait behind it for no more than one chunk's
/// reading, and its heavy work runs below their priority. Handing chunks to
/// another thread and back costs a wake-up each way; several in preparation
/// keep those waits from leaving the cores idle.
pub struct Import {
    service: QualityMeasuresService,
    messages: ChunkMessages,
    /// Chunks being prepared, oldest first.
    preparing: VecDeque<Answer<PreparedChunk>>,
    in_flight: VecDeque<(ChunkIds, PendingWrite)>,
    summary: pb::ImportEncountersResponse,
    // Taken once: the time-zone look-up costs more than the rest of a date
    // check, and one import is judged against one day.
    today: Date,
    /// Tells the call threads that bulk work competes with them.
    _competing: BulkWork,
}

impl Import {
    /// An import through `service`.
    pub fn new(service: &QualityMeasuresService) -> Import {
        Import {
            service: service.clone(),
            messages: Vec::with_capacity(IMPORT_CHUNK),
            preparing: VecDeque::new(),
            in_flight: VecDeque::new(),
            summary: pb::ImportEncountersResponse::default(),
            today: calendar::today(),
            _competing: BulkWork::start(),
        }
    }

    /// Reads the whole stream, records it, and answers the summary once durable.
    ///
    /// A failure is answered only once every chunk already handed to the
    /// writer has committed or failed: what the caller then counts of the
    /// import stays as it is, and no chunk of it lands after the answer.
    pub async fn run(
        mut self,
        stream: Streaming<EncodedMessage>,
    ) -> Result<pb::ImportEncountersResponse, Status> {
        match self.record(stream).await {
            Ok(()) => Ok(self.summary),
            Err(status) => {
                self.withdraw().await;
                Err(status)
            }
        }
    }

    async fn record(&mut self, mut stream: Streaming<EncodedMessage>) -> Result<(), Status> {
        let mut index = 0usize;
        let chunk_due = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(chunk_due);
        loop {
            // A chunk prepared goes to the writer at once, whatever the client
            // is doing; a client that pauses has what it sent so far prepared.
            let event = tokio::select! {
                biased;
                prepared = oldest(&mut self.preparing) => Event::Prepared(prepared),
                message = stream.message() => Event::Message(message?),
                () = &mut chunk_due, if !self.messages.is_empty() => Event::ChunkDue,
            };
            let message = match event {
                Event::Prepared(prepared) => {
                    self.queue(prepared).await?;
                    continue;
                }
                Event::ChunkDue => {
                    self.flush().await?;
                    continue;
                }
                Event::Message(Some(message)) => message,
                Event::Message(None) => break,
            };
            if index == MAX_IMPORT_ENCOUNTERS {
                self.drain().await?;
                return Err(Status::invalid_argument(format!(
                    "an import stream holds at most {MAX_IMPORT_ENCOUNTERS} encounters; the first \
                     {MAX_IMPORT_ENCOUNTERS} were handled ({} accepted, {} duplicates, {} rejected); \
                     send the rest in another import (resending is safe)",
                    self.summary.accepted, self.summary.duplicates, self.summary.rejected
                )));
            }
            if self.messages.is_empty() {
                chunk_due
                    .as_mut()
                    .reset(tokio::time::Instant::now() + MAX_CHUNK_WAIT);
            }
            self.messages.push((index, message));
            if self.messages.len() == IMPORT_CHUNK {
                self.flush().await?;
            }
            index += 1;
            if index.is_multiple_of(READ_BETWEEN_YIELDS) {
                tokio::task::yield_now().await;
            }
        }
        self.drain().await
    }

    /// Starts preparing the chunk read so far, once a thread is free for it:
    /// while every thread has a chunk of this import, the oldest is awaited
    /// and queued for the writer first.
    async fn flush(&mut self) -> Result<(), Status> {
        if self.messages.is_empty() {
            return Ok(());
        }
        while self.preparing.len() >= self.service.import_threads().threads() {
            self.queue_oldest().await?;
        }
        let messages = std::mem::replace(&mut self.messages, Vec::with_capacity(IMPORT_CHUNK));
        let service = self.service.clone();
        let today = self.today;
        let preparing = self
            .service
            .import_threads()
            .run(move || prepare(&service, today, messages));
        self.preparing.push_back(preparing);
        Ok(())
    }

    /// Waits for the oldest chunk in preparation and queues it for the writer.
    async fn queue_oldest(&mut self) -> Result<(), Status> {
        let prepared = oldest(&mut self.preparing).await;
        self.queue(prepared).await
    }

    /// Queues a prepared chunk for the writer, once fewer than [`IN_FLIGHT`]
    /// of this import's chunks await their commit.
    async fn queue(&mut self, prepared: Result<PreparedChunk, Unfinished>) -> Result<(), Status> {
        let prepared = prepared.map_err(|error| {
            tracing::error!(%error, "an import's preparation failed");
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
            .submit_bulk(prepared.rows)
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
        for ((index, encounter_id), recorded) in ids.iter().zip(results) {
            match recorded {
                Recorded::Stored | Recorded::Replaced => self.summary.accepted += 1,
                Recorded::Duplicate => self.summary.duplicates += 1,
                Recorded::Conflict => {
                    let message = conflict_message(encounter_id);
                    self.reject(index, encounter_id.to_string(), message);
                }
            }
        }
        Ok(())
    }

    async fn drain(&mut self) -> Result<(), Status> {
        self.flush().await?;
        while !self.preparing.is_empty() {
            self.queue_oldest().await?;
        }
        while !self.in_flight.is_empty() {
            self.settle_oldest().await?;
        }
        // Rejections from parsing and from conflicts arrive out of order.
        self.summary.errors.sort_by_key(|error| error.index);
        Ok(())
    }

    /// Hands the writer nothing more and waits out what it already holds,
    /// whatever becomes of it: the import has failed, and its answer says so.
    async fn withdraw(&mut self) {
        self.preparing.clear();
        while let Some((_, pending)) = self.in_flight.pop_front() {
            let _ = pending.finish().await;
        }
    }
}

/// What the import's reading loop waits on.
enum Event {
    /// The oldest chunk in preparation is ready.
    Prepared(Result<PreparedChunk, Unfinished>),
    /// The client sent a message, or ended the stream.
    Message(Option<EncodedMessage>),
    /// The chunk being read has waited [`MAX_CHUNK_WAIT`] for more messages.
    ChunkDue,
}

/// The oldest of `preparing` once it is ready, taken off the queue; never, while
/// none is being prepared. Cancelling the wait leaves the queue as it was.
async fn oldest(
    preparing: &mut VecDeque<Answer<PreparedChunk>>,
) -> Result<PreparedChunk, Unfinished> {
    let Some(first) = preparing.front_mut() else {
        return std::future::pending().await;
    };
    let prepared = first.await;
    preparing.pop_front();
    prepared
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

/// Decodes, parses and judges each message of a chunk, and makes the good ones
/// ready for the writer. Runs on an import thread.
fn prepare(
    service: &QualityMeasuresService,
    today: Date,
    messages: ChunkMessages,
) -> PreparedChunk {
    let store = service.store();
    let mut rows = store.preparer(messages.len());
    let mut ids = ChunkIds::with_capacity(messages.len());
    let mut rejected = Vec::new();
    // One code set for the whole chunk.
    let registry = service.registry();
    let mut turns = CooperativeYield::new();
    let mut decoder = RequestDecoder::default();
    for (index, message) in messages {
        turns.between_items();
        let message = match decoder.decode(message.0) {
            Ok(message) => message,
            Err(error) => {
                // prost names the field and the fault, never a value.
                let problem = format!("not a valid ImportEncountersRequest message: {error}");
                rejected.push((index, String::new(), problem));
                continue;
            }
        };
        match service.parse(&registry, message.encounter, message.replace, today) {
            Err(violations) => {
                let status = violations.into_status(tonic::Code::InvalidArgument);
                let sent_id = sent_id(message.encounter).to_string();
                rejected.push((index, sent_id, status.message().to_string()));
            }
            Ok(parsed) => {
                rows.push(&parsed.encounter, parsed.replace);
                ids.push(index, sent_id(message.encounter));
            }
        }
    }
    PreparedChunk {
        rows: rows.finish(),
        ids,
        rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunks_ids_read_back_in_order_empty_ones_included() {
        let sent = [(4, "e-4"), (5, ""), (9, "é-9"), (12, "")];
        let mut ids = ChunkIds::with_capacity(1);
        for (index, id) in sent {
            ids.push(index, id);
        }
        assert_eq!(ids.iter().collect::<Vec<_>>(), sent);
    }

    #[test]
    fn a_sent_id_is_trimmed_and_cut_to_the_longest_id_accepted() {
        let with_id = |id: &str| pb::Encounter {
            encounter_id: id.into(),
            ..pb::Encounter::default()
        };
        assert_eq!(sent_id(None), "");
        assert_eq!(sent_id(Some(&with_id("  e-1 \t"))), "e-1");
        let long = "é".repeat(MAX_ID_CHARS + 5);
        let encounter = with_id(&long);
        let cut = sent_id(Some(&encounter));
        assert_eq!(cut.chars().count(), MAX_ID_CHARS);
        assert!(long.starts_with(cut));
    }
}
