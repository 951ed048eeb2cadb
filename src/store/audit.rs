//! The audit trail: one record per call that read or wrote encounter data,
//! appended by the writer in the store's own transactions.
//!
//! Each record's hash is the SHA-256 of the previous record's hash and the
//! record's own fields, so editing, inserting or deleting a record breaks the
//! chain at that point; [`verify`] finds where. Cutting records off the end
//! leaves a shorter valid chain, which is why the server logs the head of the
//! chain at every start: a log kept elsewhere anchors it.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use super::StoreError;

/// Longest subject kept; a longer one is cut and marked so.
pub const MAX_SUBJECT_CHARS: usize = 1_000_000;

/// What one call did, as its handler reports it: never a patient id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The caller's name from the auth policy; `None` when no policy is in
    /// force.
    pub caller: Option<String>,
    /// The gRPC method, e.g. `GetEncounter`.
    pub method: String,
    /// The encounter ids or the query the call concerned.
    pub subject: String,
    /// How it ended: the status code's name, and a note where the code alone
    /// would hide it (e.g. `OK duplicate`).
    pub outcome: String,
}

/// An entry as stored, with its place and hash in the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    /// Its number, from 1, in the order written.
    pub seq: i64,
    /// When it was written (UTC, RFC 3339).
    pub at: String,
    /// The caller, `-` when no policy was in force.
    pub caller: String,
    /// The method.
    pub method: String,
    /// The encounter ids or the query.
    pub subject: String,
    /// The outcome.
    pub outcome: String,
    /// Hex SHA-256 chaining it to the record before.
    pub hash: String,
}

/// The head of the chain: how many records it has and the last one's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Records in the trail.
    pub records: i64,
    /// Hex hash of the last record, empty when there is none.
    pub hash: String,
}

/// Where the chain breaks: the first record whose hash does not follow.
#[derive(Debug, thiserror::Error)]
#[error(
    "the audit trail is broken at record {seq}: its hash does not follow from the records \
     before it, so it or an earlier record was edited, inserted or removed"
)]
pub struct BrokenChain {
    /// The first record that does not follow.
    pub seq: i64,
}

fn chain_hash(
    previous: &[u8],
    seq: i64,
    at: &str,
    caller: &str,
    method: &str,
    subject: &str,
    outcome: &str,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(seq.to_be_bytes());
    // Each field with its length first, so no two records hash alike by
    // moving text from one field to the next.
    for field in [at, caller, method, subject, outcome] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().into()
}

/// One entry as it joins the chain.
pub(super) struct Link<'a> {
    pub seq: i64,
    pub caller: &'a str,
    pub method: &'a str,
    pub subject: &'a str,
    pub outcome: &'a str,
    pub hash: [u8; 32],
}

/// `entries` chained after the record numbered `seq` with hash `previous`,
/// all written at `at`.
pub(super) fn chain<'a>(
    mut seq: i64,
    previous: &[u8],
    at: &str,
    entries: &'a [AuditEntry],
) -> Vec<Link<'a>> {
    let mut previous = previous.to_vec();
    entries
        .iter()
        .map(|entry| {
            seq += 1;
            let caller = entry.caller.as_deref().unwrap_or("-");
            let subject = bounded(&entry.subject);
            let hash = chain_hash(
                &previous,
                seq,
                at,
                caller,
                &entry.method,
                subject,
                &entry.outcome,
            );
            previous = hash.to_vec();
            Link {
                seq,
                caller,
                method: &entry.method,
                subject,
                outcome: &entry.outcome,
                hash,
            }
        })
        .collect()
}

/// Appends `entries` in `transaction`, chained to the last record stored.
pub fn append(transaction: &Transaction<'_>, entries: &[AuditEntry]) -> Result<(), StoreError> {
    let (seq, previous) = transaction
        .query_row(
            "SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)),
        )
        .optional()?
        .unwrap_or((0, Vec::new()));
    let at = jiff::Timestamp::now().to_string();
    let mut insert = transaction.prepare_cached(
        "INSERT INTO audit_trail (seq, at, caller, method, subject, outcome, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for link in chain(seq, &previous, &at, entries) {
        insert.execute(params![
            link.seq,
            at,
            link.caller,
            link.method,
            link.subject,
            link.outcome,
            &link.hash[..]
        ])?;
    }
    Ok(())
}

fn bounded(subject: &str) -> &str {
    match subject.char_indices().nth(MAX_SUBJECT_CHARS) {
        Some((end, _)) => &subject[..end],
        None => subject,
    }
}

/// The number of records and the last hash.
pub fn head(connection: &Connection) -> Result<ChainHead, StoreError> {
    let last = connection
        .query_row(
            "SELECT seq, hash FROM audit_trail ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)),
        )
        .optional()?;
    Ok(match last {
        Some((records, hash)) => ChainHead {
            records,
            hash: hex(&hash),
        },
        None => ChainHead {
            records: 0,
            hash: String::new(),
        },
    })
}

/// Checks the whole chain, then returns the records written at or after
/// `since` (an RFC 3339 timestamp or a date; every record when empty).
pub fn read_verified(
    connection: &Connection,
    since: &str,
) -> Result<Result<Vec<AuditRecord>, BrokenChain>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT seq, at, caller, method, subject, outcome, hash FROM audit_trail ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    let mut check = ChainCheck::new(since);
    while let Some(row) = rows.next()? {
        let record = AuditRecord {
            seq: row.get(0)?,
            at: row.get(1)?,
            caller: row.get(2)?,
            method: row.get(3)?,
            subject: row.get(4)?,
            outcome: row.get(5)?,
            hash: String::new(),
        };
        if let Err(broken) = check.next(record, row.get(6)?) {
            return Ok(Err(broken));
        }
    }
    Ok(Ok(check.records))
}

/// Follows a trail read in order from its first record: each must follow
/// from the one before; those written at or after `since` are kept.
pub(super) struct ChainCheck<'a> {
    since: &'a str,
    previous: Vec<u8>,
    expected_seq: i64,
    /// The records kept so far, with their hashes.
    pub records: Vec<AuditRecord>,
}

impl ChainCheck<'_> {
    pub fn new(since: &str) -> ChainCheck<'_> {
        ChainCheck {
            since,
            previous: Vec::new(),
            expected_seq: 1,
            records: Vec::new(),
        }
    }

    /// Takes the next record, stored with `stored` as its hash.
    pub fn next(&mut self, record: AuditRecord, stored: Vec<u8>) -> Result<(), BrokenChain> {
        let hash = chain_hash(
            &self.previous,
            record.seq,
            &record.at,
            &record.caller,
            &record.method,
            &record.subject,
            &record.outcome,
        );
        if record.seq != self.expected_seq || stored != hash {
            return Err(BrokenChain {
                seq: self.expected_seq,
            });
        }
        self.expected_seq += 1;
        self.previous = stored;
        // RFC 3339 UTC timestamps of one format order as text.
        if record.at.as_str() >= self.since {
            self.records.push(AuditRecord {
                hash: hex(&hash),
                ..record
            });
        }
        Ok(())
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trail() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(super::super::schema::AUDIT_TRAIL_TABLE)
            .unwrap();
        connection
    }

    fn entry(method: &str, subject: &str) -> AuditEntry {
        AuditEntry {
            caller: Some("billing".into()),
            method: method.into(),
            subject: subject.into(),
            outcome: "OK".into(),
        }
    }

    fn write(connection: &mut Connection, entries: &[AuditEntry]) {
        let transaction = connection.transaction().unwrap();
        append(&transaction, entries).unwrap();
        transaction.commit().unwrap();
    }

    #[test]
    fn records_chain_across_commits_and_read_back_in_order() {
        let mut connection = trail();
        write(&mut connection, &[entry("RecordEncounter", "e1")]);
        write(
            &mut connection,
            &[entry("GetEncounter", "e1"), entry("VoidEncounter", "e1")],
        );
        let records = read_verified(&connection, "").unwrap().unwrap();
        let methods: Vec<_> = records.iter().map(|r| r.method.as_str()).collect();
        assert_eq!(
            methods,
            ["RecordEncounter", "GetEncounter", "VoidEncounter"]
        );
        assert_eq!(head(&connection).unwrap().records, 3);
        assert_eq!(head(&connection).unwrap().hash, records[2].hash);
        assert!(
            read_verified(&connection, "2999-01-01")
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_edited_inserted_or_removed_record_breaks_the_chain_there() {
        for tamper in [
            "UPDATE audit_trail SET subject = 'e9' WHERE seq = 2",
            "UPDATE audit_trail SET caller = 'ops' WHERE seq = 2",
            "DELETE FROM audit_trail WHERE seq = 2",
        ] {
            let mut connection = trail();
            for id in ["e1", "e2", "e3"] {
                write(&mut connection, &[entry("GetEncounter", id)]);
            }
            connection.execute_batch(tamper).unwrap();
            let broken = read_verified(&connection, "").unwrap().unwrap_err();
            assert_eq!(broken.seq, 2, "{tamper}");
        }
    }
}
