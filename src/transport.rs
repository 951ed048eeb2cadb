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
//!
//! The flow-control windows the server grants are set here too
//! ([`STREAM_WINDOW`], [`CONNECTION_WINDOW`]), sized so that streams of small
//! messages are read to the end.

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

/// The flow-control window of each call: how much of a request the client may
/// send ahead of what the call has read.
///
/// `h2` guards a connection against floods of small DATA frames: each frame
/// under 256 bytes that has arrived but not been read costs 256 bytes less its
/// size from a budget of half the connection window, and a connection that
/// spends it all is closed (`GOAWAY ENHANCE_YOUR_CALM`, "too_many_data_frames").
/// Go's gRPC clients and grpcurl send every message of a stream in a DATA frame
/// of its own, and an encounter is 40 to 200 bytes; an import stops reading
/// while its earlier chunks commit, so its window fills with such frames. With
/// hyper's default windows (1 MiB each) one paused import of 140-byte
/// encounters spends about 0.9 MiB of a 0.5 MiB budget, and the client's
/// connection is dropped mid-import.
///
/// With 128 KiB a call and 8 MiB a connection, a paused import of 100-byte
/// frames holds about 200 KiB of the 4 MiB budget, so every import the server
/// admits at once ([`crate::api::MAX_CONCURRENT_IMPORTS`]) can pause on one
/// connection together; of 37-byte frames (the smallest valid encounter) one
/// holds about 760 KiB, so five can. 128 KiB still lets a client send faster
/// than an import records, anywhere the round trip is under a few milliseconds.
pub const STREAM_WINDOW: u32 = 128 * 1024;

/// The flow-control window of each connection, shared by its calls; what sets
/// the small-frame budget (half of it), see [`STREAM_WINDOW`]. Unread request
/// data stays bounded by the calls' windows: a connection holds this much only
/// with 64 calls paused at once.
pub const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

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
