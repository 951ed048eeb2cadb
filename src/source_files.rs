//! Reading the operator's data files (code sets, measures) whole, before any of
//! them is parsed, so that an unreadable file refuses the load like any other
//! problem and no set is ever built from part of what was asked for.
//!
//! Only regular files no larger than a cap are read. A FIFO, a device such as
//! `/dev/zero` or a directory given by mistake would otherwise hang the load
//! (and with it a SIGHUP reload) or grow the process until it is killed.

use std::{
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

/// One file that could not be read, named as the operator gave it.
#[derive(Debug)]
pub struct UnreadableFile {
    /// The path, as given.
    pub name: String,
    /// Why it could not be read, in words an operator can act on.
    pub reason: String,
}

/// Reads every file into `(name, text)`, in order; or names every file that
/// could not be read. A file that is not a regular file, or is larger than
/// `max_file_bytes`, is refused without being read.
pub fn read_all(
    files: &[PathBuf],
    max_file_bytes: u64,
) -> Result<Vec<(String, String)>, Vec<UnreadableFile>> {
    let mut texts = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    for file in files {
        let name = file.display().to_string();
        match read_regular_file(file, max_file_bytes) {
            Ok(text) => texts.push((name, text)),
            Err(reason) => unreadable.push(UnreadableFile { name, reason }),
        }
    }
    if unreadable.is_empty() {
        Ok(texts)
    } else {
        Err(unreadable)
    }
}

/// `path` opened for reading if it is a regular file of at most
/// `max_bytes`, for a load that streams a large file instead of reading it
/// whole.
pub fn open_regular_file(path: &Path, max_bytes: u64) -> Result<File, String> {
    // `metadata` only looks: opening a FIFO would wait for a writer.
    let metadata = std::fs::metadata(path).map_err(|error| error.to_string())?;
    refuse_unless_regular(&metadata, max_bytes)?;
    let file = File::open(path).map_err(|error| error.to_string())?;
    // The path may have been swapped between the look and the opening.
    refuse_unless_regular(
        &file.metadata().map_err(|error| error.to_string())?,
        max_bytes,
    )?;
    Ok(file)
}

/// The text of `path` if it is a regular file of at most `max_bytes`.
pub fn read_regular_file(path: &Path, max_bytes: u64) -> Result<String, String> {
    let file = open_regular_file(path, max_bytes)?;
    let mut bytes = Vec::new();
    // A file that grows while it is read stops at the cap all the same.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
}

fn refuse_unless_regular(metadata: &std::fs::Metadata, max_bytes: u64) -> Result<(), String> {
    if !metadata.is_file() {
        return Err(format!(
            "it is {}, not a regular file; give the path of a regular file",
            kind_of(metadata)
        ));
    }
    if metadata.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(())
}

fn too_large(max_bytes: u64) -> String {
    format!(
        "it is larger than the limit of {max_bytes} bytes (--max-data-file-size); raise the \
         limit if the file is meant to be this large"
    )
}

/// What a file that is not a regular file is, for the refusal.
fn kind_of(metadata: &std::fs::Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    "a special file"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(path: &Path, max_bytes: u64) -> String {
        let unreadable = read_all(&[path.to_path_buf()], max_bytes).unwrap_err();
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].name, path.display().to_string());
        unreadable[0].reason.clone()
    }

    #[test]
    fn a_regular_file_within_the_cap_is_read() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("codes.csv");
        std::fs::write(&path, "0123456789").unwrap();

        let texts = read_all(std::slice::from_ref(&path), 10).unwrap();

        assert_eq!(texts[0].1, "0123456789");
    }

    #[test]
    fn a_file_over_the_cap_is_refused_naming_the_limit() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("codes.csv");
        std::fs::write(&path, "0123456789").unwrap();

        let reason = refusal(&path, 9);

        assert!(reason.contains("limit of 9 bytes"), "{reason}");
        assert!(reason.contains("--max-data-file-size"), "{reason}");
    }

    #[test]
    fn a_directory_or_a_device_is_refused_without_reading() {
        let directory = tempfile::tempdir().unwrap();

        assert!(refusal(directory.path(), 1 << 20).contains("a directory"));
        #[cfg(unix)]
        assert!(refusal(Path::new("/dev/zero"), 1 << 20).contains("a device"));
    }
}
