//! Who may call what: callers named by a bearer token or a client
//! certificate, roles per caller from the `--auth-policy` file, and one role
//! per method.
//!
//! The check runs on the request's headers, before its message is read or a
//! call slot taken: an unknown caller hears `UNAUTHENTICATED`, a known one
//! without the method's role `PERMISSION_DENIED`. A call let through carries
//! its [`CallerName`] in its extensions, for the audit trail.

mod policy;

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::BoxError;

pub use policy::{Caller, MAX_POLICY_BYTES, Policy, PolicyError};

use crate::tls::certificate_names;

/// What a caller may do; each method needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Code look-ups, measure definitions and claim checks: no encounter data.
    Reader,
    /// Recording, importing and voiding encounters.
    Recorder,
    /// Reports, care gaps, exports and stored encounters.
    Quality,
    /// Everything.
    Admin,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Recorder => "recorder",
            Role::Quality => "quality",
            Role::Admin => "admin",
        }
    }
}

/// The role a method needs, or `None` for health and reflection while they
/// are open to all.
fn required_role(path: &str, open_probes: bool) -> Option<Role> {
    let (service, method) = path
        .strip_prefix('/')
        .and_then(|path| path.split_once('/'))
        .unwrap_or(("", ""));
    match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => (!open_probes).then_some(Role::Reader),
        "cpt.v1.CodeLookup" | "cpt.v1.ClaimCheck" => Some(Role::Reader),
        "cpt.v1.QualityMeasures" => Some(match method {
            "ListMeasures" | "GetMeasure" => Role::Reader,
            "RecordEncounter" | "ImportEncounters" | "VoidEncounter" => Role::Recorder,
            "GetPerformance" | "GetEncounter" | "ListCareGaps" | "ExportMeasurementSet" => {
                Role::Quality
            }
            _ => Role::Admin,
        }),
        // Whatever is added later is closed until it is given a role here.
        _ => Some(Role::Admin),
    }
}

/// The identity a call was let through as, in its extensions; `None` when no
/// policy is in force (a loopback listener without `--auth-policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerName(pub Option<Arc<Caller>>);

/// A call refused before it was served; the server answers it with its status.
#[derive(Debug)]
pub struct Refused(pub tonic::Status);

impl std::fmt::Display for Refused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.0.message())
    }
}

impl std::error::Error for Refused {}

/// The check of every call, as a tower filter predicate.
#[derive(Clone)]
pub struct AccessCheck {
    /// `None`: every caller may call everything, as on a loopback listener
    /// without a policy.
    policy: Option<Arc<ArcSwap<Policy>>>,
    open_probes: bool,
}

impl AccessCheck {
    /// Every call let through.
    pub fn open() -> AccessCheck {
        AccessCheck {
            policy: None,
            open_probes: true,
        }
    }

    /// Calls checked against `policy`; health and reflection open to all
    /// when `open_probes`.
    pub fn with_policy(policy: Arc<ArcSwap<Policy>>, open_probes: bool) -> AccessCheck {
        AccessCheck {
            policy: Some(policy),
            open_probes,
        }
    }

    fn caller<B>(
        &self,
        policy: &Policy,
        request: &http::Request<B>,
    ) -> Result<Arc<Caller>, Refused> {
        if let Some(header) = request.headers().get(http::header::AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .ok_or_else(|| {
                    unauthenticated("the authorization header is not `Bearer <token>`")
                })?;
            return policy
                .by_token(token)
                .cloned()
                .ok_or_else(|| unauthenticated("the bearer token is not known"));
        }
        let certificate = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs);
        match certificate.as_ref().and_then(|chain| chain.first()) {
            Some(leaf) => {
                let names = certificate_names(leaf);
                policy
                    .by_certificate(names.iter().map(String::as_str))
                    .cloned()
                    .ok_or_else(|| {
                        unauthenticated("the client certificate names no caller of the policy")
                    })
            }
            None => Err(unauthenticated(
                "no credentials: send `authorization: Bearer <token>` or a client certificate",
            )),
        }
    }
}

fn unauthenticated(reason: &str) -> Refused {
    Refused(tonic::Status::unauthenticated(reason))
}

impl<B> tower::filter::Predicate<http::Request<B>> for AccessCheck {
    type Request = http::Request<B>;

    fn check(&mut self, mut request: http::Request<B>) -> Result<http::Request<B>, BoxError> {
        let Some(policy) = &self.policy else {
            request.extensions_mut().insert(CallerName(None));
            return Ok(request);
        };
        let Some(role) = required_role(request.uri().path(), self.open_probes) else {
            return Ok(request);
        };
        let caller = self
            .caller(&policy.load(), &request)
            .inspect_err(|refused| {
                tracing::info!(method = request.uri().path(), reason = %refused, "call refused");
            })?;
        if !caller.may(role) {
            tracing::info!(method = request.uri().path(), caller = %caller.name, role = role.as_str(), "call refused: role missing");
            return Err(Box::new(Refused(tonic::Status::permission_denied(
                format!(
                    "caller {:?} lacks the role {:?} that {} needs",
                    caller.name,
                    role.as_str(),
                    request.uri().path()
                ),
            ))));
        }
        request.extensions_mut().insert(CallerName(Some(caller)));
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_the_role_the_issue_gives_it() {
        let role = |path| required_role(path, true);
        assert_eq!(role("/cpt.v1.CodeLookup/GetCode"), Some(Role::Reader));
        assert_eq!(role("/cpt.v1.ClaimCheck/CheckClaim"), Some(Role::Reader));
        assert_eq!(
            role("/cpt.v1.QualityMeasures/GetMeasure"),
            Some(Role::Reader)
        );
        assert_eq!(
            role("/cpt.v1.QualityMeasures/ImportEncounters"),
            Some(Role::Recorder)
        );
        assert_eq!(
            role("/cpt.v1.QualityMeasures/VoidEncounter"),
            Some(Role::Recorder)
        );
        assert_eq!(
            role("/cpt.v1.QualityMeasures/GetEncounter"),
            Some(Role::Quality)
        );
        assert_eq!(
            role("/cpt.v1.QualityMeasures/ExportMeasurementSet"),
            Some(Role::Quality)
        );
        assert_eq!(role("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            required_role("/grpc.health.v1.Health/Check", false),
            Some(Role::Reader)
        );
        assert_eq!(role("/cpt.v1.Other/Thing"), Some(Role::Admin));
        assert_eq!(role("garbage"), Some(Role::Admin));
    }
}
