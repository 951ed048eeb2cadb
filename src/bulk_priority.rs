//! The priority of bulk work: the threads that prepare imports and the
//! store's writer run below the calls people wait on, so that where the
//! kernel preempts on wake-up a look-up that arrives during an import gets a
//! core first. An import then takes what the look-ups leave.

/// How much lower than the calls' threads (nice 0) bulk work runs.
pub const BULK_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`BULK_NICE`]. On Linux
/// a nice value is a thread's own, so only this thread moves.
pub fn lower_this_thread(role: &str) {
    // No process id: the calling thread, which is what Linux moves.
    if let Err(error) = rustix::process::setpriority_process(None, BULK_NICE) {
        tracing::warn!(
            %error,
            role,
            "cannot lower a bulk thread's priority; it runs at the calls' priority"
        );
    }
}

/// The nice value of a thread, from its `stat` file in `/proc`; `None` if
/// the thread has ended.
#[cfg(all(test, target_os = "linux"))]
pub fn nice_in(stat_file: &std::path::Path) -> Option<i64> {
    let stat = std::fs::read_to_string(stat_file).ok()?;
    let after_name = stat.rsplit_once(") ")?.1;
    // Field 19 of stat, counted from the state (field 3).
    after_name.split_whitespace().nth(16)?.parse().ok()
}
