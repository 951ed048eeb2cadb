//! Shutdown: completing the shutdown future makes `run` return cleanly.

use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::helpers::{HANG_GUARD, spawn_app};

#[tokio::test]
async fn run_returns_ok_once_shutdown_completes() {
    // Arrange
    let mut app = spawn_app().await;
    app.code_lookup
        .get_code(cptd::pb::GetCodeRequest {
            code: "64483".to_string(),
            as_of: String::new(),
        })
        .await
        .expect("the server answers before shutdown");

    // Act
    let stopped = app.stop().await;

    // Assert
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[tokio::test]
async fn run_returns_ok_when_shut_down_before_any_call() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let stopped = app.stop().await;

    // Assert
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[test]
fn sigterm_and_sigint_stop_the_binary_cleanly() {
    for signal in ["TERM", "INT"] {
        // Arrange
        let mut server = crate::binary::ServerProcess::start(&[]);

        // Act
        server.signal(signal);
        let status = server.wait();

        // Assert
        assert!(
            status.success(),
            "SIG{signal} ends with exit 0, got {status}"
        );
        server.wait_for_log(|line| line.contains("\"stopped\""));
    }
}

#[tokio::test]
async fn health_turns_not_serving_as_soon_as_a_drain_starts() {
    // Arrange: watches of the whole server and of one service, each first
    // told SERVING.
    let mut app = spawn_app().await;
    let mut watches = Vec::new();
    for service in ["", "cpt.v1.CodeLookup"] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let mut watch = app.health.watch(request).await.unwrap().into_inner();
        let first = watch.message().await.unwrap().expect("a first status");
        assert_eq!(first.status(), ServingStatus::Serving, "{service:?}");
        watches.push(watch);
    }

    // Act: the open watches are calls in flight, so the drain waits for them.
    app.begin_shutdown();

    // Assert
    for watch in &mut watches {
        let next = tokio::time::timeout(HANG_GUARD, watch.message())
            .await
            .expect("a status came once the drain started")
            .unwrap()
            .expect("the watch is still open");
        assert_eq!(next.status(), ServingStatus::NotServing);
    }
    drop(watches);
    assert!(app.stop().await.is_ok());
}

#[test]
fn text_logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    // A port already taken: the server logs why it cannot listen, and exits.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();

    let (status, _, stderr) =
        crate::binary::run_to_end(&["--listen", &address, "--in-memory", "--log-format", "text"]);

    assert!(!status.success());
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in {stderr:?}");
}
