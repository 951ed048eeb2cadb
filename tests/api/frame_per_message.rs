//! Streams sent one message per HTTP/2 DATA frame, as Go's gRPC clients and
//! grpcurl send them.
//!
//! The server's HTTP/2 layer guards against floods of small frames: frames it
//! has received but the call has not yet read count against a budget, and a
//! connection that exhausts it is closed (`GOAWAY ENHANCE_YOUR_CALM`,
//! "too_many_data_frames"). An import pauses its reading while its earlier
//! chunks commit, so a client that keeps sending small frames meanwhile must
//! find its flow-control window full before that budget runs out.

use std::net::SocketAddr;

use cptd::pb;
use prost::{
    Message,
    bytes::{BufMut, Bytes, BytesMut},
};
use tokio::net::TcpStream;

use crate::{
    helpers::{HANG_GUARD, spawn_app},
    quality_fixtures::{cancer_visit, import, performance_report},
};

/// `message` with the gRPC length prefix (uncompressed).
pub fn grpc_frame(message: &impl Message) -> Bytes {
    let length = message.encoded_len();
    let mut framed = BytesMut::with_capacity(5 + length);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(length).expect("a small message"));
    message
        .encode(&mut framed)
        .expect("a buffer with room for the message");
    framed.freeze()
}

/// What a client-streaming call answered: its one message (if any) and its
/// `grpc-status` and `grpc-message`.
struct Answer {
    message: Bytes,
    status: String,
    status_message: String,
}

/// Calls `method` on `address` with `messages`, each sent as one DATA frame,
/// and reads the answer. Errs with the HTTP/2 error when the connection or
/// stream is closed instead.
async fn call_frame_per_message(
    address: SocketAddr,
    method: &str,
    messages: Vec<Bytes>,
) -> Result<Answer, h2::Error> {
    let socket = TcpStream::connect(address).await.expect("connect");
    let (client, connection) = h2::client::handshake(socket).await?;
    tokio::spawn(connection);
    let mut client = client.ready().await?;
    let request = http::Request::post(format!("http://{address}{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("a valid request");
    let (response, mut body) = client.send_request(request, false)?;
    // Sent from another task, as a client sends while the answer may come
    // early (a refusal) or late (the summary).
    let sending = tokio::spawn(async move {
        for message in messages {
            body.reserve_capacity(message.len());
            while body.capacity() < message.len() {
                match std::future::poll_fn(|context| body.poll_capacity(context)).await {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error),
                    None => return Ok(()),
                }
            }
            body.send_data(message, false)?;
        }
        body.send_data(Bytes::new(), true)
    });
    let response = response.await?;
    let mut answer = response.into_body();
    let mut message = BytesMut::new();
    while let Some(data) = answer.data().await {
        let data = data?;
        let _ = answer.flow_control().release_capacity(data.len());
        message.extend_from_slice(&data);
    }
    let trailers = answer.trailers().await?.unwrap_or_default();
    let _ = sending.await;
    let text = |name: &str| {
        trailers
            .get(name)
            .map(|value| value.to_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let message = if message.len() >= 5 {
        message.freeze().slice(5..)
    } else {
        Bytes::new()
    };
    Ok(Answer {
        message,
        status: text("grpc-status"),
        status_message: text("grpc-message"),
    })
}

#[tokio::test]
async fn an_import_sent_one_small_frame_per_encounter_is_read_to_the_end() {
    // 20,000 encounters of about 140 bytes: several times the server's
    // flow-control window, in frames well below the size the guard counts as
    // small.
    let mut app = spawn_app().await;
    let encounters = 20_000;
    let messages: Vec<Bytes> = (0..encounters)
        .map(|index| {
            grpc_frame(&import(cancer_visit(
                &format!("frame-{index}"),
                "99213 1125F",
            )))
        })
        .collect();
    assert!(messages.iter().all(|message| message.len() < 200));

    let answer = tokio::time::timeout(
        HANG_GUARD,
        call_frame_per_message(
            app.address,
            "/cpt.v1.QualityMeasures/ImportEncounters",
            messages,
        ),
    )
    .await
    .expect("the import finished")
    .expect("the connection stayed open to the end of the import");

    assert_eq!(answer.status, "0", "{}", answer.status_message);
    let summary = pb::ImportEncountersResponse::decode(answer.message).expect("an import summary");
    assert_eq!((summary.accepted, summary.rejected), (encounters, 0));
    let report = performance_report(&mut app.quality_measures, "pain-intensity-quantified").await;
    assert_eq!(report.eligible_population, encounters);
}
