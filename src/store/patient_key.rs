//! The key of the patient-id hash, and the hash itself.
//!
//! A patient id is kept only as HMAC-SHA256 under a secret key, so the store
//! holds no id in clear and the hashes cannot be reversed by hashing guesses
//! without the key. The key is given through `CPTD_PATIENT_ID_KEY` (hex) or
//! created on first start in the data directory, readable by its owner only.

use std::{fmt, fs, io::Write, path::Path};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::StoreError;
use crate::measures::PatientId;

/// Bytes in a key.
pub const KEY_BYTES: usize = 32;

/// The file in the data directory that holds the key, as hex.
pub const KEY_FILE: &str = "patient-id.key";

/// Largest key file read: 64 hex digits and a line end, with room for white
/// space an editor may add.
const MAX_KEY_FILE_BYTES: u64 = 1024;

/// A secret key for the patient-id hash. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct PatientIdKey([u8; KEY_BYTES]);

impl fmt::Debug for PatientIdKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PatientIdKey(<redacted>)")
    }
}

impl PatientIdKey {
    /// Reads a key written as 64 hex digits (surrounding white space ignored).
    ///
    /// ```
    /// use cptd::store::PatientIdKey;
    ///
    /// assert!(PatientIdKey::from_hex(&"ab".repeat(32)).is_ok());
    /// assert!(PatientIdKey::from_hex("abc").is_err());
    /// ```
    pub fn from_hex(text: &str) -> Result<PatientIdKey, String> {
        let text = text.trim();
        if text.len() != KEY_BYTES * 2 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(format!(
                "a patient-id key is {} hex digits ({KEY_BYTES} bytes)",
                KEY_BYTES * 2
            ));
        }
        let mut key = [0u8; KEY_BYTES];
        for (index, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16)
                .map_err(|error| error.to_string())?;
        }
        Ok(PatientIdKey(key))
    }

    /// A new random key.
    pub fn random() -> Result<PatientIdKey, StoreError> {
        let mut key = [0u8; KEY_BYTES];
        getrandom::fill(&mut key)
            .map_err(|error| StoreError::Key(format!("no randomness for a new key: {error}")))?;
        Ok(PatientIdKey(key))
    }

    /// A file-name suffix no other opening uses: taken from the new key
    /// itself, which is random, and revealing none of it worth having.
    fn staging_suffix(&self) -> String {
        let tag = self.hasher().hash_bytes(b"staging file name");
        tag[..8].iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// The key in the file at `path` (a mounted secret, say): 64 hex digits.
    pub fn from_file(path: &Path) -> Result<PatientIdKey, StoreError> {
        let text = crate::source_files::read_regular_file(path, MAX_KEY_FILE_BYTES)
            .map_err(|error| StoreError::Key(format!("{}: {error}", path.display())))?;
        PatientIdKey::from_hex(&text)
            .map_err(|error| StoreError::Key(format!("{}: {error}", path.display())))
    }

    /// The key of `directory`: read from its key file, or created there (mode
    /// 0600) when there is none.
    pub fn in_directory(directory: &Path) -> Result<PatientIdKey, StoreError> {
        let path = directory.join(KEY_FILE);
        // Looked at before it is opened: a FIFO put in its place would hang
        // the start, a device fill the memory.
        if let Ok(metadata) = fs::metadata(&path)
            && (!metadata.is_file() || metadata.len() > MAX_KEY_FILE_BYTES)
        {
            return Err(StoreError::Key(format!(
                "{} is not a key file: a key file is a regular file of 64 hex digits; remove it \
                 and start again to make a new one only if nothing was stored with it",
                path.display()
            )));
        }
        match fs::read_to_string(&path) {
            Ok(text) => PatientIdKey::from_hex(&text)
                .map_err(|error| StoreError::Key(format!("{}: {error}", path.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = PatientIdKey::random()?;
                // Written whole and synced under a private name, then linked into
                // place, which fails if the file appeared meanwhile: two servers
                // starting at once on one directory agree on one complete key.
                let staged = directory.join(format!("{KEY_FILE}.{}.tmp", key.staging_suffix()));
                let io_error = |error| StoreError::Io {
                    path: staged.clone(),
                    error,
                };
                let mut options = fs::OpenOptions::new();
                options.write(true).create(true).truncate(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&staged).map_err(io_error)?;
                file.write_all(format!("{}\n", key.to_hex()).as_bytes())
                    .map_err(io_error)?;
                // The key must outlive a crash, or every stored hash is orphaned.
                file.sync_all().map_err(io_error)?;
                let linked = fs::hard_link(&staged, &path);
                let _ = fs::remove_file(&staged);
                match linked {
                    Ok(()) => {
                        // The new name itself must survive a power cut.
                        if let Ok(parent) = fs::File::open(directory) {
                            let _ = parent.sync_all();
                        }
                        tracing::info!(path = %path.display(), "created a new patient-id key");
                        Ok(key)
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        PatientIdKey::in_directory(directory)
                    }
                    Err(error) => Err(StoreError::Io { path, error }),
                }
            }
            Err(error) => Err(StoreError::Io { path, error }),
        }
    }

    /// A hasher keyed with this key.
    pub fn hasher(&self) -> PatientHasher {
        // HMAC takes a key of any length, so this cannot fail.
        let mac = Hmac::<Sha256>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        PatientHasher { mac }
    }
}

/// Computes keyed hashes of patient ids.
#[derive(Clone)]
pub struct PatientHasher {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for PatientHasher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PatientHasher")
    }
}

impl PatientHasher {
    /// HMAC-SHA256 of the id.
    pub fn hash(&self, patient_id: &PatientId) -> [u8; 32] {
        self.hash_bytes(patient_id.expose().as_bytes())
    }

    /// HMAC-SHA256 of any bytes; the store uses it to recognise its own key.
    pub fn hash_bytes(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_file_is_private_and_read_back() {
        let directory = tempfile::tempdir().unwrap();
        let created = PatientIdKey::in_directory(directory.path()).unwrap();
        let read = PatientIdKey::in_directory(directory.path()).unwrap();
        assert_eq!(created, read);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(directory.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_that_is_no_regular_file_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        fs::create_dir(directory.path().join(KEY_FILE)).unwrap();

        let refused = PatientIdKey::in_directory(directory.path()).unwrap_err();

        assert!(
            refused.to_string().contains("is not a key file"),
            "{refused}"
        );
    }

    #[test]
    fn hashes_depend_on_the_key() {
        let id = PatientId::parse("MRN-1").unwrap();
        let one = PatientIdKey::from_hex(&"01".repeat(32)).unwrap().hasher();
        let two = PatientIdKey::from_hex(&"02".repeat(32)).unwrap().hasher();
        assert_eq!(one.hash(&id), one.hash(&id));
        assert_ne!(one.hash(&id), two.hash(&id));
        assert!(!format!("{:?}", PatientIdKey::from_hex(&"01".repeat(32)).unwrap()).contains("01"));
    }
}
