//! The signals the process answers: SIGINT or SIGTERM shut it down, and
//! SIGXFSZ is ignored.

use std::future::Future;

/// Listens for SIGINT and SIGTERM from the moment it is called, and completes when
/// either arrives.
///
/// The handlers are installed here rather than on the first poll: a signal that
/// came between start-up and the first poll would otherwise meet the default
/// action and kill the process without draining.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let (mut interrupt, mut terminate) = match (interrupt, terminate) {
                (Ok(interrupt), Ok(terminate)) => (interrupt, terminate),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::error!(%error, "cannot listen for SIGINT or SIGTERM");
                    return std::future::pending().await;
                }
            };
            tokio::select! {
                _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
                _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
        tracing::info!(signal = "ctrl-c", "shutting down");
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
