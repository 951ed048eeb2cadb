//! Shutdown: completing the shutdown future makes `run` return cleanly.

use crate::helpers::spawn_app;

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
