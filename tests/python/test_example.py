"""The example pipeline runs and records what it says it does."""
import os
import subprocess
import sys

import tasker
from tasker import Status

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "pipeline.py")


def test_example_pipeline(tmp_path):
    url = "sqlite://" + str(tmp_path / "example.db")
    env = dict(os.environ, TASKER_DB_URL=url)
    p = subprocess.run([sys.executable, EXAMPLE], env=env, capture_output=True, text=True, timeout=300,
                       cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert "example.db" in p.stdout
    t = tasker.connect(url)
    status = {r.task_name: r for r in t.task_status()}
    assert status["generate corpus"].status == Status.COMPLETED
    run = status["word counts"]
    assert run.status == Status.COMPLETED and run.metadata is None
    subs = t.subtasks(run.run_id)
    assert [(s.subtask_name, s.status) for s in subs] == [
        ("count words", Status.COMPLETED),
        ("download reference (attempt 1)", Status.FAILED),
        ("download reference (attempt 2)", Status.COMPLETED),
        ("write report", Status.COMPLETED),
    ]
    assert subs[0].items_complete == subs[0].items_total == 40  # 4 worker processes, one subtask
    assert subs[1].error_message == "ConnectionError: mirror timed out"
    assert "distinct words" in subs[3].progress_message
    # the INFO log of transitions is on, as the example configures logging
    assert "analyse/word counts run NOT_STARTED -> STARTED" in p.stderr


WORKERS = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "workers.py")


def test_workers_example(tmp_path):
    url = "sqlite://" + str(tmp_path / "workers.db")
    env = dict(os.environ, TASKER_DB_URL=url)
    p = subprocess.run([sys.executable, WORKERS], env=env, capture_output=True, text=True, timeout=300,
                       cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    run_id = p.stdout.strip().splitlines()[-1]
    t = tasker.connect(url)
    assert t.run(run_id).status == Status.COMPLETED
    subs = t.subtasks(run_id)
    assert [(s.subtask_name, s.items_complete, s.items_total, s.status) for s in subs] == [
        ("score files", 60, 60, Status.COMPLETED),
        ("checksum files", 60, 60, Status.COMPLETED),
    ]
    failed = t.item_outcomes(run_id, outcome="failed")
    assert sorted(o.item_key for o in failed) == ["file-007.bin", "file-027.bin", "file-047.bin"]
    assert {o.reason for o in failed} == {"corrupt header"}
    # Recorded by the worker processes, not by the main one.
    assert t.run(run_id).process_id not in {o.process_id for o in failed}
    lines = t.run_logs(run_id)
    worker_lines = [r for r in lines if r.message.startswith("pid ")]
    assert len(worker_lines) == 57 and all(r.level == "debug" for r in worker_lines)
    main = [r.message for r in lines if r.message.startswith("workers-example: ")]
    assert main[0].startswith("workers-example: scoring 60 files")
    assert "Traceback (most recent call last):" in main[-1] and "deliberate error" in main[-1]
    t.close()
