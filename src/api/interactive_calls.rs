//! Tells the scheduler which calls have a caller waiting: every call to
//! cptd's services but a bulk import. Under `--call-scheduling realtime` the
//! runtime's workers run in real time only while such calls arrive during bulk
//! work ([`scheduling::follow_interactive_calls`]), so that an import with no
//! one else to serve runs as fast as under the fair policy.

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use super::{import_route::ImportMethod, method_route::TakenMethod};
use crate::scheduling;

/// Notes each interactive call as it arrives.
#[derive(Debug, Clone, Copy, Default)]
pub struct InteractiveCallsLayer;

impl<S> Layer<S> for InteractiveCallsLayer {
    type Service = InteractiveCalls<S>;

    fn layer(&self, inner: S) -> InteractiveCalls<S> {
        InteractiveCalls { inner }
    }
}

/// The service [`InteractiveCallsLayer`] makes.
#[derive(Debug, Clone)]
pub struct InteractiveCalls<S> {
    inner: S,
}

impl<S, RequestBody> Service<Request<RequestBody>> for InteractiveCalls<S>
where
    S: Service<Request<RequestBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        if is_interactive(request.uri().path()) {
            scheduling::note_interactive_call();
        }
        self.inner.call(request)
    }
}

/// Whether a call to `path` has a caller waiting on its answer within
/// milliseconds: a call to one of cptd's own services, but not a bulk import.
/// Health checks and reflection are not: a probe every few seconds would
/// otherwise slow every import it falls into, for a wait it does not notice.
fn is_interactive(path: &str) -> bool {
    path.starts_with(CPTD_SERVICES) && path != ImportMethod::PATH
}

/// The start of the path of every method of cptd's own services.
const CPTD_SERVICES: &str = "/cpt.v1.";

#[cfg(test)]
mod tests {
    use tonic::server::NamedService;

    use super::*;
    use crate::{
        api::{CodeLookupService, QualityMeasuresService},
        pb::{
            code_lookup_server::CodeLookupServer, quality_measures_server::QualityMeasuresServer,
        },
    };

    #[test]
    fn the_prefix_covers_every_cptd_service() {
        for name in [
            <CodeLookupServer<CodeLookupService> as NamedService>::NAME,
            <QualityMeasuresServer<QualityMeasuresService> as NamedService>::NAME,
        ] {
            assert!(format!("/{name}/").starts_with(CPTD_SERVICES), "{name}");
        }
    }

    #[test]
    fn every_call_to_cptd_but_an_import_is_interactive() {
        for path in [
            "/cpt.v1.CodeLookup/GetCode",
            "/cpt.v1.CodeLookup/SearchCodes",
            "/cpt.v1.QualityMeasures/RecordEncounter",
            "/cpt.v1.QualityMeasures/GetPerformance",
        ] {
            assert!(is_interactive(path), "{path}");
        }
        for path in [
            "/cpt.v1.QualityMeasures/ImportEncounters",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(!is_interactive(path), "{path}");
        }
    }
}
