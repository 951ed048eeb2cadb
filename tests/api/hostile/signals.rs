//! Defect 8: a second SIGTERM or SIGINT ends the drain at once.

use crate::{binary::ServerProcess, hostile::stall_call};

#[test]
fn a_second_signal_cuts_a_long_drain_short() {
    for signal in ["TERM", "INT"] {
        // Arrange: a drain that would last minutes, held by a call whose
        // client sent its headers and nothing more.
        let mut server = ServerProcess::start(&[
            "--shutdown-grace",
            "10m",
            "--message-timeout",
            "10m",
            "--request-timeout",
            "10m",
        ]);
        let address = server.address;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _held = runtime.block_on(async move {
            let mut client = super::raw_connection(address).await;
            let call = stall_call(
                &mut client,
                address,
                "/cpt.v1.QualityMeasures/ImportEncounters",
            )
            .await;
            (client, call)
        });
        server.signal(signal);
        server.wait_for_log(|line| line.contains("shutting down"));

        // Act
        server.signal(signal);
        let status = server.wait();

        // Assert
        assert!(
            status.success(),
            "SIG{signal} twice ends with exit 0, got {status}"
        );
        server.wait_for_log(|line| line.contains("drain cut short"));
        server.wait_for_log(|line| line.contains("\"stopped\""));
    }
}
