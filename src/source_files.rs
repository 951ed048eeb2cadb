//! Reading the operator's data files (code sets, measures) whole, before any of
//! them is parsed, so that an unreadable file refuses the load like any other
//! problem and no set is ever built from part of what was asked for.

use std::{io, path::PathBuf};

/// One file that could not be read, named as the operator gave it.
#[derive(Debug)]
pub struct UnreadableFile {
    /// The path, as given.
    pub name: String,
    /// Why it could not be read.
    pub error: io::Error,
}

/// Reads every file into `(name, text)`, in order; or names every file that
/// could not be read.
pub fn read_all(files: &[PathBuf]) -> Result<Vec<(String, String)>, Vec<UnreadableFile>> {
    let mut texts = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    for file in files {
        let name = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(text) => texts.push((name, text)),
            Err(error) => unreadable.push(UnreadableFile { name, error }),
        }
    }
    if unreadable.is_empty() {
        Ok(texts)
    } else {
        Err(unreadable)
    }
}

/// `sources` after `built_in`, borrowed as `(name, text)` pairs for a loader.
pub fn after_built_in<'a>(
    built_in: (&'a str, &'a str),
    sources: &'a [(String, String)],
) -> Vec<(&'a str, &'a str)> {
    std::iter::once(built_in)
        .chain(
            sources
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
        )
        .collect()
}
