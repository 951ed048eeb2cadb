//! `--call-scheduling realtime` on the real binary: the threads that answer
//! calls run in real time while look-ups arrive during an import, and are
//! normal with look-ups alone or an import alone; every other thread stays
//! normal throughout; a process without the permission refuses to start and
//! says what it lacks.

use std::{
    os::unix::process::CommandExt,
    process::Command,
    time::{Duration, Instant},
};

use cptd::{
    pb::{
        GetCodeRequest, code_lookup_client::CodeLookupClient,
        quality_measures_client::QualityMeasuresClient,
    },
    scheduling::REALTIME_AFTER_A_CALL,
};

use tonic::transport::Channel;

use crate::{
    binary::{CPTD, ServerProcess},
    helpers::{HANG_GUARD, connect},
    quality_fixtures::{cancer_visit, import, open_import},
};

/// The kernel's numbers for the two policies, as `/proc` shows them.
const NORMAL: i32 = libc::SCHED_OTHER;
const FIRST_IN_FIRST_OUT: i32 = libc::SCHED_FIFO;

/// What the server says when it may not run threads in real time.
const REFUSAL: &str = "--call-scheduling realtime needs CAP_SYS_NICE";

/// Each thread of process `pid`: its name and scheduling policy, from `/proc`.
fn thread_policies(pid: u32) -> Vec<(String, i32)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("stat")).ok())
        .map(|stat| {
            // "tid (name) state ...": the name may hold spaces and parentheses,
            // so it ends at the last ')'. The policy is field 41, the 39th
            // after the name.
            let name_start = stat.find('(').expect("a name") + 1;
            let name_end = stat.rfind(')').expect("a name");
            let policy = stat[name_end + 1..]
                .split_whitespace()
                .nth(38)
                .and_then(|field| field.parse().ok())
                .expect("a policy field");
            (stat[name_start..name_end].to_string(), policy)
        })
        .collect()
}

/// `CAP_SYS_NICE`, as `linux/capability.h` numbers it (libc does not).
const CAP_SYS_NICE: libc::c_ulong = 23;

/// Makes the process about to be executed unable to use real time: no
/// real-time priority limit and, for root, whose `CAP_SYS_NICE` overrides the
/// limit, that capability out of its bounding set, so that exec does not
/// grant it again. The user stays the same, so the binary is found wherever
/// the build put it. Runs between fork and exec, so it makes plain system
/// calls only.
fn give_up_real_time() -> std::io::Result<()> {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: each call reads plain integers or a struct that lives until it
    // returns, and all are async-signal-safe.
    let failed = unsafe {
        libc::setrlimit(libc::RLIMIT_RTPRIO, &none) != 0
            || (libc::geteuid() == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0) != 0)
    };
    if failed {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[tokio::test]
async fn real_time_call_scheduling_serves_look_ups_during_an_import_and_moves_no_other_thread() {
    if cptd::scheduling::realtime_is_permitted().is_err() {
        // This machine cannot show it; the refusal is what it can show.
        assert_refused(realtime_server());
        return;
    }
    let mut server = ServerProcess::start(&["--call-scheduling", "realtime"]);
    server
        .wait_for_log(|line| line.contains("call threads scheduled") && line.contains("Realtime"));
    let channel = connect(server.address).await;
    let mut lookup = CodeLookupClient::new(channel.clone());
    for _ in 0..20 {
        look_up(&mut lookup).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        threads_in_real_time(server.id()),
        0,
        "look-ups alone compete with no bulk work, so they need no real time"
    );

    // Look-ups during an import move the workers, one a core as tokio counts
    // them, each when it next idles.
    let quality = QualityMeasuresClient::new(channel);
    let (sender, import_call) = open_import(&quality);
    let feeding = tokio::spawn(async move {
        for index in 0.. {
            let encounter = import(cancer_visit(&format!("bulk-{index}"), "99213"));
            if sender.send(encounter).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let workers = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        look_up(&mut lookup).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let moved = threads_in_real_time(server.id());
        if moved == workers {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{moved} of {workers} workers in real time"
        );
    }

    // The import alone, once the look-ups have stopped for longer than real
    // time is held, moves them back: real time would only slow it down.
    tokio::time::sleep(REALTIME_AFTER_A_CALL).await;
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let left = threads_in_real_time(server.id());
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{left} workers still in real time, with no look-up for {REALTIME_AFTER_A_CALL:?}"
        );
    }
    feeding.abort();
    let summary = import_call
        .await
        .expect("joined")
        .expect("the import is answered")
        .into_inner();
    assert!(summary.accepted > 0, "{summary:?}");
    assert_eq!(summary.rejected, 0, "{summary:?}");
}

async fn look_up(lookup: &mut CodeLookupClient<Channel>) {
    let request = GetCodeRequest {
        code: "64483".into(),
        as_of: String::new(),
    };
    lookup.get_code(request).await.expect("answers");
}

/// How many threads of process `pid` run in real time, after checking that
/// every one that does is a call thread and every other is normal, the
/// store's among them.
fn threads_in_real_time(pid: u32) -> usize {
    let threads = thread_policies(pid);
    let (realtime, normal): (Vec<_>, Vec<_>) = threads
        .iter()
        .partition(|(_, policy)| *policy == FIRST_IN_FIRST_OUT);
    assert!(
        realtime.iter().all(|(name, _)| name == "cptd-runtime"),
        "only call threads may run in real time: {threads:?}"
    );
    assert!(
        normal.iter().all(|(_, policy)| *policy == NORMAL),
        "{threads:?}"
    );
    assert!(
        normal
            .iter()
            .any(|(name, _)| name.starts_with("cptd-store")),
        "the store's threads stay normal: {threads:?}"
    );
    realtime.len()
}

#[test]
fn without_the_permission_real_time_call_scheduling_refuses_to_start() {
    let mut command = realtime_server();
    // SAFETY: `give_up_real_time` makes async-signal-safe system calls only.
    unsafe { command.pre_exec(give_up_real_time) };
    assert_refused(command);
}

/// `cptd` asked to serve with real-time call threads.
fn realtime_server() -> Command {
    let mut command = Command::new(CPTD);
    command
        .args(["--listen", "127.0.0.1:0", "--in-memory"])
        .args(["--call-scheduling", "realtime"]);
    command
}

/// Runs `command` and checks that it refused to start, naming the fix.
fn assert_refused(mut command: Command) {
    let output = command.output().expect("run cptd");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(REFUSAL), "{stderr}");
    assert!(stderr.contains("LimitRTPRIO"), "the fix is named: {stderr}");
}
