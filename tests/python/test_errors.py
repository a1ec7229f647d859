"""Every bad argument raises the right class (with the bad value in the message), and
hostile names and messages are stored verbatim."""
import math
import sqlite3

import pytest

import tasker
from tasker import (
    AlreadyExistsError,
    ArgumentError,
    ConfigError,
    InvalidTransitionError,
    NotFoundError,
    StorageError,
    TaskerError,
)


def test_exception_tree():
    for cls in (ArgumentError, NotFoundError, InvalidTransitionError, AlreadyExistsError, ConfigError, StorageError):
        assert issubclass(cls, TaskerError)
    assert issubclass(ArgumentError, ValueError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(TaskerError, Exception)
    assert ArgumentError.__module__ == "tasker"
    assert len({ArgumentError, NotFoundError, InvalidTransitionError, AlreadyExistsError, ConfigError, StorageError}) == 6


@pytest.fixture
def run(tracker):
    r = tracker.task("s", "bad-args")
    yield r


@pytest.fixture
def st(run):
    return run.subtask("sub", items_total=10)


BAD = [
    # (description, call, class, text expected in the message)
    ("empty stage", lambda t, r, s: t.task("", "x"), ArgumentError, '""'),
    ("blank task", lambda t, r, s: t.task("s", "   "), ArgumentError, '"   "'),
    ("NUL in name", lambda t, r, s: t.task("s", "a\0b"), ArgumentError, "NUL"),
    ("lone surrogate", lambda t, r, s: t.task("s", "bad\udcff"), ArgumentError, "\\udcff"),
    ("negative total_subtasks", lambda t, r, s: t.task("s", "x", total_subtasks=-1), ArgumentError, "-1"),
    ("metadata not a dict", lambda t, r, s: t.task("s", "x", metadata=[1, 2]), ArgumentError, "[1, 2]"),
    ("negative items_total", lambda t, r, s: r.subtask("x", items_total=-5), ArgumentError, "-5"),
    ("huge items_total", lambda t, r, s: r.subtask("x", items_total=10**30), ArgumentError, "10000000000"),
    ("subtask number 0", lambda t, r, s: r.subtask("x", number=0), ArgumentError, "0"),
    ("increment 0", lambda t, r, s: s.increment(0), ArgumentError, "0"),
    ("negative increment", lambda t, r, s: s.increment(-3), ArgumentError, "-3"),
    ("huge increment", lambda t, r, s: s.increment(2**70), ArgumentError, str(2**70)),
    ("percent above 100", lambda t, r, s: s.update(percent=101.5), ArgumentError, "101.5"),
    ("negative percent", lambda t, r, s: s.update(percent=-1), ArgumentError, "-1"),
    ("NaN percent", lambda t, r, s: s.update(percent=math.nan), ArgumentError, "NaN"),
    ("negative items_complete", lambda t, r, s: s.update(items_complete=-1), ArgumentError, "-1"),
    ("NUL in message", lambda t, r, s: s.update(message="a\0"), ArgumentError, "NUL"),
    ("run percent", lambda t, r, s: r.update(overall_percent=200), ArgumentError, "200"),
    ("current_subtask 0", lambda t, r, s: r.update(current_subtask=0), ArgumentError, "0"),
    ("unknown status", lambda t, r, s: r.set_status("DONE"), ArgumentError, "DONE"),
    ("limit 0", lambda t, r, s: t.history(limit=0), ArgumentError, "0"),
    ("negative limit", lambda t, r, s: t.task_status(limit=-2), ArgumentError, "-2"),
    ("status filter", lambda t, r, s: t.task_status(status="FINISHED"), ArgumentError, "FINISHED"),
    ("unknown run", lambda t, r, s: t.run("nope"), NotFoundError, "nope"),
    ("unknown run subtasks", lambda t, r, s: t.subtasks("nope-2"), NotFoundError, "nope-2"),
    ("unknown subtask", lambda t, r, s: r.subtask_increment(99), NotFoundError, "99"),
    ("subtask number in use", lambda t, r, s: r.subtask("again", number=s.number), AlreadyExistsError, "1"),
    ("bad url", lambda t, r, s: tasker.connect("mysql://x/y"), ConfigError, "mysql://x/y"),
    ("missing config file", lambda t, r, s: tasker.connect(config_file="/no/such/file.yml"), ConfigError, "/no/such/file.yml"),
    ("unknown driver", lambda t, r, s: tasker.connect(driver="oracle", path="x"), ConfigError, "oracle"),
    ("task without stage", lambda t, r, s: t.register_tasks([{"name": "x"}]), ArgumentError, "stage"),
    ("task not a mapping", lambda t, r, s: t.register_tasks(["x"]), ArgumentError, "'x'"),
]


@pytest.mark.parametrize("what,call,cls,text", BAD, ids=[b[0] for b in BAD])
def test_bad_arguments(tracker, run, st, what, call, cls, text):
    with pytest.raises(cls) as info:
        call(tracker, run, st)
    assert text in str(info.value), str(info.value)
    if cls is ArgumentError:
        assert isinstance(info.value, ValueError)


def test_wrong_types_are_type_errors(st, run):
    with pytest.raises(TypeError):
        st.increment(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        run.subtask(42)  # type: ignore[arg-type]


def test_invalid_transitions(tracker):
    run = tracker.task("s", "transitions")
    st = run.subtask("x")
    st.complete()
    with pytest.raises(InvalidTransitionError, match="COMPLETED"):
        st.fail("late")
    run.complete()
    with pytest.raises(InvalidTransitionError, match="reset"):
        run.pause()
    with pytest.raises(InvalidTransitionError):
        run.subtask("after the end")


def test_unreachable_database_is_a_storage_error_for_queries(tmp_path, caplog):
    """Tracking goes on while the database cannot be opened (writes are kept), with a
    warning on the "tasker" logger; a query has nothing to answer with and raises."""
    d = tmp_path / "dir-not-file.db"
    d.mkdir()
    t = tasker.connect("sqlite://" + str(d))
    with pytest.raises(StorageError, match="dir-not-file.db"):
        t.history()
    assert any(r.name == "tasker" and r.levelname == "WARNING" for r in caplog.records)


HOSTILE = [
    "Robert'); DROP TABLE runs;--",
    "<script>alert('x')</script>",
    "emoji 🚀 and accents éüñ and 中文",
    "line\nbreaks\r\nand\ttabs",
    "quotes \" ' ` and backslash \\ and %s %d {} ${HOME}",
    "%_ like wildcards _%",
    " leading and trailing spaces ",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_and_messages_are_stored_verbatim(tracker, db_path, text):
    with tracker.task(text, text, message=text, hostile=text) as run:
        with run.subtask(text, message=text) as st:
            st.update(message=text)
        run.update(message=text)
    rec = tracker.run(run.run_id)
    assert (rec.stage_name, rec.task_name) == (text, text)
    assert rec.metadata == {"hostile": text}
    (sub,) = tracker.subtasks(run.run_id)
    assert sub.subtask_name == text and sub.progress_message == text
    assert [r.task_name for r in tracker.history(stage=text, task=text)] == [text]
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_huge_message_and_failure_text(tracker):
    big = "x" * 1_000_000 + "END"
    try:
        with tracker.task("s", "huge") as run:
            raise RuntimeError(big)
    except RuntimeError:
        pass
    rec = tracker.run(run.run_id)
    assert rec.error_message == "RuntimeError: " + big
    assert rec.error_detail.endswith("RuntimeError: " + big + "\n")


def test_huge_bad_value_is_shortened_in_the_message(tracker):
    with pytest.raises(ArgumentError) as info:
        tracker.task("s", "x" * 10_000)
    assert len(str(info.value)) < 1000
