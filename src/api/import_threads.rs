//! The threads imports are prepared on: parsing, judging, hashing and
//! serialising thousands of encounters a second, below the priority of the
//! calls people wait on, so that where the kernel preempts on wake-up a
//! look-up that arrives during an import gets a core first.

use tokio::sync::oneshot;

/// How much lower than the calls' threads (nice 0) the import threads run.
pub const IMPORT_NICE: i32 = 10;

/// A rayon pool of low-priority threads named `cptd-import-N`.
pub fn pool() -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|number| format!("cptd-import-{number}"))
        .start_handler(|_| lower_this_threads_priority())
        .panic_handler(|_| tracing::error!("an import's preparation panicked"))
        .build()
}

/// Runs `work` on `pool` and answers its result; `None` if it panicked.
pub async fn run<T: Send + 'static>(
    pool: &rayon::ThreadPool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    pool.spawn(move || {
        let _ = reply.send(work());
    });
    answer.await.ok()
}

/// Lowers the calling thread's scheduling priority to [`IMPORT_NICE`]. On
/// Linux a nice value is a thread's own, so only this thread moves.
fn lower_this_threads_priority() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: setpriority reads no memory of ours; 0 names this thread.
        let lowered = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, IMPORT_NICE) };
        if lowered != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lower an import thread's priority; imports run at the calls' priority"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the calling thread, from `/proc`.
    #[cfg(target_os = "linux")]
    fn this_threads_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = stat.rsplit_once(") ").unwrap().1;
        // Field 19 of stat, counted from the state (field 3).
        after_name
            .split_whitespace()
            .nth(16)
            .unwrap()
            .parse()
            .unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn import_work_runs_below_the_callers_priority_and_answers() {
        let pool = pool().unwrap();
        let caller = this_threads_nice();
        let (nice, name) = run(&pool, || {
            (
                this_threads_nice(),
                std::thread::current().name().map(str::to_string),
            )
        })
        .await
        .unwrap();
        assert_eq!(nice, caller.max(i64::from(IMPORT_NICE)));
        assert!(name.unwrap().starts_with("cptd-import-"));
        assert_eq!(this_threads_nice(), caller, "the caller keeps its own");
    }

    #[tokio::test]
    async fn a_panic_answers_none_and_the_pool_goes_on() {
        let pool = pool().unwrap();
        assert_eq!(run(&pool, || -> u8 { panic!("bad work") }).await, None);
        assert_eq!(run(&pool, || 7).await, Some(7));
    }
}
