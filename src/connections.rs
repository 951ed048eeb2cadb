//! Accepting client connections: how many may be open at once, what happens
//! when accepting fails, and when a silent connection is closed.
//!
//! tonic's own accept loop retries a failed accept at once, so at the
//! process's file-descriptor limit (EMFILE), with connections waiting in the
//! kernel's queue, it spun a core and served nobody, logging nothing. Here:
//!
//! - at most `--max-connections` are open at once; at the limit the server
//!   stops accepting until one closes, and the kernel's listen queue holds
//!   the rest (the limit is meant to be reached before the descriptor limit);
//! - a failed accept is retried after [`ACCEPT_BACKOFF`], logged once per run
//!   of failures and once when accepting works again;
//! - a connection from which nothing has been read for `--connection-idle-timeout`
//!   is closed. hyper's HTTP/2 server waits for a client's preface without end
//!   and sends its keepalive pings only after it, so without this a socket that
//!   never speaks holds a descriptor for ever. A live client answers the
//!   server's pings, so it is never idle for longer than the ping interval.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    time::{Instant, Sleep},
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// How long the accept loop waits after a failed accept before it tries again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What bounds the connections a server keeps.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// How long a connection may go without sending anything.
    pub idle_timeout: Duration,
}

/// The connections accepted on `listener`, within `limits`, for
/// `serve_with_incoming_shutdown`. Accepting stops, and the listener is
/// closed, once the stream is dropped.
pub fn accept(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> ReceiverStream<Result<ServedConnection, std::convert::Infallible>> {
    let (accepted, incoming) = mpsc::channel(1);
    tokio::spawn(accept_loop(listener, limits, accepted));
    ReceiverStream::new(incoming)
}

async fn accept_loop(
    listener: TcpListener,
    limits: ConnectionLimits,
    accepted: mpsc::Sender<Result<ServedConnection, std::convert::Infallible>>,
) {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let mut failing = false;
    let mut at_limit = false;
    loop {
        let place = match places.clone().try_acquire_owned() {
            Ok(place) => {
                // Logged again only once the load has fallen below the limit.
                at_limit &= places.available_permits() == 0;
                place
            }
            Err(_) => {
                if !at_limit {
                    at_limit = true;
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "at the connection limit (--max-connections); accepting again as \
                         connections close"
                    );
                }
                tokio::select! {
                    place = places.clone().acquire_owned() => match place {
                        Ok(place) => place,
                        Err(_) => return,
                    },
                    () = accepted.closed() => return,
                }
            }
        };
        let result = tokio::select! {
            result = listener.accept() => result,
            () = accepted.closed() => return,
        };
        match result {
            Ok((stream, _)) => {
                if failing {
                    failing = false;
                    tracing::info!("accepting connections again");
                }
                // Answers are small; waiting to fill a packet only adds latency.
                let _ = stream.set_nodelay(true);
                let connection = ServedConnection::new(stream, place, limits.idle_timeout);
                if accepted.send(Ok(connection)).await.is_err() {
                    return;
                }
            }
            // The client gave up between its connect and our accept: nothing
            // is wrong with the server.
            Err(error) if is_one_connections_fault(&error) => {}
            Err(error) => {
                if !failing {
                    failing = true;
                    tracing::error!(
                        %error,
                        retry_ms = ACCEPT_BACKOFF.as_millis() as u64,
                        "cannot accept connections; retrying until it works"
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

fn is_one_connections_fault(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// An accepted connection: closed once idle too long, and holding its place
/// among the open connections until it is dropped.
#[derive(Debug)]
pub struct ServedConnection {
    stream: TcpStream,
    idle_timeout: Duration,
    last_read: Instant,
    /// Fires at the earliest time the connection could have been idle too
    /// long; moved on lazily, so that a read costs no timer update.
    idle_check: Pin<Box<Sleep>>,
    _place: OwnedSemaphorePermit,
}

impl ServedConnection {
    fn new(stream: TcpStream, place: OwnedSemaphorePermit, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        ServedConnection {
            stream,
            idle_timeout,
            last_read: now,
            idle_check: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            _place: place,
        }
    }

    /// Ready with an error once nothing has been read for the idle timeout.
    fn poll_idle(&mut self, context: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.idle_check.as_mut().poll(context).is_pending() {
                return Poll::Pending;
            }
            let idle_until = self.last_read + self.idle_timeout;
            if idle_until <= Instant::now() {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nothing read within the idle timeout (--connection-idle-timeout)",
                ));
            }
            self.idle_check.as_mut().reset(idle_until);
        }
    }
}

impl Connected for ServedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for ServedConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buffer.filled().len();
        match Pin::new(&mut this.stream).poll_read(context, buffer) {
            Poll::Ready(Ok(())) => {
                if buffer.filled().len() > before {
                    this.last_read = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_idle(context).map(Err),
            failed => failed,
        }
    }
}

impl AsyncWrite for ServedConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}
