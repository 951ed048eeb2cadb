//! Threads for bulk work that must not slow down the calls people wait on.
//!
//! An import keeps the CPU busy for seconds: reading, parsing, judging, hashing
//! and serialising a hundred thousand encounters. On a machine with few cores
//! that work, run at the same priority as the look-ups, takes whole time slices
//! from them: a `GetCode` answered in 0.3 ms alone waited 2 to 5 ms during an
//! import (BENCHMARKS.md). [`BackgroundPool`] runs such work on threads of its
//! own at a lower scheduling priority ([`BACKGROUND_NICE`]; see
//! [`crate::scheduling`]), so that where the kernel preempts on wake-up a
//! look-up is given a core first, and the import takes whatever the look-ups
//! leave. Where it does not, the work's own loops yield
//! ([`crate::scheduling::CooperativeYield`]). The writer thread is not one of
//! these: every caller's commit waits on it.
//!
//! [`BACKGROUND_NICE`]: crate::scheduling::BACKGROUND_NICE

use std::{
    pin::Pin,
    sync::{Arc, Mutex, mpsc},
    task::{Context, Poll},
};

use tokio::sync::oneshot;

use crate::scheduling::lower_this_threads_priority;

type Work = Box<dyn FnOnce() + Send>;

/// A fixed set of low-priority threads taking work in the order it was given.
/// Dropping the pool lets each thread finish the work it holds, then end.
#[derive(Debug)]
pub struct BackgroundPool {
    work: mpsc::Sender<Work>,
    threads: usize,
}

/// The work was dropped unfinished: it panicked, or the pool is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("background work did not finish")]
pub struct Unfinished;

impl BackgroundPool {
    /// Starts `threads` threads (at least one) named `name-N`.
    pub fn new(threads: usize, name: &str) -> std::io::Result<BackgroundPool> {
        let (sender, receiver) = mpsc::channel::<Work>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = threads.max(1);
        for number in 0..threads {
            let receiver = receiver.clone();
            // Detached: a thread ends once the pool is dropped and its queue is
            // empty, and nobody waits for it.
            std::thread::Builder::new()
                .name(format!("{name}-{number}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    loop {
                        // The lock is held only while waiting, never while working.
                        let next = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(work) = next else { return };
                        work();
                    }
                })?;
        }
        Ok(BackgroundPool {
            work: sender,
            threads,
        })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `work`; the answer resolves to its result. A panic in `work`
    /// ends that work alone, as [`Unfinished`]; the thread goes on with the next.
    pub fn run<T, F>(&self, work: F) -> Answer<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Work = Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            if let Ok(value) = result {
                let _ = reply.send(value);
            }
        });
        // A send fails only once every thread has ended, which only dropping
        // the pool does; the answer then reports the work unfinished.
        let _ = self.work.send(job);
        Answer(answer)
    }
}

/// The result of work given to a [`BackgroundPool`], as a future.
#[derive(Debug)]
pub struct Answer<T>(oneshot::Receiver<T>);

impl<T> Future for Answer<T> {
    type Output = Result<T, Unfinished>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(context)
            .map(|answer| answer.map_err(|_| Unfinished))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_piece_of_work_answers_with_its_own_result() {
        let pool = BackgroundPool::new(2, "test-bg").unwrap();
        assert_eq!(pool.threads(), 2);
        let answers: Vec<_> = (0..50).map(|n| pool.run(move || n * 2)).collect();
        for (n, answer) in answers.into_iter().enumerate() {
            assert_eq!(answer.await, Ok(n * 2));
        }
    }

    #[tokio::test]
    async fn a_panic_ends_that_work_alone() {
        let pool = BackgroundPool::new(1, "test-bg").unwrap();
        let panicked = pool.run(|| -> u8 { panic!("bad work") });
        assert_eq!(panicked.await, Err(Unfinished));
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn work_runs_off_the_runtime_on_a_named_thread() {
        let pool = BackgroundPool::new(1, "test-bg").unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("test-bg-0"));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[tokio::test]
    async fn background_threads_run_below_the_callers_priority() {
        use crate::scheduling::{BACKGROUND_NICE, this_threads_nice};

        let caller = this_threads_nice();
        let pool = BackgroundPool::new(1, "test-bg").unwrap();
        let background = pool.run(this_threads_nice).await.unwrap();
        assert_eq!(background, caller.max(BACKGROUND_NICE));
        assert_eq!(
            this_threads_nice(),
            caller,
            "the caller's own priority is kept"
        );
    }
}
