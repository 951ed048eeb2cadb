//! The ICD-10-CM code list: which diagnosis codes exist, and which of them may
//! go on a claim (the leaves) rather than being category headers.
//!
//! Two layouts are read: CMS's order file (`icd10cm_order_YYYY.txt`, fixed
//! width: order number in columns 1–5, the code without its dot in 7–13, `1`
//! in column 15 when valid on a claim, then the titles) and the built-in list
//! (tab-separated, header `code\tbillable`).

use std::sync::Arc;

use super::edit_file::{Problems, RowSource};

/// A code without its dot, left-aligned and padded with zeros: seven bytes
/// compare as the codes sort.
type Key = [u8; 7];

fn key(compact: &str) -> Option<Key> {
    let bytes = compact.as_bytes();
    if bytes.len() < 3 || bytes.len() > 7 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut key = [0u8; 7];
    for (slot, byte) in key.iter_mut().zip(bytes) {
        *slot = byte.to_ascii_uppercase();
    }
    Some(key)
}

/// One code of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: Key,
    billable: bool,
    row: u32,
}

/// What the list says of one diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosisStanding {
    /// A code valid on a claim.
    Billable,
    /// A category header: more characters are needed.
    Header,
    /// Not in the list.
    Unknown,
}

/// Every code of the list, sorted.
#[derive(Debug, Clone, Default)]
pub struct Icd10CmList {
    entries: Vec<Entry>,
    file: u16,
}

impl Icd10CmList {
    /// Reads a list of either layout.
    pub fn read(text: &str, name: &Arc<str>, file: u16, problems: &mut Problems) -> Icd10CmList {
        let mut entries = Vec::with_capacity(text.len() / 12);
        let mut lines = text.lines().enumerate().peekable();
        let tab_separated = lines.peek().is_some_and(|(_, first)| {
            first
                .trim_start_matches('\u{feff}')
                .starts_with("code\tbillable")
        });
        if tab_separated {
            lines.next();
        }
        for (index, line) in lines {
            let number = index as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let read = if tab_separated {
                tab_row(line)
            } else {
                order_row(line)
            };
            match read {
                Ok((key, billable)) => entries.push(Entry {
                    key,
                    billable,
                    row: u32::try_from(number).unwrap_or(u32::MAX),
                }),
                Err(message) => problems.add(name, number, message),
            }
        }
        if entries.is_empty() && problems.is_empty() {
            problems.add(name, 0, "holds no ICD-10-CM code");
        }
        entries.sort_unstable_by_key(|entry| entry.key);
        for pair in entries.windows(2) {
            if pair[0].key == pair[1].key {
                problems.add(
                    name,
                    u64::from(pair[1].row.max(pair[0].row)),
                    format!(
                        "{} is listed twice (also on line {})",
                        String::from_utf8_lossy(&pair[0].key).trim_end_matches('\0'),
                        pair[1].row.min(pair[0].row)
                    ),
                );
            }
        }
        Icd10CmList { entries, file }
    }

    /// Where `compact` (a code without its dot) stands, and the row that says so.
    pub fn standing(&self, compact: &str) -> (DiagnosisStanding, Option<RowSource>) {
        let Some(key) = key(compact) else {
            return (DiagnosisStanding::Unknown, None);
        };
        match self.entries.binary_search_by_key(&key, |entry| entry.key) {
            Ok(index) => {
                let entry = self.entries[index];
                let standing = if entry.billable {
                    DiagnosisStanding::Billable
                } else {
                    DiagnosisStanding::Header
                };
                let source = RowSource {
                    file: self.file,
                    row: entry.row,
                };
                (standing, Some(source))
            }
            Err(_) => (DiagnosisStanding::Unknown, None),
        }
    }

    /// Up to `limit` codes valid on a claim that begin with `prefix`, written
    /// with their dot: what to suggest for a category header.
    pub fn billable_under(&self, prefix: &str, limit: usize) -> Vec<String> {
        let Some(start_key) = key(prefix) else {
            return Vec::new();
        };
        let prefix = &start_key[..prefix.len()];
        let start = self.entries.partition_point(|entry| entry.key < start_key);
        self.entries[start..]
            .iter()
            .take_while(|entry| entry.key.starts_with(prefix))
            .filter(|entry| entry.billable)
            .take(limit)
            .map(|entry| {
                let text = String::from_utf8_lossy(&entry.key);
                let text = text.trim_end_matches('\0');
                match text.split_at_checked(3) {
                    Some((category, rest)) if !rest.is_empty() => format!("{category}.{rest}"),
                    _ => text.to_string(),
                }
            })
            .collect()
    }

    /// How many codes the list holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn tab_row(line: &str) -> Result<(Key, bool), String> {
    let (code, billable) = line
        .split_once('\t')
        .ok_or("expected a code and 0 or 1, separated by a tab")?;
    let key = key(code.trim()).ok_or_else(|| format!("{code:?} is not an ICD-10-CM code"))?;
    match billable.trim() {
        "0" => Ok((key, false)),
        "1" => Ok((key, true)),
        other => Err(format!("billable: {other:?} is not 0 or 1")),
    }
}

/// CMS's fixed columns, counted from 1: order 1–5, code 7–13, valid flag 15.
fn order_row(line: &str) -> Result<(Key, bool), String> {
    let bytes = line.as_bytes();
    if bytes.len() < 15 || !line.is_char_boundary(15) {
        return Err(
            "too short for the order-file layout (order number, code, valid flag in column 15)"
                .to_string(),
        );
    }
    if !bytes[..5]
        .iter()
        .all(|byte| byte.is_ascii_digit() || *byte == b' ')
    {
        return Err("columns 1-5: not an order number".to_string());
    }
    let code = line[6..13].trim();
    let key =
        key(code).ok_or_else(|| format!("columns 7-13: {code:?} is not an ICD-10-CM code"))?;
    match bytes[14] {
        b'0' => Ok((key, false)),
        b'1' => Ok((key, true)),
        _ => Err("column 15: the valid-for-claims flag is not 0 or 1".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER_FILE: &str = "\
00001 A00     0 Cholera                                                      Cholera
00002 A000    1 Cholera due to Vibrio cholerae 01, biovar cholerae           Cholera due to Vibrio cholerae 01, biovar cholerae
13001 M545    0 Low back pain                                                Low back pain
13002 M5450   1 Low back pain, unspecified                                   Low back pain, unspecified
";

    #[test]
    fn the_order_file_tells_headers_from_billable_codes() {
        let mut problems = Problems::default();
        let list = Icd10CmList::read(
            ORDER_FILE,
            &"icd10cm_order_2026.txt".into(),
            3,
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(list.standing("M545").0, DiagnosisStanding::Header);
        let (standing, source) = list.standing("M5450");
        assert_eq!(standing, DiagnosisStanding::Billable);
        assert_eq!(source, Some(RowSource { file: 3, row: 4 }));
        assert_eq!(list.standing("M5459").0, DiagnosisStanding::Unknown);
    }

    #[test]
    fn a_short_line_is_named() {
        let text = format!("{ORDER_FILE}13003 M54\n");
        let mut problems = Problems::default();
        Icd10CmList::read(&text, &"order.txt".into(), 0, &mut problems);
        let (listed, _) = problems.into_parts();
        assert_eq!(listed[0].line, 5);
    }
}
