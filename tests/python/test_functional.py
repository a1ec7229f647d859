"""The functional API with the R package's names and keyword arguments."""
import pytest

import tasker
from tasker import Status


def test_register_and_query(tracker):
    tid = tasker.register_task(
        stage="prepare",
        name="download",
        type="python",
        description="fetch",
        script_path="/opt/jobs/download.py",
        stage_order=1,
        task_order=1,
        tracker=tracker,
    )
    ids = tasker.register_tasks(
        [
            {"stage": "prepare", "name": "validate", "type": "python", "stage_order": 1, "task_order": 2},
            {"stage": "model", "name": "fit", "type": "R", "stage_order": 2},
        ],
        tracker=tracker,
    )
    assert isinstance(tid, int) and len(ids) == 2
    tasks = tasker.get_registered_tasks(tracker=tracker)
    assert [(t.stage_name, t.task_name) for t in tasks] == [
        ("prepare", "download"),
        ("prepare", "validate"),
        ("model", "fit"),
    ]
    assert tasks[0].script_filename == "download.py"
    assert [t.task_name for t in tasker.get_registered_tasks(stage="model", tracker=tracker)] == ["fit"]
    assert [s.stage_name for s in tasker.get_stages(tracker=tracker)] == ["prepare", "model"]


def test_register_tasks_from_a_data_frame(tracker):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "stage": ["a", "a", "b"],
            "name": ["t1", "t2", "t3"],
            "type": ["python", "python", "sql"],
            "stage_order": [1, 1, 2],
            "task_order": [1, 2, None],
        }
    )
    assert len(tasker.register_tasks(df, tracker=tracker)) == 3
    rows = {t.task_name: t for t in tasker.get_registered_tasks(tracker=tracker)}
    assert rows["t2"].task_order == 2 and rows["t3"].task_order is None
    with pytest.raises(tasker.ArgumentError, match="missing required columns: name"):
        tasker.register_tasks(pd.DataFrame({"stage": ["x"]}), tracker=tracker)


def test_run_lifecycle_with_the_active_context(tracker):
    run_id = tasker.task_start("prepare", "download", total_subtasks=2, message="go", version="0.1", tracker=tracker)
    assert tasker.tasker_context() == run_id
    n1 = tasker.subtask_start("files", items_total=100, tracker=tracker)
    for _ in range(40):
        tasker.subtask_increment(tracker=tracker)
    tasker.subtask_increment(10, tracker=tracker)
    tasker.subtask_update(message="half way", tracker=tracker)
    tasker.task_update(current_subtask=1, overall_percent=25.0, message="a quarter", tracker=tracker)
    (sub,) = tasker.get_subtask_progress(tracker=tracker)
    assert (sub.subtask_number, sub.items_complete, sub.progress_message) == (n1, 50, "half way")
    assert sub.percent_complete == 50.0
    tasker.subtask_complete(100, "all files", tracker=tracker)
    n2 = tasker.subtask_start("parse", tracker=tracker)
    tasker.subtask_update(percent=10.0, items_complete=3, tracker=tracker)
    tasker.subtask_fail("parse error", "Traceback ...\nValueError: row 3", tracker=tracker)
    (active,) = tasker.get_active_tasks(tracker=tracker)
    assert active.run_id == run_id and active.overall_progress_message == "a quarter"
    tasker.task_complete("done", tracker=tracker)
    assert tasker.tasker_context() is None
    subs = tasker.get_subtask_progress(run_id, tracker=tracker)
    assert [(s.subtask_number, s.status, s.items_complete) for s in subs] == [
        (n1, Status.COMPLETED, 100),
        (n2, Status.FAILED, 3),
    ]
    assert (subs[1].error_message, subs[1].error_detail) == ("parse error", "Traceback ...\nValueError: row 3")
    assert subs[0].error_detail is None
    (status,) = tasker.get_task_status(stage="prepare", tracker=tracker)
    assert status.status == Status.COMPLETED and status.overall_progress_message == "done"
    (hist,) = tasker.get_task_history(limit=10, tracker=tracker)
    assert hist.run_id == run_id and hist.version == "0.1"


def test_subtask_complete_reads_a_string_as_the_message(tracker):
    run_id = tasker.task_start("s", "t", tracker=tracker)
    tasker.subtask_start("x", tracker=tracker)
    tasker.subtask_complete("finished", tracker=tracker)
    (sub,) = tasker.get_subtask_progress(run_id, tracker=tracker)
    assert sub.status == Status.COMPLETED and sub.progress_message == "finished"
    tasker.task_fail("broke", error_detail="stack", tracker=tracker)
    rec = tracker.run(run_id)
    assert (rec.status, rec.error_message, rec.error_detail) == (Status.FAILED, "broke", "stack")


def test_subtask_update_records_error_detail_only_with_a_status(tracker):
    run_id = tasker.task_start("s", "detail", tracker=tracker)
    tasker.subtask_start("x", tracker=tracker)
    with pytest.raises(tasker.ArgumentError, match="invalid error_detail 'why'"):
        tasker.subtask_update(error_detail="why", tracker=tracker)
    tasker.subtask_update("FAILED", error_message="broke", error_detail="why", tracker=tracker)
    (sub,) = tasker.get_subtask_progress(run_id, tracker=tracker)
    assert (sub.status, sub.error_message, sub.error_detail) == (Status.FAILED, "broke", "why")


def test_task_update_with_status(tracker):
    run_id = tasker.task_start("s", "status", tracker=tracker)
    tasker.task_update("FAILED", error_message="bad input", error_detail="line 3", tracker=tracker)
    rec = tracker.run(run_id)
    assert (rec.status, rec.error_message) == (Status.FAILED, "bad input")
    with pytest.raises(tasker.InvalidTransitionError):
        tasker.task_update(Status.RUNNING, run_id=run_id, tracker=tracker)
    with pytest.raises(tasker.ArgumentError, match="COMPLETE"):
        tasker.task_update("COMPLETE", run_id=run_id, tracker=tracker)


def test_explicit_run_id_and_subtask_number(tracker):
    a = tasker.task_start("s", "a", active=False, tracker=tracker)
    b = tasker.task_start("s", "b", tracker=tracker)
    assert tasker.tasker_context() == b
    na = tasker.subtask_start("in a", run_id=a, tracker=tracker)
    tasker.subtask_start("in b", tracker=tracker)
    tasker.subtask_increment(7, run_id=a, subtask_number=na, tracker=tracker)
    tasker.subtask_complete(run_id=a, tracker=tracker)
    tasker.task_complete(run_id=a, tracker=tracker)
    (sub,) = tasker.get_subtask_progress(a, tracker=tracker)
    assert sub.items_complete == 7 and sub.status == Status.COMPLETED
    assert tasker.tasker_context() == b


def test_errors_without_context(tracker):
    with pytest.raises(tasker.NotFoundError, match="no active run"):
        tasker.subtask_increment(tracker=tracker)
    run_id = tasker.task_start("s", "t", tracker=tracker)
    with pytest.raises(tasker.NotFoundError, match="subtask_start"):
        tasker.subtask_increment(tracker=tracker)
    with pytest.raises(tasker.NotFoundError):
        tasker.subtask_increment(run_id=run_id, subtask_number=5, tracker=tracker)
    with pytest.raises(tasker.NotFoundError):
        tasker.task_complete(run_id="not-a-run", tracker=tracker)
    with pytest.raises(tasker.ArgumentError, match="no registered task has script_filename"):
        tasker.task_start(tracker=tracker)


def test_task_start_detects_stage_and_task_from_the_script(tracker, monkeypatch):
    import sys
    import types

    tracker.register_task("etl", "nightly", script_path="/jobs/nightly_job.py")
    main = types.ModuleType("__main__")
    main.__file__ = "/somewhere/else/nightly_job.py"
    monkeypatch.setitem(sys.modules, "__main__", main)
    run_id = tasker.task_start(tracker=tracker)
    rec = tracker.run(run_id)
    assert (rec.stage_name, rec.task_name, rec.script_filename) == ("etl", "nightly", "nightly_job.py")
    tasker.task_complete(tracker=tracker)


def test_module_level_functions_use_the_default_tracker():
    run_id = tasker.task_start("default", "tracker")
    tasker.subtask_start("x", 2)
    tasker.subtask_increment()
    tasker.subtask_increment()
    tasker.subtask_complete()
    tasker.task_complete()
    (sub,) = tasker.get_subtask_progress(run_id)
    assert sub.items_complete == 2
    assert [r.run_id for r in tasker.get_task_history()] == [run_id]


def test_functional_calls_inside_with_refer_to_that_run(tracker):
    with tracker.task("s", "with") as run:
        tasker.subtask_start("inner", 3)
        tasker.subtask_increment(3)
        tasker.subtask_complete()
    (sub,) = run.subtasks()
    assert sub.items_complete == 3 and sub.status == Status.COMPLETED
