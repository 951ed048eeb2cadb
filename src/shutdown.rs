//! The signals the process answers: SIGINT or SIGTERM shut it down (a second
//! one cuts the drain short), and SIGXFSZ is ignored.

use std::future::Future;

/// Listens for SIGINT and SIGTERM from the moment it is called. The first
/// future completes at the first signal, which starts the drain; the second
/// at the next one, by which an operator who will not wait says to end the
/// drain at once. Call it inside the runtime.
///
/// The handlers are installed here rather than on the first poll: a signal that
/// came between start-up and the first poll would otherwise meet the default
/// action and kill the process without draining.
pub fn signals() -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = ()> + Send + 'static,
) {
    let (received_sender, received) = tokio::sync::watch::channel(0u32);
    count_signals(received_sender);
    let first = at_least(received.clone(), 1);
    let second = at_least(received, 2);
    (first, second)
}

/// Completes once `count` signals have arrived; never, should the listener
/// be gone without them.
async fn at_least(mut received: tokio::sync::watch::Receiver<u32>, count: u32) {
    if received
        .wait_for(|received| *received >= count)
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
}

/// Counts SIGINT and SIGTERM (ctrl-c elsewhere) into `received`, logging each.
fn count_signals(received: tokio::sync::watch::Sender<u32>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (interrupt, terminate) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for SIGINT or SIGTERM");
                return;
            }
        };
        let (mut interrupt, mut terminate) = (interrupt, terminate);
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                };
                announce(&received, name);
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        loop {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for ctrl-c");
                return;
            }
            announce(&received, "ctrl-c");
        }
    });
}

fn announce(received: &tokio::sync::watch::Sender<u32>, signal: &'static str) {
    received.send_modify(|received| *received = received.saturating_add(1));
    if *received.borrow() == 1 {
        tracing::info!(signal, "shutting down");
    } else {
        tracing::warn!(signal, "second signal; ending the drain now");
    }
}

/// Makes a write past the file-size limit (`ulimit -f`) fail with `EFBIG`
/// instead of killing the process, which is SIGXFSZ's default. The store then
/// refuses the commit whole like any failed write, the server goes on
/// answering look-ups and reports, and it records again once the limit is
/// raised. Call before any thread starts.
pub fn ignore_file_size_limit_signal() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: ignoring a signal installs no handler; nothing runs on delivery.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
