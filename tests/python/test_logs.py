"""Run logs and item outcomes from Python, on real SQLite files: lines logged by
the run and its subtasks, read back as records (also from another process),
levels by name or logging number, bad levels refused by name."""
import logging
import subprocess
import sys
import textwrap

import pytest

import tasker


def test_lines_come_back_in_order_with_level_and_subtask(tracker):
    run = tracker.task("logs", "basic")
    run.log("info", "starting")
    with run.subtask("files", 3) as st:
        st.log("DEBUG", "first file")
        st.item_failed("a.csv", "parse error")
        st.item_skipped(42, "empty")
        st.item_skipped("c.csv")
    run.log(logging.WARNING, "careful")
    run.log(logging.CRITICAL, "bad")
    run.complete()
    lines = tasker.get_run_logs(run.run_id, tracker=tracker)
    assert [(r.level, r.message) for r in lines] == [
        ("info", "starting"),
        ("debug", "first file"),
        ("warn", "careful"),
        ("error", "bad"),
    ]
    assert isinstance(lines[0], tasker.LogRecord)
    assert lines[1].subtask_number == 1 and lines[0].subtask_number is None
    assert lines[0].time.tzinfo is not None and lines[0].dropped_lines is None
    assert [r.message for r in tracker.run_logs(run.run_id, level="warn")] == ["careful", "bad"]
    assert [r.message for r in tracker.run_logs(run.run_id, limit=1)] == ["bad"]
    after = tracker.run_logs(run.run_id, after=lines[1].log_id, limit=1)
    assert [r.message for r in after] == ["careful"]

    failed = tasker.get_item_outcomes(run.run_id, outcome="failed", tracker=tracker)
    assert [(o.item_key, o.reason, o.subtask_number) for o in failed] == [("a.csv", "parse error", 1)]
    skipped = tracker.item_outcomes(run.run_id, outcome="skipped")
    assert [(o.item_key, o.reason) for o in skipped] == [("42", "empty"), ("c.csv", None)]
    counts = {(c.outcome, c.total) for c in tracker.item_outcome_counts(run.run_id)}
    assert counts == {("failed", 1), ("skipped", 2)}


def test_bad_levels_and_unknown_runs_are_refused_by_name(tracker):
    run = tracker.task("logs", "bad")
    with pytest.raises(tasker.ArgumentError, match="verbose"):
        run.log("verbose", "x")
    with pytest.raises(tasker.ArgumentError, match="-5"):
        run.log(-5, "x")
    with pytest.raises(tasker.ArgumentError, match="loud"):
        tracker.run_logs(run.run_id, level="loud")
    with pytest.raises(tasker.ArgumentError, match="maybe"):
        tracker.item_outcomes(run.run_id, outcome="maybe")
    with pytest.raises(tasker.NotFoundError, match="nope"):
        tasker.get_run_logs("nope", tracker=tracker)
    run.complete()


def test_the_bound_keeps_the_newest_lines_and_a_marker(db_url):
    t = tasker.connect(db_url, max_log_lines=10)
    run = t.task("logs", "bounded")
    for i in range(25):
        run.log("info", f"line {i}")
    run.complete()
    lines = t.run_logs(run.run_id)
    assert lines[0].dropped_lines == 15 and "15" in lines[0].message
    assert [r.message for r in lines[1:]] == [f"line {i}" for i in range(15, 25)]
    t.close()


def test_lines_logged_by_another_process_are_read_here(tracker, db_url):
    run = tracker.task("logs", "shared")
    code = textwrap.dedent(f"""
        import tasker
        t = tasker.connect({db_url!r})
        r = t.attach({run.run_id!r})
        for i in range(3):
            r.log("info", f"child {{i}}")
        t.close()
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    run.log("info", "parent")
    run.complete()
    lines = tasker.get_run_logs(run.run_id, tracker=tracker)
    assert [r.message for r in lines] == ["child 0", "child 1", "child 2", "parent"]
    assert len({r.process_id for r in lines}) == 2
