//! Defect 2: idle connections are closed, each connection's calls are
//! bounded in its SETTINGS, the number of connections is bounded, and at the
//! file-descriptor limit the server backs off and serves again once
//! descriptors free up.

use std::process::Command;

use tokio::{io::AsyncReadExt, net::TcpStream};

use crate::{
    binary::{CPTD, ServerProcess},
    helpers::{HANG_GUARD, connect},
    hostile::raw_connection,
};

/// Answers a `GetCode` through a new connection, within the hang guard.
async fn get_code_answers(address: std::net::SocketAddr) {
    let call = async {
        let mut client =
            cptd::pb::code_lookup_client::CodeLookupClient::new(connect(address).await);
        client
            .get_code(cptd::pb::GetCodeRequest {
                code: "64483".into(),
                as_of: String::new(),
            })
            .await
    };
    let answer = tokio::time::timeout(HANG_GUARD, call)
        .await
        .expect("GetCode answered within the hang guard")
        .expect("GetCode succeeded");
    assert_eq!(answer.into_inner().code, "64483");
}

/// Reads `socket` until the server closes it.
async fn closed_by_server(mut socket: TcpStream) {
    let mut buffer = [0u8; 256];
    loop {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn five_hundred_silent_sockets_are_closed_by_the_server() {
    // Arrange
    let server = ServerProcess::start(&[
        "--connection-idle-timeout",
        "1s",
        "--keepalive-interval",
        "300ms",
    ]);
    let mut sockets = Vec::new();
    for _ in 0..500 {
        sockets.push(TcpStream::connect(server.address).await.expect("connect"));
    }

    // Act
    let closing = futures_all(sockets.into_iter().map(closed_by_server));
    tokio::time::timeout(HANG_GUARD, closing)
        .await
        .expect("the server closed every silent socket");

    // Assert: and it serves a client that speaks.
    get_code_answers(server.address).await;
}

/// Runs every future to its end.
async fn futures_all(futures: impl Iterator<Item = impl Future<Output = ()> + Send + 'static>) {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    for task in tasks {
        task.await.expect("the task ran");
    }
}

#[tokio::test]
async fn settings_bound_the_calls_on_one_connection() {
    let server = ServerProcess::start(&["--max-streams-per-connection", "7"]);
    let mut connection = raw_connection(server.address).await;

    // A round trip, so that the server's SETTINGS have been read.
    super::admission::answered_behind(&mut connection).await;

    assert_eq!(connection.current_max_send_streams(), 7);
}

#[tokio::test]
async fn at_the_connection_limit_a_client_is_served_once_a_silent_one_is_closed() {
    // Arrange: both places taken by sockets that never speak.
    let mut server = ServerProcess::start(&[
        "--max-connections",
        "2",
        "--connection-idle-timeout",
        "1s",
        "--keepalive-interval",
        "300ms",
    ]);
    let _silent: Vec<_> = [
        TcpStream::connect(server.address).await.unwrap(),
        TcpStream::connect(server.address).await.unwrap(),
    ]
    .into();

    // Act and assert
    get_code_answers(server.address).await;
    server.wait_for_log(|line| line.contains("at the connection limit"));
}

#[tokio::test]
async fn at_the_descriptor_limit_the_server_backs_off_and_serves_again() {
    // Arrange: a server with few descriptors and more connections allowed
    // than it has descriptors for.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "ulimit -n 64 && exec \"$0\" \"$@\"",
        CPTD,
        "--listen",
        "127.0.0.1:0",
        "--in-memory",
        "--connection-idle-timeout",
        "1s",
        "--keepalive-interval",
        "300ms",
    ]);
    let mut server = ServerProcess::launch(command);
    let mut flood = Vec::new();
    for _ in 0..200 {
        flood.push(TcpStream::connect(server.address).await.expect("connect"));
    }
    server.wait_for_log(|line| line.contains("cannot accept connections"));

    // Act: the flood goes away.
    drop(flood);

    // Assert
    get_code_answers(server.address).await;
    server.wait_for_log(|line| line.contains("accepting connections again"));
    let failures = server
        .log_lines()
        .iter()
        .filter(|line| line.contains("cannot accept connections"))
        .count();
    let recoveries = server
        .log_lines()
        .iter()
        .filter(|line| line.contains("accepting connections again"))
        .count();
    assert!(
        failures <= recoveries + 1,
        "one line per run of failures, not one per failed accept: {failures} failures, \
         {recoveries} recoveries"
    );
}
