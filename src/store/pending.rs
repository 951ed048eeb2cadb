//! Rows made ready for the writer, kept in buffers shared by all of them.
//!
//! An import prepares its rows by the hundred on its own threads; the writer
//! binds their text, and the counting thread counts their outcomes and frees
//! them. As four strings and a list of outcomes a row, a chunk of 256 rows was
//! over a thousand allocations, each freed on another thread than the one
//! that made it, which the allocator pays for on both. Here a chunk is three.

use jiff::civil::Date;

use crate::measures::Outcome;

/// One row, as it is added and as the writer and the counting thread read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRow<'a> {
    pub encounter_id: &'a str,
    pub patient_hash: [u8; 32],
    pub provider_id: &'a str,
    pub service_date: Date,
    /// The service date as stored, rendered before the writer sees it.
    pub service_date_text: &'a str,
    pub claim_json: &'a str,
    pub replace: bool,
    /// What the counting thread adds to the totals once the row is stored, by
    /// option-group position.
    pub outcomes: &'a [Outcome],
}

/// Where one row's text and outcomes end in the shared buffers; they start
/// where the previous row's end.
#[derive(Debug)]
struct Stored {
    /// Where each of the row's four texts ends: encounter id, provider id,
    /// service date and claim.
    text_ends: [usize; 4],
    outcomes_end: usize,
    patient_hash: [u8; 32],
    service_date: Date,
    replace: bool,
}

/// Rows in the order they were added.
#[derive(Debug, Default)]
pub struct PendingRows {
    text: String,
    outcomes: Vec<Outcome>,
    rows: Vec<Stored>,
}

impl PendingRows {
    /// Room for `rows` rows of typical size.
    pub fn with_capacity(rows: usize) -> PendingRows {
        PendingRows {
            text: String::with_capacity(rows * 192),
            outcomes: Vec::with_capacity(rows * 4),
            rows: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a copy of `row`.
    pub fn push(&mut self, row: PendingRow<'_>) {
        let texts = [
            row.encounter_id,
            row.provider_id,
            row.service_date_text,
            row.claim_json,
        ];
        let text_ends = texts.map(|text| {
            self.text.push_str(text);
            self.text.len()
        });
        self.outcomes.extend_from_slice(row.outcomes);
        self.rows.push(Stored {
            text_ends,
            outcomes_end: self.outcomes.len(),
            patient_hash: row.patient_hash,
            service_date: row.service_date,
            replace: row.replace,
        });
    }

    /// The rows, in the order added.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = PendingRow<'_>> {
        (0..self.rows.len()).map(|index| self.row(index))
    }

    fn row(&self, index: usize) -> PendingRow<'_> {
        let stored = &self.rows[index];
        let (text_start, outcomes_start) = match index.checked_sub(1) {
            Some(previous) => {
                let previous = &self.rows[previous];
                (previous.text_ends[3], previous.outcomes_end)
            }
            None => (0, 0),
        };
        let [id_end, provider_end, date_end, claim_end] = stored.text_ends;
        PendingRow {
            encounter_id: &self.text[text_start..id_end],
            patient_hash: stored.patient_hash,
            provider_id: &self.text[id_end..provider_end],
            service_date: stored.service_date,
            service_date_text: &self.text[provider_end..date_end],
            claim_json: &self.text[date_end..claim_end],
            replace: stored.replace,
            outcomes: &self.outcomes[outcomes_start..stored.outcomes_end],
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[test]
    fn rows_read_back_as_added_whatever_their_sizes() {
        let outcome_lists = [
            vec![],
            vec![Outcome::PerformanceMet],
            vec![
                Outcome::NotInDenominator,
                Outcome::DenominatorExclusion,
                Outcome::DataIncomplete,
            ],
        ];
        let ids: Vec<String> = (0..7).map(|index| "e".repeat(index)).collect();
        let added: Vec<PendingRow> = (0..7)
            .map(|index| PendingRow {
                encounter_id: &ids[index],
                patient_hash: [index as u8; 32],
                provider_id: if index % 2 == 0 { "npi-1" } else { "" },
                service_date: date(2025, 1, 1 + index as i8),
                service_date_text: "2025-01-0x",
                claim_json: &ids[6 - index],
                replace: index % 3 == 0,
                outcomes: &outcome_lists[index % 3],
            })
            .collect();
        let mut rows = PendingRows::with_capacity(1);
        assert!(rows.is_empty());
        for row in &added {
            rows.push(*row);
        }
        assert_eq!(rows.len(), added.len());
        assert_eq!(rows.iter().collect::<Vec<_>>(), added);
    }
}
