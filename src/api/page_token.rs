//! Opaque page tokens (AIP-158) bound to the request that made them.
//!
//! A token records where the next page starts and a fingerprint of the request's
//! query and filters; a token sent with a different query or filters is refused
//! rather than answered with a page of some other listing.

use std::hash::{Hash, Hasher};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::codes::CodeValue;

/// Default page size when a request sets none.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// Largest page; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: usize = 100;

/// Where the next page begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStart {
    /// After this many results of a ranked list.
    Offset(usize),
    /// After this code, in code order.
    After(CodeValue),
}

/// Hashes whatever identifies a listing, so a token can be checked against it.
/// SHA-256 rather than the standard library's hasher, whose output may change
/// from one Rust release to the next: a token must stay valid across a
/// rebuild of the server, and across replicas built apart.
pub fn fingerprint(request: &impl Hash) -> u64 {
    let mut hasher = StableHasher(Sha256::new());
    request.hash(&mut hasher);
    hasher.finish()
}

/// A [`Hasher`] whose output depends only on the bytes it is given.
struct StableHasher(Sha256);

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}

/// Encodes a token for the page starting at `start` of the listing `fingerprint`.
pub fn encode(start: PageStart, fingerprint: u64) -> String {
    let plain = match start {
        PageStart::Offset(offset) => format!("o:{offset}:{fingerprint:016x}"),
        PageStart::After(code) => format!("a:{code}:{fingerprint:016x}"),
    };
    URL_SAFE_NO_PAD.encode(plain)
}

/// Reads a token; an empty token is the first page. The error says what is wrong
/// with the token, for an `INVALID_ARGUMENT` on `page_token`.
pub fn decode(token: &str, expected_fingerprint: u64) -> Result<Option<PageStart>, &'static str> {
    if token.is_empty() {
        return Ok(None);
    }
    let unreadable = "page token is not one this service issued; pass next_page_token unchanged";
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| unreadable)?;
    let plain = std::str::from_utf8(&bytes).map_err(|_| unreadable)?;
    let mut parts = plain.splitn(3, ':');
    let (Some(kind), Some(position), Some(fingerprint)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(unreadable);
    };
    let fingerprint = u64::from_str_radix(fingerprint, 16).map_err(|_| unreadable)?;
    if fingerprint != expected_fingerprint {
        return Err(
            "page token belongs to a request with a different query or filters; \
                    send the same query and filters, or no token for the first page",
        );
    }
    let start = match kind {
        "o" => PageStart::Offset(position.parse().map_err(|_| unreadable)?),
        "a" => PageStart::After(CodeValue::parse(position).map_err(|_| unreadable)?),
        _ => return Err(unreadable),
    };
    Ok(Some(start))
}

/// The page size to use: 0 means the default, larger than the maximum is clamped,
/// negative is an error.
pub fn page_size(requested: i32) -> Result<usize, &'static str> {
    match requested {
        ..0 => Err("page_size must not be negative"),
        0 => Ok(DEFAULT_PAGE_SIZE),
        size => Ok((size as usize).min(MAX_PAGE_SIZE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn tokens_round_trip(offset in 0usize..1_000_000, print in any::<u64>()) {
            let token = encode(PageStart::Offset(offset), print);
            prop_assert_eq!(decode(&token, print), Ok(Some(PageStart::Offset(offset))));
        }

        #[test]
        fn a_token_of_another_listing_is_refused(print in any::<u64>(), other in any::<u64>()) {
            prop_assume!(print != other);
            let token = encode(PageStart::Offset(20), print);
            prop_assert!(decode(&token, other).is_err());
        }

        #[test]
        fn garbage_never_panics(token in "\\PC{0,64}") {
            let _ = decode(&token, 7);
        }
    }

    #[test]
    fn a_fingerprint_is_the_same_in_every_build() {
        // Fixed once: a token issued by one build must be read by the next.
        assert_eq!(fingerprint(&("lumbar", 7u8)), 0xa03a_b84c_f9fe_b003);
    }

    #[test]
    fn page_sizes_default_and_clamp() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(7), Ok(7));
        assert_eq!(page_size(10_000), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }
}
