//! One method served by hand, the rest of its service by the generated server.
//!
//! tonic's generated servers fix one codec per service. Two methods need
//! another: `GetCode` writes answers encoded once per snapshot, and
//! `ImportEncounters` reads its messages undecoded. [`MethodRoute`] sits in
//! front of the generated server, hands calls to that one method to a
//! [`TakenMethod`], which serves them through tonic's own handling for the
//! method's kind, and passes every other call on unchanged.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use prost::bytes::Bytes;
use tonic::{
    body::Body,
    codegen::{BoxFuture, Service, http},
    server::NamedService,
};

/// A protobuf message kept encoded: an answer encoded once, or a request
/// decoded later, off the runtime.
#[derive(Debug, Clone)]
pub struct EncodedMessage(pub Bytes);

/// A method served by hand.
pub trait TakenMethod: Clone + Send + 'static {
    /// The method's path, `/package.Service/Method`.
    const PATH: &'static str;

    /// Serves one call, refusing request messages over
    /// `max_decoding_message_size` bytes as the generated server would.
    fn serve(
        &self,
        request: http::Request<Body>,
        max_decoding_message_size: usize,
    ) -> BoxFuture<http::Response<Body>, Infallible>;
}

/// `generated`, with the calls to `T::PATH` served by `taken`.
#[derive(Debug, Clone)]
pub struct MethodRoute<T, G> {
    taken: T,
    generated: G,
    max_decoding_message_size: usize,
}

impl<T, G> MethodRoute<T, G> {
    /// Routes `T::PATH` to `taken` and the rest to `generated`, which the
    /// caller has set up with the same `max_decoding_message_size`.
    pub fn new(taken: T, generated: G, max_decoding_message_size: usize) -> MethodRoute<T, G> {
        MethodRoute {
            taken,
            generated,
            max_decoding_message_size,
        }
    }
}

impl<T, G: NamedService> NamedService for MethodRoute<T, G> {
    const NAME: &'static str = G::NAME;
}

impl<T, G> Service<http::Request<Body>> for MethodRoute<T, G>
where
    T: TakenMethod,
    G: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future = BoxFuture<http::Response<Body>, Infallible>,
        >,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Generated servers are always ready; so is the taken method.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() == T::PATH {
            self.taken.serve(request, self.max_decoding_message_size)
        } else {
            self.generated.call(request)
        }
    }
}
