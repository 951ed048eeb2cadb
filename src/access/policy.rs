//! The `--auth-policy` file: who the callers are and which roles each holds.
//!
//! ```toml
//! [[caller]]
//! name = "billing-api"
//! roles = ["reader", "recorder"]
//! token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//!
//! [[caller]]
//! name = "quality-dashboard"
//! roles = ["quality"]
//! certificate_name = "quality.internal.example"
//! ```
//!
//! Tokens are stored only as the hex SHA-256 of the token, so the file gives
//! nobody a credential.

use std::{collections::HashMap, path::Path, sync::Arc};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Role;

/// Largest policy file read; a policy is a few lines per caller.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// One identity the policy knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The name the audit trail and the logs know it by.
    pub name: String,
    /// What it may call.
    pub roles: Vec<Role>,
}

impl Caller {
    /// True when the caller may call a method that needs `role`.
    pub fn may(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }
}

/// The callers of a policy file, found by credential.
#[derive(Debug, Default)]
pub struct Policy {
    by_token_hash: HashMap<[u8; 32], Arc<Caller>>,
    by_certificate_name: HashMap<String, Arc<Caller>>,
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
#[error("the auth policy {path} is refused: {reason}")]
pub struct PolicyError {
    path: String,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    caller: Vec<CallerEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerEntry {
    name: String,
    roles: Vec<Role>,
    token_sha256: Option<String>,
    certificate_name: Option<String>,
}

impl Policy {
    /// Reads and checks a policy file; any problem refuses it whole.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let refused = |reason: String| PolicyError {
            path: path.display().to_string(),
            reason,
        };
        let text =
            crate::source_files::read_regular_file(path, MAX_POLICY_BYTES).map_err(refused)?;
        Policy::parse(&text).map_err(refused)
    }

    /// A policy from the text of a policy file.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|error| error.to_string())?;
        let mut policy = Policy::default();
        for (index, entry) in file.caller.into_iter().enumerate() {
            let at = format!("caller {} ({:?})", index + 1, entry.name);
            if entry.name.trim().is_empty() {
                return Err(format!("caller {}: name is empty", index + 1));
            }
            if entry.roles.is_empty() {
                return Err(format!("{at}: roles is empty"));
            }
            let caller = Arc::new(Caller {
                name: entry.name,
                roles: entry.roles,
            });
            match (entry.token_sha256, entry.certificate_name) {
                (Some(hex), None) => {
                    let hash = parse_sha256(&hex)
                        .ok_or_else(|| format!("{at}: token_sha256 is not 64 hex digits"))?;
                    if policy.by_token_hash.insert(hash, caller).is_some() {
                        return Err(format!("{at}: the same token_sha256 as an earlier caller"));
                    }
                }
                (None, Some(name)) => {
                    if policy.by_certificate_name.insert(name, caller).is_some() {
                        return Err(format!(
                            "{at}: the same certificate_name as an earlier caller"
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "{at}: give exactly one of token_sha256 and certificate_name"
                    ));
                }
            }
        }
        Ok(policy)
    }

    /// The caller a bearer token belongs to.
    pub fn by_token(&self, token: &str) -> Option<&Arc<Caller>> {
        self.by_token_hash
            .get(&<[u8; 32]>::from(Sha256::digest(token.as_bytes())))
    }

    /// The caller of the first of a client certificate's names the policy knows.
    pub fn by_certificate<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Option<&Arc<Caller>> {
        names
            .into_iter()
            .find_map(|name| self.by_certificate_name.get(name))
    }
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (byte, pair) in hash.iter_mut().zip(hex.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256 of "test".
    const TEST_HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn callers_are_found_by_token_and_by_certificate_name() {
        let policy = Policy::parse(&format!(
            "[[caller]]\nname = \"billing\"\nroles = [\"reader\", \"recorder\"]\ntoken_sha256 = \"{TEST_HASH}\"\n\
             [[caller]]\nname = \"dashboard\"\nroles = [\"quality\"]\ncertificate_name = \"dash.example\"\n"
        ))
        .unwrap();
        let billing = policy.by_token("test").unwrap();
        assert_eq!(billing.name, "billing");
        assert!(billing.may(Role::Recorder) && !billing.may(Role::Quality));
        assert!(policy.by_token("other").is_none());
        let dashboard = policy.by_certificate(["x", "dash.example"]).unwrap();
        assert_eq!(dashboard.name, "dashboard");
    }

    #[test]
    fn a_bad_entry_refuses_the_whole_file() {
        for (text, reason) in [
            (
                "[[caller]]\nname = \"a\"\nroles = [\"reader\"]\n",
                "exactly one",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"boss\"]\ntoken_sha256 = \"00\"\n",
                "boss",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = [\"reader\"]\ntoken_sha256 = \"00\"\n",
                "64 hex",
            ),
            (
                "[[caller]]\nname = \"a\"\nroles = []\ncertificate_name = \"a\"\n",
                "roles is empty",
            ),
            ("[[callers]]\nname = \"a\"\n", "callers"),
        ] {
            let error = Policy::parse(text).unwrap_err();
            assert!(error.contains(reason), "{error}");
        }
    }

    #[test]
    fn admin_may_do_everything() {
        let admin = Caller {
            name: "ops".into(),
            roles: vec![Role::Admin],
        };
        for role in [Role::Reader, Role::Recorder, Role::Quality, Role::Admin] {
            assert!(admin.may(role));
        }
    }
}
