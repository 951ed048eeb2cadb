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
//!
//! Yields cannot reach into a system call or a long SQLite step, though, and
//! on that kernel look-ups still waited. Where the operator permits it
//! (`--call-scheduling realtime`), the runtime's workers run under the
//! real-time policy ([`run_this_thread_in_realtime`]) while look-ups arrive
//! during bulk work ([`follow_interactive_calls`]): a waking real-time thread
//! takes a core from a normal one as soon as that thread is out of the
//! kernel, without waiting for its tick.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

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
/// system call a slice, and the caches the next thread to run leaves behind.
/// Where call threads may run in real time they take the core themselves,
/// and bulk work does not yield at all ([`let_calls_preempt_bulk_work`]).
#[derive(Debug)]
pub struct CooperativeYield {
    since: Instant,
    yields: bool,
}

/// Whether bulk work yields its core every slice; see [`CooperativeYield`].
static BULK_WORK_YIELDS: AtomicBool = AtomicBool::new(true);

/// Stops bulk work started from now on from yielding its core every slice:
/// for a process whose call threads may run in real time, and so preempt it
/// when a call arrives. Yielding cost an import about 0.6 µs of CPU a row,
/// a twelfth of all it takes (BENCHMARKS.md, "Session 13"). For the life of
/// the process: its call threads keep the permission.
pub fn let_calls_preempt_bulk_work() {
    BULK_WORK_YIELDS.store(false, Ordering::Relaxed);
}

/// Whether bulk work started now yields its core every slice.
pub fn bulk_work_yields() -> bool {
    BULK_WORK_YIELDS.load(Ordering::Relaxed)
}

impl CooperativeYield {
    /// Starts counting the calling thread's work from now; yields unless
    /// calls may preempt bulk work.
    pub fn new() -> CooperativeYield {
        CooperativeYield::yielding(bulk_work_yields())
    }

    fn yielding(yields: bool) -> CooperativeYield {
        CooperativeYield {
            since: Instant::now(),
            yields,
        }
    }

    /// Call between items of bulk work; yields once a slice has passed.
    pub fn between_items(&mut self) {
        if self.yields && self.since.elapsed() >= CALL_SLICE {
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
                std::io::Error::last_os_error(),
                "cannot lower a background thread's priority; imports will compete with look-ups",
            );
        }
    }
}

/// Asks for [`CALL_SLICE`] as the calling thread's time slice, keeping its
/// nice value. Linux only; a kernel that does not know custom slices (before
/// 6.12) accepts the request and ignores it.
pub fn shorten_this_threads_slice() {
    if let Err(error) = run_this_thread_fair_with_a_short_slice() {
        static REFUSED: std::sync::Once = std::sync::Once::new();
        warn_once(
            &REFUSED,
            error,
            "cannot ask for a short time slice; calls may wait behind bulk work",
        );
    }
}

/// Puts the calling thread under the normal policy, from whichever it was
/// under, with [`CALL_SLICE`] as its time slice and its own nice value. Going
/// back to the normal policy needs no permission. Does nothing off Linux.
fn run_this_thread_fair_with_a_short_slice() -> std::io::Result<()> {
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
        if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const attributes, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The real-time priority of threads that answer calls under
/// [`crate::config::CallScheduling::Realtime`]: the lowest there is. It
/// already puts them ahead of every normal thread, and below any real-time
/// thread an operator has set up on purpose.
pub const CALL_REALTIME_PRIORITY: i32 = 1;

/// Puts the calling thread under the kernel's first-in-first-out real-time
/// policy at [`CALL_REALTIME_PRIORITY`]. Threads it starts afterwards begin
/// under the normal policy (`SCHED_RESET_ON_FORK`): the store's and the
/// import's threads are started from call threads, and bulk work must never
/// inherit a call's priority. Fails without `CAP_SYS_NICE` or an
/// `RLIMIT_RTPRIO` of at least [`CALL_REALTIME_PRIORITY`], and off Linux.
pub fn run_this_thread_in_realtime() -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let priority = libc::sched_param {
            sched_priority: CALL_REALTIME_PRIORITY,
        };
        let policy = libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK;
        // SAFETY: the kernel reads one plain-integer struct that lives until
        // the call returns; pid 0 names the calling thread.
        if unsafe { libc::sched_setscheduler(0, policy, &raw const priority) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Whether this process may run threads in real time, tried on a thread of
/// its own so that the caller's policy stays as it is.
pub fn realtime_is_permitted() -> std::io::Result<()> {
    std::thread::scope(|scope| {
        scope
            .spawn(run_this_thread_in_realtime)
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the trial thread panicked")))
    })
}

/// For a runtime's park hook, which only its worker threads call: keeps the
/// calling worker in real time, moving it there at its first park. The hook
/// is the one place that tells workers from the blocking pool's threads,
/// which run large searches and start-up work and must stay normal. For a
/// client runtime standing for callers on cores of their own (the
/// benchmarks'); the server's workers follow the load instead
/// ([`follow_interactive_calls`]).
pub fn keep_this_worker_in_realtime() {
    keep_this_worker(true);
}

/// How long call threads stay in real time after the last interactive call
/// (see [`note_interactive_call`]) while bulk work runs (see [`BulkWork`]).
/// Real time costs an import about a tenth of its throughput on two cores
/// (its workers took about 0.85 µs more CPU an imported row; BENCHMARKS.md,
/// "Session 12"). That price buys nothing while no one waits on a look-up,
/// so the workers are fair again a second after the last one. A caller that
/// calls more often than this keeps them in real time; one that calls less
/// often waits, at its first call, as under the fair policy.
pub const REALTIME_AFTER_A_CALL: Duration = Duration::from_secs(1);

/// When the last interactive call arrived, in milliseconds on [`call_clock`];
/// zero for never.
static LAST_INTERACTIVE_CALL: AtomicU64 = AtomicU64::new(0);

/// Bulk work running now: each [`BulkWork`] alive.
static BULK_WORK_RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Bulk work (an import, a checkpoint) in progress, from its creation until
/// it is dropped.
///
/// Call threads need real time only while something competes with them for
/// the cores. With no bulk work there is nothing for it to win, and it
/// changes how the kernel places a waking thread, so it is not kept on.
#[derive(Debug)]
pub struct BulkWork(());

impl BulkWork {
    /// Counts bulk work as running until the value is dropped.
    pub fn start() -> BulkWork {
        BULK_WORK_RUNNING.fetch_add(1, Ordering::Relaxed);
        BulkWork(())
    }
}

impl Drop for BulkWork {
    fn drop(&mut self) {
        BULK_WORK_RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Milliseconds since the process first asked, plus one, so that no reading
/// is zero.
fn call_clock() -> u64 {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    let elapsed = STARTED.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(elapsed).unwrap_or(u64::MAX - 1) + 1
}

/// Says that a caller waits on an answer now: a call other than a bulk
/// import. One clock reading and one relaxed store, so every call can afford
/// it.
pub fn note_interactive_call() {
    LAST_INTERACTIVE_CALL.store(call_clock(), Ordering::Relaxed);
}

/// Whether call threads should be in real time when the clock reads `now`,
/// the last interactive call having arrived at `last` (zero for never), with
/// bulk work running or not.
fn realtime_wanted(last: u64, now: u64, bulk_running: bool) -> bool {
    let hold = u64::try_from(REALTIME_AFTER_A_CALL.as_millis()).unwrap_or(u64::MAX);
    bulk_running && last != 0 && now.saturating_sub(last) < hold
}

/// For a runtime's park hook, which only its worker threads call: puts the
/// calling worker in real time while interactive calls arrive during bulk
/// work, and back under the normal policy, with its short slice, once none
/// has for [`REALTIME_AFTER_A_CALL`] or the bulk work has ended. A worker
/// changes only when it parks, which a busy worker does thousands of times a
/// second; the cost of a park that changes nothing is one clock reading. A
/// worker parked in a quiet spell keeps its last policy until it next wakes,
/// which is harmless: an idle thread competes with no one. A refusal (the
/// permission was checked at start-up, so only a change of limits since can
/// cause one) is logged once per process and leaves the worker fair.
pub fn follow_interactive_calls() {
    let wanted = realtime_wanted(
        LAST_INTERACTIVE_CALL.load(Ordering::Relaxed),
        call_clock(),
        BULK_WORK_RUNNING.load(Ordering::Relaxed) > 0,
    );
    keep_this_worker(wanted);
}

/// Moves the calling worker into real time or out of it, unless the last
/// request already did.
fn keep_this_worker(in_realtime: bool) {
    thread_local! {
        static IN_REALTIME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if IN_REALTIME.replace(in_realtime) == in_realtime {
        return;
    }
    let moved = if in_realtime {
        run_this_thread_in_realtime()
    } else {
        run_this_thread_fair_with_a_short_slice()
    };
    if let Err(error) = moved {
        static REFUSED: std::sync::Once = std::sync::Once::new();
        warn_once(
            &REFUSED,
            error,
            "a call thread could not change its real-time policy",
        );
    }
}

/// The calling thread's scheduling policy, without `SCHED_RESET_ON_FORK`.
#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
pub(crate) fn this_threads_policy() -> i32 {
    // SAFETY: reads a plain integer argument only; pid 0 names the calling thread.
    unsafe { libc::sched_getscheduler(0) & !libc::SCHED_RESET_ON_FORK }
}

/// Logs a refused request with the OS's reason, the first time `refused`
/// sees one: every runtime and background thread asks alike.
fn warn_once(refused: &'static std::sync::Once, error: std::io::Error, consequence: &'static str) {
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
    fn a_real_time_thread_starts_normal_threads_and_the_trial_changes_nothing() {
        let trial = realtime_is_permitted();
        assert_eq!(this_threads_policy(), libc::SCHED_OTHER);
        if let Err(refused) = trial {
            // An unprivileged machine: the refusal must say why.
            assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
            return;
        }
        std::thread::spawn(|| {
            run_this_thread_in_realtime().expect("permitted");
            assert_eq!(this_threads_policy(), libc::SCHED_FIFO);
            let started_here = std::thread::spawn(this_threads_policy).join().unwrap();
            assert_eq!(
                started_here,
                libc::SCHED_OTHER,
                "bulk threads inherit no priority"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn call_threads_want_real_time_during_bulk_work_for_a_second_after_an_interactive_call() {
        let hold = u64::try_from(REALTIME_AFTER_A_CALL.as_millis()).unwrap();
        let cases = [
            (0, 1, false, "no call yet"),
            (0, hold * 5, false, "no call yet, much later"),
            (40, 40, true, "a call just now"),
            (40, 40 + hold - 1, true, "the last moment of the hold"),
            (40, 40 + hold, false, "the hold has passed"),
            // Another thread's clock reading may land just after this one's.
            (41, 40, true, "a call noted after this reading"),
        ];
        for (last, now, wanted, case) in cases {
            assert_eq!(realtime_wanted(last, now, true), wanted, "{case}");
            assert!(
                !realtime_wanted(last, now, false),
                "{case}, with no bulk work"
            );
        }
    }

    #[test]
    fn a_worker_moves_into_real_time_and_back_with_its_short_slice() {
        if realtime_is_permitted().is_err() {
            return;
        }
        std::thread::spawn(|| {
            shorten_this_threads_slice();
            let nice = this_threads_nice();
            keep_this_worker(true);
            assert_eq!(this_threads_policy(), libc::SCHED_FIFO);
            keep_this_worker(true);
            assert_eq!(this_threads_policy(), libc::SCHED_FIFO);
            keep_this_worker(false);
            assert_eq!(this_threads_policy(), libc::SCHED_OTHER);
            assert_eq!(this_threads_nice(), nice);
            let slice = this_threads_slice();
            assert!(slice == Duration::ZERO || slice == CALL_SLICE, "{slice:?}");
            keep_this_worker(true);
            assert_eq!(this_threads_policy(), libc::SCHED_FIFO, "and in again");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_yield_is_taken_once_a_slice_has_passed_and_starts_a_new_one() {
        let mut turns = CooperativeYield::yielding(true);
        let long_ago = Instant::now() - 2 * CALL_SLICE;
        turns.since = long_ago;
        let before = Instant::now();
        turns.between_items();
        assert!(turns.since >= before, "the slice was not restarted");
    }

    #[test]
    fn where_calls_preempt_bulk_work_no_yield_is_taken() {
        let mut turns = CooperativeYield::yielding(false);
        let long_ago = Instant::now() - 2 * CALL_SLICE;
        turns.since = long_ago;
        turns.between_items();
        assert_eq!(turns.since, long_ago, "no slice is counted");
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
            let mut turns = CooperativeYield::yielding(true);
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
