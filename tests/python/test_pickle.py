"""Handles and trackers survive pickling: they carry the run id, the subtask number
and the database location."""
import pickle

from tasker import Status


def test_round_trips_in_one_process(tracker):
    run = tracker.task("s", "pickle")
    st = run.subtask("n", items_total=5)
    t2 = pickle.loads(pickle.dumps(tracker))
    assert t2 is tracker  # same database in the same process: the same tracker
    run2 = pickle.loads(pickle.dumps(run))
    assert run2.run_id == run.run_id and (run2.stage, run2.task) == ("s", "pickle")
    st2 = pickle.loads(pickle.dumps(st))
    assert (st2.run_id, st2.number) == (run.run_id, st.number)
    assert st2.uid == st.uid and len(st.uid) == 36
    st2.increment(2)
    st.increment(3)
    st2.complete()
    assert tracker.subtasks(run.run_id)[0].items_complete == 5
    run2.complete()
    assert run.status() == Status.COMPLETED


def test_unpickling_in_a_fresh_interpreter(tracker, db_url):
    import subprocess
    import sys

    run = tracker.task("s", "fresh")
    st = run.subtask("n")
    blob = pickle.dumps(st)
    code = (
        "import pickle, sys\n"
        "st = pickle.loads(sys.stdin.buffer.read())\n"
        "for _ in range(1000): st.increment()\n"
        "print(st.run.tracker.location)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().strip() == tracker.location
    assert tracker.subtasks(run.run_id)[0].items_complete == 1000


def test_a_pickled_subtask_reaches_its_subtask_by_identity(tracker):
    # A subtask started during an outage may be stored under another number than
    # the one its process gave out; a worker's copy carries its identity, so its
    # progress reaches it whatever number the worker was handed.
    from tasker._core import _subtask_from_state

    run = tracker.task("s", "identity")
    other = run.subtask("other")
    st = run.subtask("mine")
    worker = _subtask_from_state(tracker._native.state(), run.run_id, 42, st.uid)
    worker.increment(4)
    stored = {r.subtask_name: r.items_complete for r in tracker.subtasks(run.run_id)}
    assert stored == {"other": 0, "mine": 4}
    assert run.subtask_number(st.number) == st.number == 2
    other.complete()
    st.complete()
    run.complete()


def test_records_and_statuses_pickle(tracker):
    with tracker.task("s", "records") as run:
        pass
    rec = tracker.run(run.run_id)
    assert pickle.loads(pickle.dumps(rec)) == rec
    assert pickle.loads(pickle.dumps(Status.FAILED)) is Status.FAILED
