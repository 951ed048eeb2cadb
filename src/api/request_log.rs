//! One log line per call: the gRPC method, its status code and its latency.
//!
//! A gRPC status travels in the response headers when a call fails before sending
//! anything, and otherwise in the trailers after the body; the line is written when
//! whichever carries it goes by. Only the method path is logged from the request,
//! never a message, so no request data (and no patient data) reaches the logs.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// Wraps a service so that each call is logged once it ends.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer;

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog { inner }
    }
}

/// The service [`RequestLogLayer`] makes.
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for RequestLog<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    ResponseBody: Body,
{
    type Response = Response<LoggedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = LoggedFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let call = CallRecord {
            method: request.uri().path().to_string(),
            started: Instant::now(),
        };
        LoggedFuture {
            inner: self.inner.call(request),
            call: Some(call),
        }
    }
}

struct CallRecord {
    method: String,
    started: Instant,
}

/// Logs the call in `slot`, if it is still there, so that each call logs once.
fn finish(slot: &mut Option<CallRecord>, status: Option<tonic::Code>) {
    if let Some(call) = slot.take() {
        call.finish(status);
    }
}

impl CallRecord {
    fn finish(self, status: Option<tonic::Code>) {
        let elapsed = self.started.elapsed();
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let method = self.method.as_str();
        crate::metrics::call_finished(method, status.map_or("CANCELLED", status_name), elapsed);
        match status {
            Some(code) if is_server_fault(code) => {
                tracing::warn!(
                    method,
                    status = status_name(code),
                    latency_us,
                    "call finished"
                );
            }
            Some(code) => tracing::info!(
                method,
                status = status_name(code),
                latency_us,
                "call finished"
            ),
            None => tracing::info!(
                method,
                status = "CANCELLED",
                latency_us,
                "call ended without a status"
            ),
        }
    }
}

fn status_in(headers: &HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|value| tonic::Code::from_bytes(value.as_bytes()))
}

fn is_server_fault(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Internal
            | tonic::Code::Unknown
            | tonic::Code::DataLoss
            | tonic::Code::Unavailable
    )
}

/// The canonical upper-case name of a status code, as gRPC documents them.
pub fn status_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

pin_project! {
    /// The response future of [`RequestLog`]. Dropped before it answered (the
    /// call's time limit ran out, or the caller went away), it logs the call
    /// as cancelled.
    pub struct LoggedFuture<F> {
        #[pin]
        inner: F,
        call: Option<CallRecord>,
    }

    impl<F> PinnedDrop for LoggedFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            finish(this.project().call, None);
        }
    }
}

impl<F, ResponseBody, Error> Future for LoggedFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
    ResponseBody: Body,
{
    type Output = Result<Response<LoggedBody<ResponseBody>>, Error>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(context));
        let mut call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                if let Some(code) = status_in(response.headers()) {
                    finish(&mut call, Some(code));
                }
                Ok(response.map(|inner| LoggedBody { inner, call }))
            }
            Err(error) => {
                finish(&mut call, Some(tonic::Code::Internal));
                Err(error)
            }
        })
    }
}

pin_project! {
    /// A response body that logs its call when the trailers pass, or when it is
    /// dropped unfinished (the caller went away).
    pub struct LoggedBody<B> {
        #[pin]
        inner: B,
        call: Option<CallRecord>,
    }

    impl<B> PinnedDrop for LoggedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            finish(this.project().call, None);
        }
    }
}

impl<B: Body> Body for LoggedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(context));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    finish(this.call, Some(code));
                }
            }
            Some(Err(_)) => {
                finish(this.call, Some(tonic::Code::Internal));
            }
            None => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
