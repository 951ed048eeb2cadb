//! Accepted TCP connections, shaped for many small gRPC answers.
//!
//! `h2` treats a connection that supports vectored writes differently: it keeps
//! every DATA payload of 256 bytes or more out of its write buffer and flushes
//! before buffering the next frame. Most `Code` answers are 300 to 500 bytes, so
//! on a plain `TcpStream` each such answer costs its own `write(2)` and answers to
//! concurrent calls stop sharing one. A connection that does not claim vectored
//! writes makes `h2` copy payloads under 1 KiB into its buffer instead, and a
//! batch of answers leaves in one write. `BENCHMARKS.md` has the measurements
//! (about 1.7 writes per `GetCode` call before, 0.7 after).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// A TCP connection that forwards everything but the claim of vectored writes.
#[derive(Debug)]
pub struct BufferedConnection(TcpStream);

impl AsyncRead for BufferedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(context, buffer)
    }
}

impl AsyncWrite for BufferedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(context, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(context)
    }

    // `is_write_vectored` keeps its default, `false`: that is the point.
}

impl Connected for BufferedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.0.connect_info()
    }
}

/// The connections accepted on `listener`, with Nagle's algorithm off so that a
/// lone answer is not held back waiting for more.
pub fn accept(listener: TcpListener) -> impl Stream<Item = io::Result<BufferedConnection>> {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(BufferedConnection))
}
