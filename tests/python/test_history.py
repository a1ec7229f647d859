"""Attempts and retries, inputs and outputs, statistics, samples, health and purge:
what a run records about itself and what the history of a task says."""
import hashlib
import os
import pathlib
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

import tasker
from tasker import Status


def _history(tracker, task):
    """The runs of a task, oldest first."""
    return list(reversed(tracker.history(task=task)))


# -- attempts -------------------------------------------------------------------


def test_a_failed_attempt_is_retried_and_counted_as_one_success(tracker):
    seen = []
    for attempt in tracker.task("etl", "flaky", retries=3):
        with attempt as run:
            seen.append((attempt.number, run.run_id))
            assert tasker.current_run() is run
            if attempt.number == 1:
                raise ConnectionError("mirror timed out")
    assert [n for n, _ in seen] == [1, 2]
    first, second = _history(tracker, "flaky")
    assert (first.status, first.attempt, first.retry_of) == (Status.FAILED, 1, None)
    assert first.error_message == "ConnectionError: mirror timed out"
    assert (second.status, second.attempt, second.retry_of) == (Status.COMPLETED, 2, first.run_id)
    assert attempt.error is None and attempt.retries_left == 2
    (stats,) = tracker.task_stats(task="flaky")
    assert (stats.runs, stats.logical_runs, stats.completed, stats.failed) == (2, 1, 1, 0)
    assert stats.success_rate == 1.0 and stats.retried == 1 and stats.mean_attempts == 2.0


def test_the_last_failure_is_raised_when_retries_run_out(tracker):
    errors = []
    with pytest.raises(ValueError, match="bad input 3") as caught:
        for attempt in tracker.task("etl", "hopeless", retries=2):
            with attempt:
                errors.append(ValueError(f"bad input {attempt.number}"))
                raise errors[-1]
    assert caught.value is errors[-1]
    runs = _history(tracker, "hopeless")
    assert [(r.status, r.attempt) for r in runs] == [(Status.FAILED, 1), (Status.FAILED, 2), (Status.FAILED, 3)]
    assert [r.retry_of for r in runs] == [None, runs[0].run_id, runs[1].run_id]
    (stats,) = tracker.task_stats(task="hopeless")
    assert (stats.logical_runs, stats.failed, stats.success_rate) == (1, 1, 0.0)


def test_only_retry_on_exceptions_are_retried(tracker):
    with pytest.raises(TypeError):
        for attempt in tracker.task("etl", "typed", retries=5, retry_on=(ConnectionError, ValueError)):
            with attempt:
                raise TypeError("a bug, not bad luck")
    assert [r.status for r in tracker.history(task="typed")] == [Status.FAILED]
    # KeyboardInterrupt is never retried: the run is cancelled.
    with pytest.raises(KeyboardInterrupt):
        for attempt in tracker.task("etl", "interrupted", retries=5, retry_on=BaseException):
            with attempt:
                raise KeyboardInterrupt
    assert [r.status for r in tracker.history(task="interrupted")] == [Status.CANCELLED]


def test_retry_delay_waits_between_attempts(tracker):
    starts = []
    for attempt in tracker.task("etl", "patient", retries=1, retry_delay=0.3):
        with attempt:
            starts.append(time.monotonic())
            if attempt.number == 1:
                raise OSError("busy")
    assert starts[1] - starts[0] >= 0.3


def test_attempts_are_misused_loudly(tracker):
    with pytest.raises(tasker.ArgumentError, match="cannot run twice"):
        with tracker.task("etl", "with-retries", retries=2):  # type: ignore[attr-defined]
            pass
    with pytest.raises(tasker.ArgumentError, match="never entered"):
        for attempt in tracker.task("etl", "not-entered", retries=2):
            pass
    assert tracker.history(task="with-retries") == [] and tracker.history(task="not-entered") == []
    with pytest.raises(tasker.ArgumentError, match="invalid retries -1"):
        tracker.task("etl", "x", retries=-1)
    with pytest.raises(tasker.ArgumentError, match="invalid retry_on"):
        tracker.task("etl", "x", retries=1, retry_on="ValueError")
    with pytest.raises(tasker.ArgumentError, match="invalid retry_delay"):
        tracker.task("etl", "x", retries=1, retry_delay=-1)
    with pytest.raises(tasker.ArgumentError, match="needs retries="):
        tracker.task("etl", "x", retry_on=ValueError)
    with pytest.raises(tasker.ArgumentError, match="invalid attempt 0"):
        tracker.task("etl", "x", attempt=0)


def test_tracked_with_retries(tracker):
    calls = []

    @tasker.tracked(stage="etl", tracker=tracker, retries=2)
    def fetch(x):
        calls.append(tasker.current_run().run_id)
        if len(calls) < 3:
            raise ConnectionError("again")
        return x * 2

    assert fetch(21) == 42
    runs = _history(tracker, "fetch")
    assert [r.run_id for r in runs] == calls
    assert [(r.status, r.attempt) for r in runs] == [(Status.FAILED, 1), (Status.FAILED, 2), (Status.COMPLETED, 3)]


def test_task_start_retry_and_attempt(tracker):
    first = tasker.task_start("etl", "manual", tracker=tracker)
    tasker.task_fail("disk full", tracker=tracker)
    second = tasker.task_start("etl", "manual", retry=True, tracker=tracker)
    tasker.task_complete(tracker=tracker)
    rec = tracker.run(second)
    assert (rec.attempt, rec.retry_of) == (2, first)
    # After a success, retry=True starts afresh.
    third = tasker.task_start("etl", "manual", retry=True, tracker=tracker)
    tasker.task_complete(tracker=tracker)
    assert (tracker.run(third).attempt, tracker.run(third).retry_of) == (1, None)
    with tracker.task("etl", "manual", attempt=5) as run:
        pass
    assert (run.record().attempt, run.record().retry_of) == (5, third)


RETRY_SCRIPT = """
import sys
import tasker

# First process: the attempt fails and the process exits with an error. The
# second process retries (retry=True) and succeeds.
t = tasker.connect(sys.argv[1])
fail = sys.argv[2] == "fail"
with t.task("nightly", "load", retry=not fail) as run:
    if fail:
        raise RuntimeError("database dump truncated")
"""


def test_attempts_across_processes_are_one_logical_run(tmp_path, db_url, tracker):
    script = tmp_path / "load.py"
    script.write_text(RETRY_SCRIPT)
    p = subprocess.run([sys.executable, str(script), db_url, "fail"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "database dump truncated" in p.stderr
    p = subprocess.run([sys.executable, str(script), db_url, "retry"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    first, second = _history(tracker, "load")
    assert (first.status, first.attempt) == (Status.FAILED, 1)
    assert (second.status, second.attempt, second.retry_of) == (Status.COMPLETED, 2, first.run_id)
    assert first.process_id != second.process_id
    (stats,) = tasker.get_task_stats("nightly", "load", tracker=tracker)
    assert (stats.logical_runs, stats.completed, stats.runs, stats.mean_attempts) == (1, 1, 2, 2.0)


# -- statistics -----------------------------------------------------------------


def test_task_stats_counts_and_filters(tracker):
    for outcome in ["ok", "ok", "fail", "ok"]:
        with tracker.task("report", "daily") as run:
            with run.subtask("rows", items_total=10) as st:
                st.increment(10)
            if outcome == "fail":
                run.fail("no data")
    with tracker.task("report", "weekly"):
        pass
    by_task = {s.task_name: s for s in tasker.get_task_stats("report", tracker=tracker)}
    assert set(by_task) == {"daily", "weekly"}
    daily = by_task["daily"]
    assert (daily.runs, daily.completed, daily.failed) == (4, 3, 1)
    assert daily.success_rate == pytest.approx(0.75)
    assert daily.duration_p50 is not None and daily.duration_max >= daily.duration_p50 >= 0
    assert daily.last_success is not None and daily.last_failure is not None
    assert daily.items_per_second is None or daily.items_per_second > 0
    # limit keeps the latest N runs of each task; since keeps runs started then or later.
    (latest,) = tracker.task_stats(task="daily", limit=1)
    assert (latest.runs, latest.completed) == (1, 1)
    assert tracker.task_stats(since=datetime.now(timezone.utc) + timedelta(hours=1)) == []
    with pytest.raises(tasker.ArgumentError, match="invalid limit 0"):
        tracker.task_stats(limit=0)


# -- inputs and outputs ---------------------------------------------------------


def test_inputs_and_outputs_round_trip(tracker, tmp_path):
    data = tmp_path / "input.csv"
    data.write_bytes(b"a,b\n1,2\n")
    out = tmp_path / "out.parquet"
    with tracker.task("model", "fit") as run:
        run.add_input("data", data, hash=True)
        run.add_input("date", "2026-03-01")
        run.add_input("alpha", 0.5)
        run.add_input("folds", 5)
        run.add_input("shuffle", True)
        run.add_input("columns", {"y": "target", "x": ["a", "b"]})
        run.add_input("nothing", None)
        run.add_input("folds", 10)  # a name recorded again replaces the first
        out.write_bytes(b"x" * 1000)
        run.add_output("model", out)
    by_name = {(r.direction, r.name): r for r in tasker.get_run_io(run.run_id, tracker=tracker)}
    f = by_name[("input", "data")]
    assert f.path == str(data.resolve()) and f.value is None
    assert f.size_bytes == 8 and f.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert abs(f.modified.timestamp() - data.stat().st_mtime) < 1
    values = {name: r.value for (d, name), r in by_name.items() if d == "input" and name != "data"}
    assert values == {
        "date": "2026-03-01",
        "alpha": "0.5",
        "folds": "10",
        "shuffle": "true",
        "columns": '{"x": ["a", "b"], "y": "target"}',
        "nothing": "null",
    }
    model = by_name[("output", "model")]
    assert (model.size_bytes, model.sha256) == (1000, None)
    assert [r.direction for r in run.io()] == ["input"] * 7 + ["output"]
    df = tasker.to_pandas(run.io())
    assert str(df["size_bytes"].dtype) == "Int64" and df["size_bytes"].isna().sum() == 6


def test_bad_inputs_are_refused_naming_them(tracker, tmp_path):
    with tracker.task("model", "bad-io") as run:
        with pytest.raises(tasker.ArgumentError, match="no-such.csv"):
            run.add_input("data", pathlib.Path(tmp_path / "no-such.csv"))
        with pytest.raises(tasker.ArgumentError, match=r"invalid value \{1, 2\}"):
            run.add_input("ids", {1, 2})
        with pytest.raises(tasker.ArgumentError, match="only a file is hashed"):
            run.add_output("label", "v1", hash=True)
        with pytest.raises(tasker.ArgumentError, match="name"):
            run.add_output(" ", "v1")
    assert run.io() == []


# -- samples --------------------------------------------------------------------

SAMPLED_SCRIPT = """
import sys, time
import tasker

t = tasker.connect(sys.argv[1])
with t.task("compute", "spin") as run:
    print(run.run_id, flush=True)
    end = time.monotonic() + float(sys.argv[2])
    block = bytearray(50 * 1024 * 1024)  # resident: written below
    for i in range(0, len(block), 4096):
        block[i] = 1
    if sys.argv[3] == "progress":
        with run.subtask("spin") as st:
            while time.monotonic() < end:
                st.increment()
    else:  # no progress at all: the samples ride the run's completion
        while time.monotonic() < end:
            pass
"""


def _sampled_run(tmp_path, db_url, interval, seconds, mode="progress"):
    script = tmp_path / "spin.py"
    script.write_text(SAMPLED_SCRIPT)
    env = dict(os.environ, TASKER_SAMPLE_INTERVAL_S=str(interval))
    p = subprocess.run([sys.executable, str(script), db_url, str(seconds), mode], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()[0]


def test_samples_are_taken_at_the_configured_interval(tmp_path, db_url, tracker):
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("process sampling needs /proc (Linux)")
    run_id = _sampled_run(tmp_path, db_url, 1, 3.5)
    samples = tasker.get_run_samples(run_id, tracker=tracker)
    assert len(samples) >= 2, samples
    rec = tracker.run(run_id)
    assert {s.pid for s in samples} == {rec.process_id}
    assert all(s.run_id == run_id for s in samples)
    assert samples == sorted(samples, key=lambda s: s.time)
    last = samples[-1]
    assert last.rss_bytes > 50 * 1024 * 1024 and last.cpu_seconds > 0.1
    # A busy loop: up to one core (less when the machine is shared with other work).
    assert last.cpu_percent is not None and 5 < last.cpu_percent <= 100 * (os.cpu_count() or 1) + 5
    assert last.threads is not None and last.threads >= 2  # the main thread and tasker's writer
    df = tasker.to_pandas(samples)
    assert str(df["rss_bytes"].dtype) == "Int64" and "UTC" in str(df["time"].dtype)


def test_a_run_without_progress_keeps_its_samples(tmp_path, db_url, tracker):
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("process sampling needs /proc (Linux)")
    # Shorter than a heartbeat (10 s) and no progress: nothing else writes them.
    run_id = _sampled_run(tmp_path, db_url, 1, 2.5, mode="quiet")
    samples = tracker.samples(run_id)
    assert len(samples) >= 1 and samples[-1].cpu_seconds > 0.5


def test_sampling_off_records_no_samples(tmp_path, db_url, tracker):
    run_id = _sampled_run(tmp_path, db_url, 0, 1.5)
    assert tracker.samples(run_id) == []


# -- subtask transitions on the run -----------------------------------------------


def test_run_subtask_complete_fail_skip(tracker):
    with tracker.task("s", "by-number") as run:
        a = run.subtask_start("a", 2)
        b = run.subtask_start("b")
        c = run.subtask_start("c")
        run.subtask_increment(a, 2)
        run.subtask_complete(a, "both done")
        run.subtask_complete(a)  # again: no change
        run.subtask_fail(b, "broken", "detail")
        run.subtask_skip(c, "not needed")
        with pytest.raises(tasker.InvalidTransitionError):
            run.subtask_increment(a)
    subs = {s.subtask_name: s for s in run.subtasks()}
    assert (subs["a"].status, subs["a"].items_complete, subs["a"].progress_message) == (
        Status.COMPLETED, 2, "both done")
    assert (subs["b"].status, subs["b"].error_message, subs["b"].error_detail) == (Status.FAILED, "broken", "detail")
    assert subs["c"].status == Status.SKIPPED
    with pytest.raises(tasker.NotFoundError):
        run.subtask_complete(99)


# -- health and purge -----------------------------------------------------------


def test_health(tracker, db_path):
    h = tracker.health()
    assert (h.backend, h.reachable, h.last_error, h.pending_writes, h.spooled_writes, h.replaying) == (
        "sqlite", True, None, 0, 0, False)
    assert db_path in h.location
    assert tasker.health(tracker=tracker) == h
    assert tasker.health().location.endswith("default.db")


def test_purge_deletes_old_finished_runs_only(tracker):
    with tracker.task("old", "done-1"):
        pass
    with tracker.task("old", "done-2"):
        pass
    with pytest.raises(RuntimeError):
        with tracker.task("old", "failed"):
            raise RuntimeError("x")
    active = tracker.task("old", "active")
    time.sleep(0.01)
    dry = tracker.purge("0s", keep_failed=True, dry_run=True)
    assert (dry.matching_runs, dry.deleted_runs, dry.kept_active_runs, dry.dry_run) == (2, 0, 1, True)
    assert len(tracker.history()) == 4
    report = tracker.purge(timedelta(0), keep_failed=True)
    assert (report.matching_runs, report.deleted_runs, report.kept_active_runs) == (2, 2, 1)
    assert sorted(r.task_name for r in tracker.history()) == ["active", "failed"]
    assert tracker.purge("1d").deleted_runs == 0  # nothing ended more than a day ago
    assert tracker.purge("0s", task="failed").deleted_runs == 1
    assert [r.task_name for r in tracker.history()] == ["active"]
    assert active.status() == Status.STARTED
    # registered tasks stay
    assert len(tracker.registered_tasks(stage="old")) == 4
    for bad in ["30x", "d", "12", "", 5, "9999999999999999s", "100000000d", timedelta(days=999_999_999)]:
        with pytest.raises(tasker.ArgumentError, match="invalid older_than"):
            tracker.purge(bad)  # type: ignore[arg-type]
    active.complete()


def test_purge_tasker_data_asks_first(tracker):
    with tracker.task("all", "one"):
        pass
    run_id = tasker.task_start("all", "two", tracker=tracker)
    # Not at a terminal (pytest's stdin): nothing is deleted without confirmation.
    assert tasker.purge_tasker_data(tracker=tracker) is False
    assert len(tracker.history()) == 2
    assert tasker.purge_tasker_data(confirmation_string=None, quiet=True, tracker=tracker) is True
    assert tracker.history() == [] and tasker.tasker_context() is None
    assert {t.task_name for t in tracker.registered_tasks(stage="all")} == {"one", "two"}
    with pytest.raises(tasker.NotFoundError):
        tracker.run(run_id)


# -- records and data frames ------------------------------------------------------


def test_run_records_carry_what_the_run_captured(tracker):
    with tracker.task("meta", "captured") as run:
        pass
    rec = run.record()
    assert rec.runtime == "Python {}.{}.{}".format(*sys.version_info[:3])
    assert rec.tasker_version == tasker.__version__
    assert rec.command_line and "pytest" in rec.command_line
    assert (rec.attempt, rec.retry_of) == (1, None)
    assert (rec.eta_seconds, rec.eta_low, rec.eta_high, rec.eta_basis) == (None, None, None, None)
    sub_fields = set(tasker.SubtaskRecord.__dataclass_fields__)
    assert {"eta_seconds", "eta_low", "eta_high"} <= sub_fields


def test_active_runs_have_an_eta_with_an_interval(tracker):
    with tracker.task("eta", "counted") as run:
        with run.subtask("items", items_total=1000) as st:
            st.increment(100)
            time.sleep(0.3)
            st.increment(100)
            tracker.flush()
            (row,) = [r for r in tracker.active_runs() if r.run_id == run.run_id]
            assert row.eta_seconds is not None and row.eta_basis in ("rate", "history", "blend")
            assert row.eta_low <= row.eta_seconds <= row.eta_high
            (sub,) = run.subtasks()
            assert sub.eta_low is not None and sub.eta_low <= sub.eta_seconds <= sub.eta_high


def test_to_pandas_uses_nullable_dtypes(tracker):
    pytest.importorskip("pandas")
    tracker.register_task("frame", "never-run")
    with tracker.task("frame", "ran") as run:
        run.subtask("a", 3).increment(3)
    df = tasker.to_pandas(tracker.task_status(stage="frame")).set_index("task_name")
    dtypes = df.dtypes.astype(str).to_dict()
    assert dtypes["process_id"] == "Int64" and dtypes["attempt"] == "Int64" and dtypes["stage_order"] == "Int64"
    assert dtypes["lost"] == "boolean" and dtypes["git_dirty"] == "boolean"
    assert dtypes["status"] == "string" and dtypes["run_id"] == "string"
    assert dtypes["start_time"] == "datetime64[ns, UTC]"
    assert dtypes["duration_seconds"] == "float64" and dtypes["metadata"] == "object"
    assert "object" not in {v for k, v in dtypes.items() if k != "metadata"}
    never = df.loc["never-run"]
    assert never["process_id"] is __import__("pandas").NA and never["status"] == "NOT_STARTED"
    assert df.loc["ran", "process_id"] == os.getpid()
    subs = tasker.to_pandas(run.subtasks())
    assert str(subs["items_total"].dtype) == "Int64" and subs.loc[0, "items_total"] == 3
    stats = tasker.to_pandas(tracker.task_stats())
    assert str(stats["runs"].dtype) == "Int64" and str(stats["last_failure"].dtype) == "datetime64[ns, UTC]"


def test_help_teaches_the_api():
    documented = [tasker.Run, tasker.Subtask, tasker.Tracker, tasker.Attempts, tasker.Attempt]
    for cls in documented:
        assert cls.__doc__, cls
        for name in dir(cls):
            if name.startswith("_"):
                continue
            member = getattr(cls, name)
            if callable(member) or isinstance(member, property):
                assert (member.__doc__ or "").strip(), f"{cls.__name__}.{name} has no docstring"
    for name in tasker.__all__:
        obj = getattr(tasker, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"tasker.{name} has no docstring"
    text = textwrap.dedent(tasker.Run.fail.__doc__ or "")
    assert "FAILED" in text
