"""The CLI on the database the C example pipeline wrote (examples/c/pipeline.c):
what one language writes, the command line reads."""

import csv
import io
import json
import os
import subprocess

import pytest

from conftest import TASKER

DB = os.environ.get("TASKER_C_EXAMPLE_DB")
pytestmark = pytest.mark.skipif(not DB, reason="TASKER_C_EXAMPLE_DB not set (scripts/test-cli.sh sets it)")


def tasker(*args):
    out = subprocess.run([TASKER, "--db", DB, *args], capture_output=True, text=True, check=True)
    return out.stdout


def test_status_history_show_and_export_of_the_c_pipeline():
    rows = json.loads(tasker("status", "--json"))
    by_task = {(r["stage_name"], r["task_name"]): r for r in rows}
    assert set(by_task) == {("prepare", "download"), ("prepare", "validate"), ("model", "fit"), ("model", "report")}
    download = by_task[("prepare", "download")]
    assert download["status"] == "COMPLETED"
    assert download["total_subtasks"] == 3
    assert download["metadata"] == {"language": "C"}
    assert by_task[("model", "fit")]["status"] == "NOT_STARTED"

    text = tasker("status")
    assert "download" in text and "COMPLETED" in text and "NOT_STARTED" in text
    assert "3 of 3" not in text  # the table shows done/total
    assert "2/3" in text or "3/3" in text

    detail = json.loads(tasker("show", download["run_id"], "--json"))
    subs = {s["subtask_name"]: s for s in detail["subtasks"]}
    assert subs["count items"]["items_complete"] == 1_000_000
    assert subs["count items"]["percent_complete"] == 100.0
    assert subs["flaky step"]["status"] == "FAILED"
    assert subs["flaky step"]["error_message"] == "flaky step returned -1"
    assert subs["summarise"]["status"] == "COMPLETED"
    assert [e["new_status"] for e in detail["events"]][-1] == "COMPLETED"
    shown = tasker("show", download["run_id"])
    assert "flaky step returned -1" in shown and "1.0M" in shown

    runs = list(csv.DictReader(io.StringIO(tasker("export", "--format", "csv", "--table", "runs"))))
    assert [r["task_name"] for r in runs] == ["download"]
    assert runs[0]["status"] == "COMPLETED"
    hist = json.loads(tasker("history", "--json", "--stage", "prepare"))
    assert len(hist) == 1
