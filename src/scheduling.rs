//! What the kernel is told about this process's threads, so that calls people
//! wait on get a core before bulk work does.
//!
//! Two requests, both per thread and both allowed without privileges:
//!
//! - Threads that answer calls (the runtime's) ask for a short time slice
//!   ([`CALL_SLICE`]). Linux's scheduler (EEVDF, 6.6 and later) gives a task
//!   that wakes with a shorter slice an earlier deadline, so since 6.12 it
//!   preempts a busy thread at once instead of waiting for that thread's slice
//!   (a few milliseconds) to end. A look-up wakes, runs for tens of
//!   microseconds, and sleeps again; it is exactly the task short slices are
//!   for.
//! - Threads that do bulk work (imports, see [`crate::background`]) run at a
//!   lower priority ([`BACKGROUND_NICE`]), so their share of a contended core
//!   is small.
//!
//! Both are hints: on kernels or systems without them nothing changes but the
//! latency of calls during bulk work. A refusal is logged once per process.
//!
//! Hints only work where the kernel preempts a busy thread when a call wakes.
//! Some do not: on a 6.18 guest kernel run with `preempt=none`, `perf sched
//! timehist` showed look-up threads waiting 1 to 4 ms behind import threads at
//! nice 10 and even at `SCHED_IDLE`, until the busy thread's next tick. So bulk
//! loops also yield the core themselves ([`CooperativeYield`]), which needs no
//! kernel feature at all.

use std::time::{Duration, Instant};

/// The nice value of background threads. Ten gives a busy background thread
/// about a tenth of the weight of a normal one when they compete for a core,
/// enough that an import still moves while look-ups saturate the machine, unlike
/// the idle policy, which could starve it.
pub const BACKGROUND_NICE: i32 = 10;

/// The time slice asked for by threads that answer calls: the shortest the
/// kernel grants. A look-up takes well under it, so it is never cut short.
pub const CALL_SLICE: Duration = Duration::from_micros(100);

/// Yields the calling thread's core every [`CALL_SLICE`] of bulk work, so
/// that a call that woke meanwhile runs next instead of at the busy thread's
/// next tick (4 ms apart at 250 Hz). A call then waits at most one slice and
/// one item. When nothing waits, yielding returns at once: the cost is one
/// system call a slice.
#[derive(Debug)]
pub struct CooperativeYield {
    since: Instant,
}

impl CooperativeYield {
    /// Starts counting the calling thread's work from now.
    pub fn new() -> CooperativeYield {
        CooperativeYield {
            since: Instant::now(),
        }
    }

    /// Call between items of bulk work; yields once a slice has passed.
    pub fn between_items(&mut self) {
        if self.since.elapsed() >= CALL_SLICE {
            std::thread::yield_now();
            self.since = Instant::now();
        }
    }
}

impl Default for CooperativeYield {
    fn default() -> CooperativeYield {
        CooperativeYield::new()
    }
}

/// Lowers the calling thread's priority to [`BACKGROUND_NICE`], unless it is
/// lower already (raising it back is not allowed). On Linux a nice value
/// belongs to one thread, so the rest of the process keeps its own. Elsewhere
/// this does nothing.
pub fn lower_this_threads_priority() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if this_threads_nice() >= BACKGROUND_NICE {
            return;
        }
        // SAFETY: `setpriority` reads its plain integer arguments only; `who`
        // 0 names the calling thread.
        let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE) } != 0;
        if failed {
            static REFUSED: std::sync::Once = std::sync::Once::new();
            warn_once(
                &REFUSED,
                "cannot lower a background thread's priority; imports will compete with look-ups",
            );
        }
    }
}

/// Asks for [`CALL_SLICE`] as the calling thread's time slice, keeping its
/// policy and nice value. Linux only; a kernel that does not know custom slices
/// (before 6.12) accepts the request and ignores it.
pub fn shorten_this_threads_slice() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `sched_attr` is plain integers; all-zero is a valid value.
        let mut attributes: libc::sched_attr = unsafe { std::mem::zeroed() };
        attributes.size = std::mem::size_of::<libc::sched_attr>() as u32;
        attributes.sched_policy = libc::SCHED_OTHER as u32;
        // The call sets the nice value too: keep the thread's own, since
        // raising it back is not allowed.
        attributes.sched_nice = this_threads_nice();
        attributes.sched_runtime = CALL_SLICE.as_nanos() as u64;
        // SAFETY: the kernel reads `size` bytes of `attributes`, which lives
        // until the call returns; pid 0 names the calling thread.
        let failed =
            unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attributes, 0) } != 0;
        if failed {
            static REFUSED: std::sync::Once = std::sync::Once::new();
            warn_once(
                &REFUSED,
                "cannot ask for a short time slice; calls may wait behind bulk work",
            );
        }
    }
}

/// Logs the refusal of the call just made, with the OS's reason, the first
/// time `refused` sees one: every runtime and background thread asks alike.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn warn_once(refused: &'static std::sync::Once, consequence: &'static str) {
    let error = std::io::Error::last_os_error();
    refused.call_once(|| tracing::warn!(%error, "{consequence}"));
}

/// The calling thread's nice value. `getpriority` for oneself cannot fail.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn this_threads_nice() -> i32 {
    // SAFETY: reads plain integer arguments only; `who` 0 names the calling thread.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// The calling thread's time slice as the kernel holds it; zero for the default.
#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
fn this_threads_slice() -> Duration {
    // SAFETY: as in `shorten_this_threads_slice`; the kernel writes at most
    // `size` bytes into `attributes`.
    let mut attributes: libc::sched_attr = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::sched_attr>() as u32;
    let failed =
        unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &raw mut attributes, size, 0) } != 0;
    assert!(
        !failed,
        "sched_getattr: {}",
        std::io::Error::last_os_error()
    );
    Duration::from_nanos(attributes.sched_runtime)
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn a_shortened_slice_keeps_the_threads_nice_value() {
        std::thread::spawn(|| {
            lower_this_threads_priority();
            let nice = this_threads_nice();
            shorten_this_threads_slice();
            assert_eq!(this_threads_nice(), nice);
            // Kernels before custom slices report none; from 6.12 on, ours.
            let slice = this_threads_slice();
            assert!(slice == Duration::ZERO || slice == CALL_SLICE, "{slice:?}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_yield_is_taken_once_a_slice_has_passed_and_starts_a_new_one() {
        let mut turns = CooperativeYield::new();
        let long_ago = Instant::now() - 2 * CALL_SLICE;
        turns.since = long_ago;
        let before = Instant::now();
        turns.between_items();
        assert!(turns.since >= before, "the slice was not restarted");
    }

    /// Times the calling thread was switched out while still runnable.
    fn this_threads_involuntary_switches() -> i64 {
        // SAFETY: `getrusage` writes one plain-integer struct we own.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let failed = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0;
        assert!(!failed, "getrusage: {}", std::io::Error::last_os_error());
        usage.ru_nivcsw
    }

    /// CPU time the calling thread has used.
    fn this_threads_cpu_time() -> Duration {
        // SAFETY: `clock_gettime` writes one plain-integer struct we own.
        let mut now: libc::timespec = unsafe { std::mem::zeroed() };
        let failed = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0;
        assert!(
            !failed,
            "clock_gettime: {}",
            std::io::Error::last_os_error()
        );
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    #[test]
    fn bulk_loops_sharing_one_core_hand_it_over_every_slice() {
        // Two loops pinned to the core this test runs on, each running for
        // 20 ms of its own CPU time (so the machine's other load only makes
        // them take longer). Yielding every slice, each is switched out about
        // once per slice it runs, some 200 times; left to the scheduler, once
        // per tick or base slice (1 to 4 ms), 5 to 20 times. A count, not a
        // time, is checked.
        const SPAN: Duration = Duration::from_millis(20);
        // SAFETY: reads the calling thread's CPU number; no arguments.
        let core = unsafe { libc::sched_getcpu() };
        assert!(
            core >= 0,
            "sched_getcpu: {}",
            std::io::Error::last_os_error()
        );
        let bulk_loop = move || {
            // SAFETY: `cpu_set_t` is a plain bit set; all-zero is empty; the
            // kernel reads `size_of::<cpu_set_t>()` bytes of it.
            unsafe {
                let mut cores: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(core as usize, &mut cores);
                let failed =
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &cores) != 0;
                assert!(
                    !failed,
                    "sched_setaffinity: {}",
                    std::io::Error::last_os_error()
                );
            }
            let before = this_threads_involuntary_switches();
            let started = this_threads_cpu_time();
            let mut turns = CooperativeYield::new();
            while this_threads_cpu_time() - started < SPAN {
                turns.between_items();
            }
            this_threads_involuntary_switches() - before
        };
        let loops = [std::thread::spawn(bulk_loop), std::thread::spawn(bulk_loop)];
        for switches in loops.map(|bulk| bulk.join().unwrap()) {
            assert!(
                switches >= 60,
                "switched out {switches} times in {SPAN:?} of CPU sharing a core: not yielding"
            );
        }
    }

    #[test]
    fn lowering_twice_stays_at_the_background_level() {
        std::thread::spawn(|| {
            let before = this_threads_nice();
            lower_this_threads_priority();
            lower_this_threads_priority();
            assert_eq!(this_threads_nice(), before.max(BACKGROUND_NICE));
        })
        .join()
        .unwrap();
    }
}
