//! Load shedding: at most a fixed number of calls run at once across all
//! connections; a call beyond that is answered `RESOURCE_EXHAUSTED` at once
//! rather than queued, so overload never grows an unbounded backlog.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};

/// Admits calls while fewer than `limit` are running.
#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl AdmissionLayer {
    /// A layer that lets `limit` calls run at once.
    pub fn new(limit: usize) -> AdmissionLayer {
        AdmissionLayer {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission {
            inner,
            permits: self.permits.clone(),
            limit: self.limit,
        }
    }
}

/// The service [`AdmissionLayer`] makes.
#[derive(Debug, Clone)]
pub struct Admission<S> {
    inner: S,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl<S, RequestBody, ResponseBody> Service<Request<RequestBody>> for Admission<S>
where
    S: Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    ResponseBody: Default,
{
    type Response = Response<ResponseBody>;
    type Error = S::Error;
    type Future = AdmissionFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => AdmissionFuture::Admitted {
                inner: self.inner.call(request),
                permit: Some(permit),
            },
            Err(_) => {
                let status = tonic::Status::resource_exhausted(format!(
                    "server is at its limit of {} concurrent calls; retry with backoff",
                    self.limit
                ));
                AdmissionFuture::Refused {
                    response: Some(status.into_http()),
                }
            }
        }
    }
}

pin_project! {
    /// The response future of [`Admission`].
    #[project = AdmissionProjection]
    pub enum AdmissionFuture<F> {
        /// Running, holding a permit until the handler answers.
        Admitted { #[pin] inner: F, permit: Option<OwnedSemaphorePermit> },
        /// Refused; the answer is ready.
        Refused { response: Option<Response<tonic::body::Body>> },
    }
}

impl<F, ResponseBody, Error> Future for AdmissionFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, Error>>,
    ResponseBody: Default,
{
    type Output = Result<Response<ResponseBody>, Error>;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmissionProjection::Admitted { inner, permit } => {
                let output = std::task::ready!(inner.poll(context));
                permit.take();
                Poll::Ready(output)
            }
            AdmissionProjection::Refused { response } => {
                let (parts, _) = response.take().unwrap_or_default().into_parts();
                Poll::Ready(Ok(Response::from_parts(parts, ResponseBody::default())))
            }
        }
    }
}
