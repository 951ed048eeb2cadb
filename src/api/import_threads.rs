//! The threads imports are prepared on: parsing, judging, hashing and
//! serialising thousands of encounters a second, at the priority of bulk work
//! ([`crate::bulk_priority`]).

use tokio::sync::oneshot;

use crate::bulk_priority;

/// A rayon pool of low-priority threads named `cptd-import-N`.
pub fn pool() -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|number| format!("cptd-import-{number}"))
        .start_handler(|_| bulk_priority::lower_this_thread("import"))
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

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use crate::bulk_priority::{BULK_NICE, nice_in};

    #[cfg(target_os = "linux")]
    fn this_threads_nice() -> i64 {
        nice_in("/proc/thread-self/stat".as_ref()).unwrap()
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
        assert_eq!(nice, caller.max(i64::from(BULK_NICE)));
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
