//! A tracker used across fork(): children (as R's mclapply or Python's fork start
//! method make them) get their own writer and connection, and nothing the parent had
//! pending is written twice. One test in its own binary: forking a process with other
//! test threads running is asking for trouble.

use tasker::{Config, RunOptions, SubtaskOptions, Tracker};

#[test]
fn forked_children_increment_exactly_and_never_replay_the_parents_pending_progress() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tracker::open(Config::sqlite(dir.path().join("t.db"))).unwrap();
    let run = t
        .task_start("fork", "mclapply", RunOptions::default())
        .unwrap();
    let n = run
        .subtask_start("items", SubtaskOptions::default())
        .unwrap();
    // Pending in the parent at fork time: must be written once, by the parent.
    run.subtask_increment(n, 7).unwrap();

    let mut children = Vec::new();
    for _ in 0..8 {
        // SAFETY: the child only uses the tracker (which is fork-aware) and then leaves
        // with _exit, without running the parent's destructors or atexit handlers.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for _ in 0..100_000 {
                    run.subtask_increment(n, 1).unwrap();
                }
                t.flush().unwrap();
            }))
            .map_or(1, |()| 0);
            // SAFETY: ends the child at once, as mclapply's workers do.
            unsafe { libc::_exit(code) };
        }
        children.push(pid);
    }
    for pid in children {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child failed"
        );
    }
    run.subtask_increment(n, 1).unwrap();
    assert_eq!(
        t.subtasks(run.run_id()).unwrap()[0].items_complete,
        800_000 + 7 + 1
    );
    run.complete(None).unwrap();
}
