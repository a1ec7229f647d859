"""Calls every public signature of the tasker package once, with typed values.

`mypy --strict` checks this file against the package and its stubs (so the stubs
match the module), and tests/python/test_typing.py runs it (so the module matches
the stubs)."""
from __future__ import annotations

import io
import pathlib
import pickle
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any, List, Optional

import tasker
from tasker import (
    Attempt,
    Run,
    Attempts,
    EventRecord,
    Health,
    IoRecord,
    ItemOutcomeCount,
    ItemOutcomeRecord,
    LogRecord,
    PurgeReport,
    RunRecord,
    SampleRecord,
    Script,
    TaskStatsRecord,
    StageRecord,
    Status,
    SubtaskRecord,
    TaskRecord,
    Tracker,
    TransitionEvent,
)


def exercise(url: str) -> List[Any]:
    out: List[Any] = []
    t: Tracker = tasker.connect(url, busy_timeout_ms=5000, flush_interval_ms=100, hostname="typed",
                                idle_disconnect_s=30, sample_interval_s=0)
    out += [t.location, t.backend, t.source, repr(t)]
    tid: int = t.register_task("typed", "one", type="python", description="d", script_path="/x/one.py",
                               script_filename="one.py", log_path="/x/one.log", log_filename="one.log",
                               stage_order=1, task_order=1)
    ids: List[int] = t.register_tasks([{"stage": "typed", "name": "two"}])
    out += [tid, ids]

    events: List[TransitionEvent] = []
    t.on_status_change(events.append)
    t.on_subtask_change(events.append)

    with t.task("typed", "one", 3, message="m", version="v", git_commit="abc", script_path="/x/one.py",
                script_filename="one.py", log_path="/x/l", log_filename="l", metadata={"k": 1}, extra=2) as run:
        assert tasker.current_run() is run
        rid: str = run.run_id
        stage: str = run.stage
        task: str = run.task
        out += [rid, stage, task, run.tracker is t]
        with run.subtask("a", 10, message="start", number=None, restart=False) as st:
            st.increment()
            st.increment(2)
            st.update(items_complete=5, percent=None, message="five", items_total=10)
            n: int = st.number
            out += [n, st.run_id, st.run is run]
        run.update(current_subtask=1, overall_percent=50.0, message="half")
        for x in run.track(range(3), "b", total=3, display=True, file=io.StringIO(), message="loop"):
            out.append(x)
        with run.track(["p", "q"], "c") as items:
            out += list(items)
        number: int = run.subtask_start("d", 1, message=None, number=None, restart=False)
        run.subtask_increment(number, 1)
        run.subtask_update(number, 1, 100.0, "done", 1)
        old: str = run.subtask_set_status(number, "COMPLETED", message="ok")
        st2 = run.subtask("e")
        st2.skip("not needed")
        st3 = run.subtask("f")
        st3.set_status(Status.RUNNING)
        st3.cancel()
        st4 = run.subtask("g")
        st4.fail("bad", "detail")
        st5 = run.subtask("h")
        st5.complete("fine")
        run.pause("p")
        run.resume("r")
        n6: int = run.subtask_start("i")
        run.subtask_complete(n6, "done")
        run.subtask_fail(run.subtask_start("j"), "bad", None)
        run.subtask_skip(run.subtask_start("k"), None)
        with tempfile.NamedTemporaryFile() as f:
            run.add_input("file", pathlib.Path(f.name), hash=True)
        run.add_input("value", 1)
        run.add_output("json", {"a": [1]}, hash=False)
        ios: List[IoRecord] = run.io()
        samples: List[SampleRecord] = run.samples()
        out += [ios, samples]
        out += [old, pickle.loads(pickle.dumps(run)).run_id, pickle.loads(pickle.dumps(st2)).number]
        rec: RunRecord = run.record()
        status: Status = run.status()
        subs: List[SubtaskRecord] = run.subtasks()
        one: SubtaskRecord = st5.record()
        out += [rec.to_dict(), status.is_terminal, status.is_active, subs, one]

    other = t.task("typed", "two")
    other.set_status("FAILED", message=None, error_message="e", error_detail="d", reset=False)
    other.set_status("RUNNING", reset=True)
    other.skip()
    third = t.task("typed", "three")
    third.cancel("c")
    fourth = t.task("typed", "four")
    fourth.fail("f", None)
    fifth = t.attach(t.task("typed", "five").run_id)
    fifth.complete(None)

    attempts: Attempts = t.task("typed", "retried", None, retries=2, retry_on=(ValueError,), retry_delay=0.0)
    for attempt in attempts:
        with attempt as retried_run:
            a: Attempt = attempt
            out += [a.number, a.retries_left, a.run is retried_run, a.error]
            if a.number == 1:
                raise ValueError("first attempt fails")
    out.append(attempts.attempts)
    again: Run = t.task("typed", "retried", attempt=None, retry=True)
    again.complete()
    module_attempts: Attempts = tasker.task("typed", "module-retries", retries=0)
    out.append(module_attempts)
    script: Script = tasker.main_script()
    out += [script.path, script.module, script.stem]
    health: Health = t.health()
    stats: List[TaskStatsRecord] = t.task_stats(stage="typed", task=None, since=None, limit=10)
    report: PurgeReport = t.purge(timedelta(days=365), stage="typed", task=None, keep_failed=True, dry_run=True)
    report2: PurgeReport = t.purge("400d")
    out += [health.reachable, stats, report.matching_runs, report2.deleted_runs, t.run_io(again.run_id),
            t.samples(again.run_id)]

    statuses: List[RunRecord] = t.task_status(stage="typed", task=None, status=Status.COMPLETED, limit=10)
    active: List[RunRecord] = t.active_runs()
    hist: List[RunRecord] = t.history("typed", None, 5, status="COMPLETED",
                                      since=datetime(2000, 1, 1, tzinfo=timezone.utc))
    tasks: List[TaskRecord] = t.registered_tasks(stage="typed", name=None)
    stages: List[StageRecord] = t.stages()
    evs: List[EventRecord] = t.events(after=0, run_id=None, limit=10)
    out += [statuses, active, hist, tasks, stages, evs, t.run(run.run_id), t.subtasks(run.run_id)]
    t.remove_callback(events.append)
    t.flush()
    tasker.flush()

    @tasker.tracked(stage="typed", task="decorated", tracker=t, total_subtasks=1)
    def decorated(x: int) -> int:
        return x + 1

    @tasker.tracked
    def bare(x: int) -> int:
        return x * 2

    @tasker.tracked(tracker=t, retries=1)
    def retried(x: int) -> int:
        return x - 1

    out.append(retried(1))

    out += [decorated(1)]

    # the functional API (R names)
    tasker.register_task("typed", "fn", "python", None, None, None, None, None, 1, 2, tracker=t)
    tasker.register_tasks([{"stage": "typed", "name": "fn2", "type": "python", "stage_order": 1}], tracker=t)
    run_id: str = tasker.task_start("typed", "fn", 2, "msg", "1.0", "abc", False, active=True,
                                    metadata={"a": 1}, script_path=None, log_path=None, attempt=None,
                                    retry=False, tracker=t)
    sn: int = tasker.subtask_start("s", 4, "m", False, run_id=None, subtask_number=None, restart=False, tracker=t)
    tasker.subtask_increment(1, True, run_id=None, subtask_number=None, tracker=t)
    tasker.subtask_update(None, 50.0, 2, "two", None, False, items_total=4, run_id=None,
                          subtask_number=sn, tracker=t)
    tasker.task_update(None, 1, 40.0, "m", None, None, False, run_id=run_id, tracker=t)
    tasker.subtask_complete(4, "done", False, run_id=run_id, subtask_number=sn, tracker=t)
    tasker.subtask_start("s2", tracker=t)
    tasker.subtask_fail("bad", "detail", False, run_id=run_id, subtask_number=None, tracker=t)
    ctx: Optional[str] = tasker.tasker_context()
    tasker.task_complete("done", False, run_id=None, tracker=t)
    run2 = tasker.task_start("typed", "fn2", tracker=t)
    tasker.task_fail("e", "d", False, run_id=run2, tracker=t)
    out += [ctx, sn]
    out += [
        tasker.get_task_status("typed", None, None, None, tracker=t),
        tasker.get_active_tasks(tracker=t),
        tasker.get_task_history("typed", None, 10, status=None, since=None, tracker=t),
        tasker.get_subtask_progress(run_id, tracker=t),
        tasker.get_registered_tasks("typed", None, tracker=t),
        tasker.get_stages(tracker=t),
        tasker.get_task_stats("typed", None, None, None, tracker=t),
        tasker.get_run_samples(run_id, tracker=t),
        tasker.get_run_io(run_id, tracker=t),
        tasker.health(tracker=t),
    ]
    # run logs and item outcomes
    logged: Run = t.task("typed", "logged")
    logged.log("info", "hello", None)
    logged.log(30, "number level")
    with logged.subtask("items", 2) as logged_items:
        logged_items.log("DEBUG", "about the subtask")
        logged_items.item_failed("k1", "boom")
        logged_items.item_skipped(2, None)
        logged_items.item_skipped("k3", reason="empty")
    logged.complete()
    lines: List[LogRecord] = tasker.get_run_logs(logged.run_id, level="info", since=None, after=None,
                                                 limit=10, tracker=t)
    outcomes: List[ItemOutcomeRecord] = tasker.get_item_outcomes(logged.run_id, subtask=None, outcome="failed",
                                                                 limit=None, tracker=t)
    counts: List[ItemOutcomeCount] = t.item_outcome_counts(logged.run_id)
    out += [lines, outcomes, counts, t.run_logs(logged.run_id, "debug", None, 0, None),
            t.item_outcomes(logged.run_id, 1, None, 5)]
    purged: bool = tasker.purge_tasker_data("DELETE ALL DATA", True, tracker=t)
    out.append(purged)
    frame = tasker.to_pandas(tasker.get_task_history(tracker=t))
    out.append(len(frame))

    default: Tracker = tasker.default_tracker()
    tasker.set_default_tracker(t)
    assert tasker.default_tracker() is t
    tasker.set_default_tracker(default)
    configured: Tracker = tasker.configure(url)
    with tasker.task("typed", "module-level", None) as r:
        out.append(r.run_id)
    out += [bare(2), configured.location, tasker.__version__]
    errors: List[type] = [tasker.TaskerError, tasker.ArgumentError, tasker.NotFoundError,
                          tasker.InvalidTransitionError, tasker.AlreadyExistsError, tasker.ConfigError,
                          tasker.StorageError]
    out.append(errors)
    out.append(events)
    with tasker.task("typed", "integrations", None, tracker=t) as r2:
        tq_items: List[int] = [i for i in tasker.tqdm(range(3), "tqdm items", 3, file=io.StringIO(), run=r2,
                                                   name="tqdm items")]
        handler: tasker.LogHandler = tasker.LogHandler(level="INFO", run=r2, fmt="%(message)s")
        with tasker.capture_logging("DEBUG", "typed.logger", run=r2, fmt=None) as h2:
            out.append(h2.level)
        handler.install(None)
        handler.uninstall()
        out += [tq_items, r2._repr_html_(), t.history()[0]._repr_html_()]
    dash: tasker.Dashboard = tasker.serve(0, host="127.0.0.1", open_browser=False, tracker=t, token=None,
                                          no_auth=False, title="typed", poll_ms=200)
    out += [dash.url, dash.database, dash.running, dash._repr_html_()]
    with dash:
        pass
    dash.stop()
    t.close()
    return out
