//! Hostile and broken clients and operators (issue 23): each probe that once
//! took the server down, exposed data or answered wrongly, replayed against
//! the real binary or the real server, through raw sockets and a raw HTTP/2
//! client where a well-behaved gRPC client cannot send what is needed.

mod admission;
mod bad_input;
mod connections;
mod files;
mod operator_inputs;
mod per_provider;
mod signals;

use std::net::SocketAddr;

use prost::bytes::Bytes;
use tokio::net::TcpStream;

/// A call that sent its headers and nothing more, held open.
pub struct StalledCall {
    /// The answer, once the server gives one.
    pub response: h2::client::ResponseFuture,
    /// The request body, still open; dropping it would reset the call.
    pub body: h2::SendStream<Bytes>,
}

/// A raw HTTP/2 connection to `address`, its driver running on a task.
pub async fn raw_connection(address: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let socket = TcpStream::connect(address).await.expect("connect");
    let (client, connection) = h2::client::handshake(socket)
        .await
        .expect("an HTTP/2 handshake");
    tokio::spawn(connection);
    client
}

/// Starts a gRPC call of `method` on `client` with its headers only.
pub async fn stall_call(
    client: &mut h2::client::SendRequest<Bytes>,
    address: SocketAddr,
    method: &str,
) -> StalledCall {
    let mut ready = client.clone().ready().await.expect("a stream slot");
    let request = http::Request::post(format!("http://{address}{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a valid request");
    let (response, body) = ready
        .send_request(request, false)
        .expect("the headers are sent");
    *client = ready;
    StalledCall { response, body }
}

/// The `grpc-status` of an answer (trailers-only or after the body), or
/// what ended the call instead.
pub async fn grpc_status_of(response: h2::client::ResponseFuture) -> Result<String, h2::Error> {
    let response = response.await?;
    if let Some(status) = response.headers().get("grpc-status") {
        return Ok(status.to_str().unwrap_or_default().to_string());
    }
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let data = data?;
        let _ = body.flow_control().release_capacity(data.len());
    }
    let trailers = body.trailers().await?.unwrap_or_default();
    Ok(trailers
        .get("grpc-status")
        .map(|value| value.to_str().unwrap_or_default().to_string())
        .unwrap_or_default())
}
