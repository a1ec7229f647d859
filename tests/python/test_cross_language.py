"""Python reads a database written by the C example (examples/c/pipeline.c): the same
rows and values as the C program's own query, and as the raw SQLite tables.

The C example is compiled against target/debug/libtasker.so when that library, the
example and a C compiler exist (scripts/test.sh builds the library first). Otherwise
the same shape of data is written through the core from Python, so the reading side
is still checked."""
import json
import os
import shutil
import sqlite3
import subprocess
from datetime import datetime

import pytest

import tasker
from tasker import Status

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
LIBDIR = os.path.join(TARGET, "debug")
EXAMPLE = os.path.join(ROOT, "examples", "c", "pipeline.c")
ITEMS = 1_000_000


def _c_example_available():
    return (
        os.path.exists(os.path.join(LIBDIR, "libtasker.so"))
        and os.path.exists(EXAMPLE)
        and os.path.exists(os.path.join(ROOT, "include", "tasker.h"))
        and shutil.which("cc") is not None
    )


def _run_c_example(tmp_path, url):
    exe = str(tmp_path / "pipeline")
    subprocess.run(
        ["cc", "-std=c11", "-I" + os.path.join(ROOT, "include"), EXAMPLE, "-L" + LIBDIR, "-ltasker", "-lm",
         "-Wl,-rpath," + LIBDIR, "-o", exe],
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = subprocess.run([exe, url], check=True, capture_output=True, text=True, timeout=300).stdout
    first, rest = out.split("\n", 1)
    assert first.startswith("run ")
    return first[4:].strip(), json.loads(rest)


def _write_same_shape_from_python(url):
    """What examples/c/pipeline.c writes, written through the core from Python."""
    t = tasker.connect(url)
    t.register_tasks(
        [
            {"stage": "prepare", "stage_order": 1, "name": "download", "type": "c", "task_order": 1,
             "description": "fetch the raw files", "script_path": "examples/c/pipeline.c"},
            {"stage": "prepare", "stage_order": 1, "name": "validate", "type": "c", "task_order": 2},
            {"stage": "model", "stage_order": 2, "name": "fit", "type": "c", "task_order": 1},
            {"stage": "model", "stage_order": 2, "name": "report", "type": "c", "task_order": 2},
        ]
    )
    run = t.task("prepare", "download", 3, version=tasker.__version__, metadata={"language": "C"})
    st = run.subtask("count items", ITEMS)
    inc = st.increment
    for _ in range(ITEMS):
        inc()
    st.complete("all items counted")
    flaky = run.subtask("flaky step")
    flaky.fail("flaky step returned -1", "the remote end hung up; retried later")
    summary = run.subtask("summarise")
    summary.update(percent=50.0, message="half way")
    summary.complete()
    run.complete("downloaded with one handled failure")
    status = [r.to_dict() for r in t.task_status()]
    t.close()
    return run.run_id, json.loads(json.dumps(status, default=lambda v: v.isoformat()))


def _same(python_value, c_value):
    if isinstance(python_value, datetime):
        return python_value == datetime.fromisoformat(c_value.replace("Z", "+00:00"))
    if isinstance(python_value, Status):
        return python_value.value == c_value
    return python_value == c_value


def test_python_reads_what_c_wrote(tmp_path):
    url = "sqlite://" + str(tmp_path / "c.db")
    if _c_example_available():
        run_id, c_status = _run_c_example(tmp_path, url)
    else:  # no C toolchain or library here: the same data through the core
        run_id, c_status = _write_same_shape_from_python(url)

    t = tasker.connect(url)
    py_status = t.task_status()
    assert [(r.stage_name, r.task_name) for r in py_status] == [
        (c["stage_name"], c["task_name"]) for c in c_status
    ]
    for py, c in zip(py_status, c_status):
        for field, value in py.to_dict().items():
            if field in ("lost", "duration_seconds") and c["run_id"] is None:
                continue
            assert _same(getattr(py, field), c[field]), (field, getattr(py, field), c[field])

    run = t.run(run_id)
    assert run.status == Status.COMPLETED and run.total_subtasks == 3
    assert run.metadata == {"language": "C"}
    assert run.overall_progress_message == "downloaded with one handled failure"
    subs = t.subtasks(run_id)
    assert [(s.subtask_name, s.status, s.items_complete) for s in subs] == [
        ("count items", Status.COMPLETED, ITEMS),
        ("flaky step", Status.FAILED, 0),
        ("summarise", Status.COMPLETED, 0),
    ]
    assert subs[0].items_total == ITEMS and subs[0].percent_complete == 100.0
    assert subs[1].error_message == "flaky step returned -1"
    assert subs[2].progress_message == "half way"

    # The raw tables say the same (an independent reader).
    with sqlite3.connect(str(tmp_path / "c.db")) as db:
        db.row_factory = sqlite3.Row
        raw = {r["subtask_number"]: r for r in db.execute("SELECT * FROM subtasks WHERE run_id = ?", (run_id,))}
        for s in subs:
            r = raw[s.subtask_number]
            assert (r["subtask_name"], r["status"], r["items_complete"], r["items_total"]) == (
                s.subtask_name, s.status.value, s.items_complete, s.items_total)
        (raw_run,) = db.execute("SELECT status, total_subtasks FROM runs WHERE run_id = ?", (run_id,)).fetchall()
        assert tuple(raw_run) == ("COMPLETED", 3)
    tasks = {(x.stage_name, x.task_name): x for x in t.registered_tasks()}
    assert tasks[("prepare", "download")].description == "fetch the raw files"
    assert tasks[("prepare", "download")].script_filename == "pipeline.c"
    assert [s.stage_name for s in t.stages()] == ["prepare", "model"]


def test_c_example_is_used_when_available():
    """Says which path the test above took, so a run without the C side is visible."""
    if not _c_example_available():
        pytest.skip(
            "C example not built here (needs target/debug/libtasker.so from `cargo build -p tasker-core`, "
            "examples/c/pipeline.c and cc); the cross-language test wrote the same data from Python instead"
        )
