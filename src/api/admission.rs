//! Admission of calls: a call takes one of the server's call places only once
//! its first request message is in, and is refused at once when none is free.
//!
//! A place taken on the headers, as tower's concurrency limit takes it, lets a
//! client that sends headers and nothing more hold places for the whole
//! request timeout: a thousand such calls locked every method out, health
//! checks included. Here such a call waits outside the limit, holding only its
//! HTTP/2 stream (bounded per connection and by the number of connections), and
//! is ended with `DEADLINE_EXCEEDED` when its first message has not come within
//! `--message-timeout`. Calls with a place are still never queued: one more than
//! the limit is answered `RESOURCE_EXHAUSTED`, as the API promises.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use http_body::{Body as _, Frame};
use prost::bytes::{Buf, Bytes};
use tokio::sync::Semaphore;
use tonic::{Status, body::Body};
use tower::{BoxError, Layer, Service};

/// Bytes before a gRPC message: a compression flag and a four-byte length.
const MESSAGE_PREFIX: usize = 5;

/// Admits calls to the services it wraps; see the module docs.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    places: Arc<Semaphore>,
    limit: usize,
    message_timeout: Duration,
    max_message_bytes: usize,
}

impl AdmissionLayer {
    /// At most `limit` calls served at once; each waits up to
    /// `message_timeout` for its first message of at most `max_message_bytes`
    /// (a larger one is let through at its prefix, for the codec to refuse).
    pub fn new(limit: usize, message_timeout: Duration, max_message_bytes: usize) -> Self {
        AdmissionLayer {
            places: Arc::new(Semaphore::new(limit)),
            limit,
            message_timeout,
            max_message_bytes,
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AdmissionLayer`] makes.
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    layer: AdmissionLayer,
}

type Answer = Result<Response<Body>, BoxError>;

impl<S> Service<Request<Body>> for Admission<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone waits for the next call; the service found ready serves
        // this one.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (parts, mut body) = request.into_parts();
            let arrived = tokio::time::timeout(
                layer.message_timeout,
                first_message(&mut body, layer.max_message_bytes),
            )
            .await;
            let Ok(buffered) = arrived else {
                return Ok(Status::deadline_exceeded(format!(
                    "no request message arrived within {:?} of the call's headers \
                     (--message-timeout)",
                    layer.message_timeout
                ))
                .into_http());
            };
            let Ok(_place) = layer.places.try_acquire_owned() else {
                crate::metrics::call_shed();
                return Ok(Status::resource_exhausted(format!(
                    "the server is at its limit of {} concurrent calls \
                     (--max-concurrent-calls); retry with backoff",
                    layer.limit
                ))
                .into_http());
            };
            let body = Body::new(Replayed {
                buffered,
                rest: body,
            });
            inner
                .call(Request::from_parts(parts, body))
                .await
                .map_err(Into::into)
        })
    }
}

/// The frames of `body` up to the end of its first message (or its end, or
/// its first error, or past `max_message_bytes`), to be replayed.
async fn first_message(
    body: &mut Body,
    max_message_bytes: usize,
) -> VecDeque<Result<Frame<Bytes>, Status>> {
    let mut buffered = VecDeque::new();
    let mut prefix = Vec::with_capacity(MESSAGE_PREFIX);
    let mut data_bytes = 0usize;
    loop {
        let frame = std::future::poll_fn(|context| Pin::new(&mut *body).poll_frame(context)).await;
        let Some(frame) = frame else {
            return buffered;
        };
        let mut complete = frame.is_err();
        if let Ok(data) = frame.as_ref().map(|frame| frame.data_ref()) {
            match data {
                Some(data) => {
                    data_bytes += data.len();
                    let wanted = MESSAGE_PREFIX - prefix.len();
                    prefix.extend(data.chunk().iter().take(wanted));
                }
                None => complete = true,
            }
        }
        buffered.push_back(frame);
        if prefix.len() == MESSAGE_PREFIX {
            let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
            if length > max_message_bytes || data_bytes >= MESSAGE_PREFIX + length {
                complete = true;
            }
        }
        if complete {
            return buffered;
        }
    }
}

/// A request body whose first frames were read ahead: they come first, then
/// the rest.
struct Replayed {
    buffered: VecDeque<Result<Frame<Bytes>, Status>>,
    rest: Body,
}

impl http_body::Body for Replayed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        match this.buffered.pop_front() {
            Some(frame) => Poll::Ready(Some(frame)),
            None => Pin::new(&mut this.rest).poll_frame(context),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.buffered.is_empty() && self.rest.is_end_stream()
    }
}
