"""The idiomatic API: context managers, subtasks, track(), @tracked, records."""
import io
import logging
import pickle
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

import tasker
from tasker import Status


def test_task_and_subtask_complete_on_normal_exit(tracker):
    with tracker.task("ingest", "download", total_subtasks=2, version="1.2", owner="ana") as run:
        assert tasker.current_run() is run
        with run.subtask("files", items_total=10) as st:
            for _ in range(10):
                st.increment()
        with run.subtask("parse") as st2:
            st2.update(percent=50.0, message="half")
            run.update(overall_percent=75.0, message="nearly")
    assert tasker.current_run() is None
    rec = run.record()
    assert rec.status is Status.COMPLETED and rec.status == "COMPLETED"
    assert rec.total_subtasks == 2 and rec.version == "1.2"
    assert rec.metadata == {"owner": "ana"}
    assert rec.subtasks_completed == 2
    assert rec.overall_percent_complete == 100.0
    subs = run.subtasks()
    assert [(s.subtask_number, s.subtask_name, s.status, s.items_complete) for s in subs] == [
        (1, "files", Status.COMPLETED, 10),
        (2, "parse", Status.COMPLETED, 0),
    ]
    assert subs[0].items_total == 10 and subs[0].percent_complete == 100.0
    assert subs[1].progress_message == "half"


def test_exception_fails_subtask_and_run_with_traceback(tracker):
    def explode():
        raise ValueError("bad row 42")

    with pytest.raises(ValueError, match="bad row 42"):
        with tracker.task("ingest", "parse") as run:
            with run.subtask("rows", items_total=3) as st:
                st.increment()
                explode()
    rec = run.record()
    assert rec.status == Status.FAILED
    assert rec.error_message == "ValueError: bad row 42"
    assert rec.error_detail.startswith("Traceback (most recent call last):")
    assert "in explode" in rec.error_detail and "ValueError: bad row 42" in rec.error_detail
    assert rec.end_time is not None
    (sub,) = run.subtasks()
    assert sub.status == Status.FAILED and sub.error_message == "ValueError: bad row 42"
    assert sub.error_detail == rec.error_detail
    assert sub.items_complete == 1


def test_keyboard_interrupt_cancels(tracker):
    with pytest.raises(KeyboardInterrupt):
        with tracker.task("ingest", "slow") as run:
            with run.subtask("wait"):
                raise KeyboardInterrupt
    assert run.status() == Status.CANCELLED
    assert run.subtasks()[0].status == Status.CANCELLED


def test_finishing_inside_the_block_is_kept(tracker):
    with tracker.task("ingest", "optional") as run:
        run.skip("nothing to do")
    assert run.status() == Status.SKIPPED
    with tracker.task("ingest", "paused") as run2:
        run2.pause("waiting")
        assert run2.status() == Status.PAUSED
        run2.resume()
        assert run2.status() == Status.RUNNING
    assert run2.status() == Status.COMPLETED


def test_run_without_with_and_explicit_transitions(tracker):
    run = tracker.task("s", "t")
    st = run.subtask("one", 5)
    st.increment(5)
    st.complete("done")
    st.complete()  # finishing twice is not an error, and changes nothing
    with pytest.raises(tasker.InvalidTransitionError, match="COMPLETED"):
        st.fail("too late")
    with pytest.raises(tasker.InvalidTransitionError, match="finished"):
        st.increment()
    with pytest.raises(tasker.InvalidTransitionError, match="finished"):
        st.update(items_complete=3)
    assert run.subtasks()[0].items_complete == 5
    run.fail("it broke", "details here")
    run.fail("again")  # a no-op: the first error stays
    rec = run.record()
    assert (rec.status, rec.error_message, rec.error_detail) == ("FAILED", "it broke", "details here")
    with pytest.raises(tasker.InvalidTransitionError):
        run.complete()
    assert run.set_status("RUNNING", reset=True) == "FAILED"
    assert run.status() == "RUNNING"


def test_track_counts_and_completes(tracker):
    with tracker.task("s", "track") as run:
        seen = [x for x in run.track(range(7), "numbers")]
        gen = (i for i in range(4))
        assert list(run.track(gen, "generator")) == [0, 1, 2, 3]
    assert seen == list(range(7))
    a, b = run.subtasks()
    assert (a.items_complete, a.items_total, a.status) == (7, 7, Status.COMPLETED)
    assert (b.items_complete, b.items_total, b.status) == (4, None, Status.COMPLETED)


def test_track_fails_when_the_body_raises(tracker):
    with pytest.raises(RuntimeError):
        with tracker.task("s", "track-body") as run:
            for x in run.track([1, 2, 3, 4], "items"):
                if x == 3:
                    raise RuntimeError("item 3 is bad")
    (sub,) = run.subtasks()
    assert sub.status == Status.FAILED
    assert sub.error_message == "RuntimeError: item 3 is bad"
    assert sub.items_complete == 2  # items 1 and 2 finished; 3 did not
    assert run.status() == Status.FAILED


def test_track_as_context_manager_fails_at_once(tracker):
    run = tracker.task("s", "track-with")
    with pytest.raises(KeyError):
        with run.track(["a", "b"], "letters") as items:
            for x in items:
                raise KeyError(x)
    (sub,) = run.subtasks()
    assert sub.status == Status.FAILED and sub.error_message == "KeyError: 'a'"
    assert run.status() == Status.RUNNING  # the run itself goes on
    run.complete()


def test_track_fails_when_the_iterable_raises(tracker):
    def items():
        yield 1
        raise OSError("disk gone")

    run = tracker.task("s", "track-source")
    with pytest.raises(OSError):
        for _ in run.track(items(), "reading"):
            pass
    (sub,) = run.subtasks()
    assert sub.status == Status.FAILED and sub.error_message == "OSError: disk gone"
    assert sub.items_complete == 1
    run.complete()


def test_track_break_completes(tracker):
    with tracker.task("s", "track-break") as run:
        for x in run.track(range(100), "search"):
            if x == 10:
                break
    (sub,) = run.subtasks()
    assert sub.status == Status.COMPLETED and sub.items_complete == 10


def test_track_display_draws_on_the_given_stream(tracker):
    out = io.StringIO()
    with tracker.task("s", "bar") as run:
        for _ in run.track(range(50), "bar items", display=True, file=out):
            pass
    text = out.getvalue()
    assert "50/50" in text and "100.0%" in text and text.endswith("\n")
    # The bar is labelled with the subtask's name.
    assert text.lstrip("\r").startswith("bar items: ")


def test_track_display_defaults_to_stderr_and_is_off_by_default(tracker, capsys):
    with tracker.task("s", "bar2") as run:
        list(run.track(range(3), "quiet"))
        list(run.track(range(3), "loud", display=True))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "quiet" not in captured.err and "3/3" in captured.err and "loud: " in captured.err


def test_tracked_decorator(tracker):
    @tasker.tracked(stage="etl", task="load", tracker=tracker)
    def load(n):
        run = tasker.current_run()
        with run.subtask("rows", items_total=n) as st:
            st.increment(n)
        return run.run_id

    run_id = load(5)
    rec = tracker.run(run_id)
    assert (rec.stage_name, rec.task_name, rec.status) == ("etl", "load", Status.COMPLETED)
    assert tracker.subtasks(run_id)[0].items_complete == 5

    @tasker.tracked(tracker=tracker)
    def broken():
        raise ZeroDivisionError("nope")

    with pytest.raises(ZeroDivisionError):
        broken()
    (last,) = tracker.history(task="broken", limit=1)
    assert last.status == Status.FAILED and last.stage_name == "test_api"
    assert "ZeroDivisionError: nope" in last.error_detail


def test_default_tracker_uses_the_environment(tmp_path, monkeypatch):
    url = "sqlite://" + str(tmp_path / "env.db")
    monkeypatch.setenv("TASKER_DB_URL", url)
    tasker.set_default_tracker(None)
    with tasker.task("env", "job") as run:
        pass
    assert tasker.default_tracker().location.endswith("env.db")
    assert (tmp_path / "env.db").exists()
    assert tasker.connect(url).run(run.run_id).status == "COMPLETED"


def test_records_are_typed_immutable_and_convertible(tracker):
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    with tracker.task("s", "records", total_subtasks=1) as run:
        with run.subtask("x", 2) as st:
            st.increment(2)
    rec = run.record()
    for t in (rec.start_time, rec.end_time, rec.last_update):
        assert isinstance(t, datetime) and t.tzinfo is not None and t.utcoffset() == timedelta(0)
        assert before < t < datetime.now(timezone.utc) + timedelta(seconds=5)
    with pytest.raises(AttributeError):
        rec.status = Status.FAILED  # type: ignore[misc]
    d = rec.to_dict()
    assert d["status"] == "COMPLETED" and type(d["status"]) is str
    assert d["run_id"] == run.run_id and "error_detail" in d
    assert "records" in repr(rec) and "COMPLETED" in repr(rec)
    sub = run.subtasks()[0]
    assert "2/2" in repr(sub)
    assert pickle.loads(pickle.dumps(rec)) == rec
    (task,) = tracker.registered_tasks(stage="s", name="records")
    assert isinstance(task.created_at, datetime) and task.created_at.tzinfo is not None
    (stage,) = tracker.stages()
    assert stage.stage_name == "s"
    events = tracker.events(run_id=run.run_id)
    assert [e.new_status for e in events][:2] == [Status.STARTED, Status.STARTED]
    assert events[-1].new_status == Status.COMPLETED and events[-1].subtask_number is None


def test_to_pandas(tracker):
    pd = pytest.importorskip("pandas")
    with tracker.task("s", "frame") as run:
        list(run.track(range(3), "a"))
    df = tasker.to_pandas(tracker.history())
    assert list(df["run_id"]) == [run.run_id]
    assert str(df["start_time"].dtype).startswith("datetime64") and "UTC" in str(df["start_time"].dtype)
    assert df.loc[0, "status"] == "COMPLETED"
    subs = tasker.to_pandas(run.subtasks())
    assert subs.loc[0, "items_complete"] == 3
    assert tasker.to_pandas([]).empty
    assert isinstance(df, pd.DataFrame)


def test_queries(tracker):
    tracker.register_task("prep", "never-run", type="python", stage_order=1, task_order=2)
    with tracker.task("prep", "ran"):
        pass
    running = tracker.task("prep", "running")
    status = {r.task_name: r for r in tracker.task_status()}
    assert status["never-run"].status == Status.NOT_STARTED and status["never-run"].run_id is None
    assert status["ran"].status == Status.COMPLETED
    assert [r.run_id for r in tracker.active_runs()] == [running.run_id]
    assert [r.task_name for r in tracker.task_status(status="COMPLETED")] == ["ran"]
    assert len(tracker.history(limit=1)) == 1
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    assert tracker.history(since=future) == []
    running.complete()
    assert tracker.active_runs() == []


def test_attach_from_another_tracker(tracker, db_url):
    run = tracker.task("s", "shared")
    st = run.subtask("n")
    other = tasker.connect(db_url)
    r2 = other.attach(run.run_id)
    assert (r2.stage, r2.task) == ("s", "shared")
    r2.subtask_increment(st.number, 3)
    st.increment(2)
    other.flush()
    assert tracker.subtasks(run.run_id)[0].items_complete == 5
    with pytest.raises(tasker.NotFoundError):
        other.attach("no-such-run")


def test_flush_makes_progress_visible_to_other_readers(tracker, db_path):
    import sqlite3

    run = tracker.task("s", "flush")
    st = run.subtask("n")
    st.increment(41)
    st.increment()
    tasker.flush()
    with sqlite3.connect(db_path) as db:
        (n,) = db.execute("SELECT items_complete FROM subtasks").fetchone()
    assert n == 42


def test_callbacks_and_logging(tracker, caplog):
    runs, subs = [], []
    tracker.on_status_change(runs.append)

    @tracker.on_subtask_change
    def on_sub(event):
        subs.append(event)

    def broken(event):
        raise RuntimeError("callback bug")

    tracker.on_status_change(broken)
    with caplog.at_level(logging.DEBUG, logger="tasker"):
        with tracker.task("s", "events") as run:
            with run.subtask("x"):
                pass
    assert [(e.old_status, e.new_status) for e in runs] == [
        (Status.NOT_STARTED, Status.STARTED),
        (Status.STARTED, Status.RUNNING),  # stored when the subtask started
        (Status.RUNNING, Status.COMPLETED),
    ]
    assert all(e.run_id == run.run_id and e.subtask_number is None for e in runs)
    assert [(e.subtask_number, e.new_status) for e in subs] == [(1, Status.STARTED), (1, Status.COMPLETED)]
    assert isinstance(runs[0], tasker.EventRecord) and runs[0].time.tzinfo is not None
    assert tasker.TransitionEvent is tasker.EventRecord  # the name of earlier versions
    messages = [r.getMessage() for r in caplog.records if r.name == "tasker"]
    assert any("s/events run NOT_STARTED -> STARTED" in m for m in messages)
    assert any("callback" in m and "failed" in m for m in messages)
    tracker.remove_callback(broken)
    tracker.remove_callback(runs.append)


def test_callbacks_get_the_stored_events(tracker):
    seen = []
    tracker.on_status_change(seen.append)
    tracker.on_subtask_change(seen.append)
    with tracker.task("s", "progress") as run:
        with run.subtask("x") as st:
            st.increment(3)
            tracker.flush()  # stores (and reports) the subtask's STARTED -> RUNNING
    stored = tracker.events(run_id=run.run_id)
    # An event goes out on another thread when that one was giving out earlier
    # events at the time: wait until they all arrived.
    deadline = time.monotonic() + 30
    while len(seen) < len(stored) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == stored
    assert [(e.subtask_number, e.kind, e.new_status) for e in seen] == [
        (None, "run", Status.STARTED),
        (1, "subtask", Status.STARTED),
        (None, "run", Status.RUNNING),
        (1, "subtask", Status.RUNNING),
        (1, "subtask", Status.COMPLETED),
        (None, "run", Status.COMPLETED),
    ]
    ids = [e.event_id for e in seen]
    assert ids == sorted(set(ids))


def test_nothing_is_printed_by_default(db_url, tmp_path):
    import subprocess

    code = (
        "import tasker\n"
        f"t = tasker.connect({db_url!r})\n"
        "with t.task('s', 't') as run:\n"
        "    list(run.track(range(10), 'x'))\n"
        "try:\n"
        "    with t.task('s', 'u'):\n"
        "        raise ValueError('handled')\n"
        "except ValueError:\n"
        "    pass\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""


def test_threads_share_a_tracker_and_handles(tracker):
    import threading

    run = tracker.task("s", "threads")
    st = run.subtask("shared")
    errors = []

    def work(i):
        try:
            for _ in range(5000):
                st.increment()
            own = run.subtask(f"thread {i}", 100)
            for _ in range(100):
                own.increment()
            own.complete()
            tracker.history(limit=1)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    subs = tracker.subtasks(run.run_id)
    assert subs[0].items_complete == 40_000
    assert sorted(s.subtask_number for s in subs) == list(range(1, 10))
    assert all(s.items_complete == 100 for s in subs[1:])
    run.complete()


def test_gil_is_released_while_waiting_for_the_database(db_path):
    """A transition blocked on a database locked by another process lets other Python
    threads run meanwhile."""
    import subprocess
    import threading

    t = tasker.connect("sqlite://" + db_path, busy_timeout_ms=60_000)
    run = t.task("s", "gil")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
            "c.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('COMMIT')\n",
            db_path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = threading.Event()
        done = threading.Event()

        def finish():
            started.set()
            run.complete()
            done.set()

        worker = threading.Thread(target=finish)
        worker.start()
        started.wait()
        ticks = 0
        while ticks < 300_000 and not done.is_set():
            ticks += 1  # pure Python: runs only while the waiting thread has released the GIL
        assert ticks == 300_000 and not done.is_set(), "the transition should wait for the lock"
    finally:
        holder.stdin.write("go\n")
        holder.stdin.flush()
        holder.wait(60)
    worker.join(60)
    assert done.is_set()
    assert run.status() == "COMPLETED"
