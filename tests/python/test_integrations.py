"""tasker.tqdm, notebook HTML (_repr_html_) and what `import tasker` leaves unloaded."""
import difflib
import fcntl
import html.parser
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap

import pytest

import tasker

HOSTILE = "<script>alert('x')</script> & \"quoted\" <b>bold</b>"


# ---------------------------------------------------------------------------
# import cost


def test_import_tasker_loads_no_integration_module():
    code = (
        "import sys, tasker\n"
        "print(sorted(m for m in ('tqdm', 'html', 'html.parser', 'tasker._tqdm', 'tasker._html',"
        " 'tasker._logging') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------------------
# tasker.tqdm

try:
    import tqdm as tqdm_module
except ImportError:  # scripts/requirements-test.txt installs it: its absence is a failure
    tqdm_module = None


def _need_tqdm():
    if tqdm_module is None:
        pytest.fail("tqdm is not installed (scripts/requirements-test.txt installs it)")


def test_tqdm_is_a_tqdm_and_counts_into_a_subtask(tracker):
    _need_tqdm()
    out = io.StringIO()
    with tracker.task("tq", "iter") as run:
        bar = tasker.tqdm(range(1234), desc="rows", file=out)
        assert isinstance(bar, tqdm_module.tqdm)
        total = sum(1 for _ in bar)
    assert total == 1234
    (st,) = run.subtasks()
    assert (st.subtask_name, st.items_total, st.items_complete, st.status.value) == (
        "rows", 1234, 1234, "COMPLETED")
    assert "1234/1234" in out.getvalue()


def test_tqdm_manual_updates_disabled_bars_and_names(tracker):
    _need_tqdm()
    with tracker.task("tq", "manual") as run:
        with tasker.tqdm(total=100, file=io.StringIO(), name="chunks") as bar:
            for _ in range(10):
                bar.update(7)
        # A disabled bar draws nothing but still counts.
        for _ in tasker.tqdm(range(25), disable=True, desc="hidden"):
            pass
        with tasker.tqdm(total=10, disable=True, desc="hidden manual") as bar:
            bar.update(4)
            bar.update(6)
        # Outside any run it is just tqdm.
    st = {s.subtask_name: s for s in run.subtasks()}
    assert st["chunks"].items_complete == 70 and st["chunks"].items_total == 100
    assert st["chunks"].status.value == "COMPLETED"
    assert st["hidden"].items_complete == 25 and st["hidden"].status.value == "COMPLETED"
    assert st["hidden manual"].items_complete == 10
    assert list(tasker.tqdm(range(3), file=io.StringIO())) == [0, 1, 2]


def test_tqdm_failures(tracker):
    _need_tqdm()

    def broken():
        yield 1
        yield 2
        raise ValueError("source broke")

    with pytest.raises(ValueError):
        with tracker.task("tq", "fail") as run:
            for _ in tasker.tqdm(broken(), desc="broken", file=io.StringIO()):
                pass
    (st,) = run.subtasks()
    assert st.status.value == "FAILED" and st.items_complete == 2
    assert "source broke" in st.error_message

    # The loop body raises: the run's `with` fails the subtask with that exception.
    with pytest.raises(KeyError):
        with tracker.task("tq", "body") as run2:
            for i in tasker.tqdm(range(10), desc="body", file=io.StringIO()):
                if i == 3:
                    raise KeyError("body broke")
    (st,) = run2.subtasks()
    assert st.status.value == "FAILED" and st.items_complete == 3
    assert "body broke" in st.error_message

    # A with-block that raises fails the subtask.
    with pytest.raises(RuntimeError):
        with tracker.task("tq", "with") as run3:
            with tasker.tqdm(total=5, file=io.StringIO(), desc="manual") as bar:
                bar.update(2)
                raise RuntimeError("manual broke")
    (st,) = run3.subtasks()
    assert st.status.value == "FAILED" and st.items_complete == 2


_PTY_CHILD = textwrap.dedent(
    """
    import sys, time
    import tqdm as T
    import tasker
    kind, out, extra = sys.argv[1], sys.argv[2], sys.argv[3]
    cls = tasker.tqdm if kind == "tasker" else T.tqdm
    # "every": a redraw per item and a bar of fixed width (by default the bar takes what
    # the rate's text leaves of the line, and rates differ from run to run).
    bar_format = "{l_bar}{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
    kwargs = dict(mininterval=0, miniters=1, bar_format=bar_format) if extra == "every" else {}
    with tasker.task("pty", kind) as run:
        for i in cls(range(40), desc="pty items", **kwargs):
            time.sleep(0.001)
    with open(out, "w") as f:
        f.write(run.run_id)
    # Linux may drop what the terminal still holds when the child exits: say the output
    # is complete, then wait for the reader to answer.
    sys.stderr.write("\\nEND-OF-OUTPUT\\n")
    sys.stderr.flush()
    sys.stdin.readline()
    """
)


def _run_on_pty(script, args, env):
    master, slave = pty.openpty()
    # A terminal of 24 x 80: tqdm hides bars below a screen of height 0.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, script, *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    buf = b""
    while b"END-OF-OUTPUT" not in buf:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal early
            break
        if not data:
            break
        buf += data
    os.write(master, b"\n")
    try:
        assert proc.wait(timeout=60) == 0, buf.decode(errors="replace")
    finally:
        os.close(master)
    assert b"END-OF-OUTPUT" in buf, buf.decode(errors="replace")
    return buf.decode().split("END-OF-OUTPUT")[0]


def _frames(text):
    # Times and rates differ from run to run; everything else must match.
    text = re.sub(r"\[[0-9:]+<[0-9:?]+, *[^\]]*\]", "[T]", text)
    text = re.sub(r"\[[0-9:]+, *[^\]]*\]", "[T]", text)
    return [f for f in re.split(r"[\r\n]+", text) if f.strip()]


@pytest.mark.parametrize("extra", ["every", "defaults"])
def test_tqdm_on_a_terminal_draws_what_tqdm_draws_and_tracks(tmp_path, extra):
    _need_tqdm()
    script = tmp_path / "child.py"
    script.write_text(_PTY_CHILD)
    env = dict(os.environ, TASKER_DB_URL="sqlite://" + str(tmp_path / "pty.db"))
    plain = _run_on_pty(str(script), ["plain", str(tmp_path / "plain.id"), extra], env)
    ours = _run_on_pty(str(script), ["tasker", str(tmp_path / "tasker.id"), extra], env)
    fp, fo = _frames(plain), _frames(ours)
    if extra == "defaults":  # the bar's width follows the rate's text: compare the rest
        fp, fo = ([re.sub(r"\|[^|]*\|", "|BAR|", f) for f in x] for x in (fp, fo))
    assert fo and fo[-1] == fp[-1], (plain, ours)
    assert "pty items: 100%" in fo[-1] and "40/40" in fo[-1]
    if extra == "every":
        assert fo == fp, "\n".join(difflib.unified_diff(fp, fo, lineterm=""))  # frame for frame
    t = tasker.connect(env["TASKER_DB_URL"])
    try:
        subs = t.subtasks((tmp_path / "tasker.id").read_text())
        assert [(s.subtask_name, s.items_complete, s.items_total, s.status.value) for s in subs] == [
            ("pty items", 40, 40, "COMPLETED")]
        assert t.subtasks((tmp_path / "plain.id").read_text()) == []
    finally:
        t.close()


def test_tqdm_without_tqdm_is_a_tracking_iterator(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        sys.modules["tqdm"] = None  # as if it were not installed
        import tasker
        from tasker import _tqdm
        assert not _tqdm.HAVE_TQDM
        with tasker.task("no", "tqdm") as run:
            out = [i * 2 for i in tasker.tqdm(range(30), desc="plain", mininterval=1)]
            with tasker.tqdm(total=8, desc="manual") as bar:
                bar.update(3); bar.update(5)
        assert out == [i * 2 for i in range(30)]
        print(sorted((s.subtask_name, s.items_complete, s.status.value) for s in run.subtasks()))
        """
    )
    env = dict(os.environ, TASKER_DB_URL="sqlite://" + str(tmp_path / "no.db"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[('manual', 8, 'COMPLETED'), ('plain', 30, 'COMPLETED')]"
    assert r.stderr == ""


# ---------------------------------------------------------------------------
# notebook HTML


class _Doc(html.parser.HTMLParser):
    """The tags, text and <progress> values of an HTML fragment."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.text = []
        self.progress = []
        self.rows = 0
        self.open = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "progress":
            self.progress.append(float(dict(attrs)["value"]))
        if tag == "tr":
            self.rows += 1
        if tag not in ("progress",):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag == "progress":
            return
        assert self.open and self.open[-1] == tag, (self.open, tag)
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_notebook_html_of_runs_records_and_query_results(tracker):
    with tracker.task("nb", HOSTILE, total_subtasks=2) as run:
        with run.subtask("first " + HOSTILE, items_total=4) as st:
            st.increment(4)
        st2 = run.subtask("second", items_total=10)
        st2.increment(3)
        st2.update(message=HOSTILE)
        tracker.flush()

        doc = _Doc(run._repr_html_())
        assert "script" not in doc.tags and "b" not in doc.tags
        text = "".join(doc.text)
        assert HOSTILE in text and "first " + HOSTILE in text
        assert doc.progress == [65.0, 100.0, 30.0]  # the run (mean of its subtasks), then each subtask
        assert doc.open == []  # every element closed

        subs = run.subtasks()
        assert isinstance(subs, list) and subs == list(subs)
        d = _Doc(subs._repr_html_())
        assert d.rows == 3 and d.progress == [100.0, 30.0] and "b" not in d.tags
        assert "4/4" in "".join(d.text) and "3/10" in "".join(d.text)

        one = _Doc(subs[1]._repr_html_())
        assert one.rows == 2 and one.progress == [30.0]

    status = tasker.get_task_status(tracker=tracker)
    d = _Doc(status._repr_html_())
    assert d.rows == 2 and "script" not in d.tags and HOSTILE in "".join(d.text)
    assert "COMPLETED" in "".join(d.text)

    # Records without a chosen layout list every field; an empty result says so.
    d = _Doc(tracker.stages()._repr_html_())
    assert d.rows == 2 and "stage_name" in "".join(d.text)
    assert "no records" in _Doc(tasker.get_active_tasks(tracker=tracker)._repr_html_()).text[0]


def test_query_results_stay_plain_lists(tracker):
    import pickle

    with tracker.task("nb", "pickle") as run:
        pass
    rows = tracker.history()
    assert rows == [r for r in rows] and type(rows).__mro__[1] is list
    assert pickle.loads(pickle.dumps(rows)) == rows
    assert run.record()._repr_html_().startswith("<table")


# ---------------------------------------------------------------------------
# logging


def test_logging_records_arrive_with_levels_and_tracebacks(tracker):
    import logging

    log = logging.getLogger("etl.load")
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    with tasker.capture_logging() as handler:
        assert handler in root.handlers and root.level == logging.INFO
        assert tasker.capture_logging() is handler  # once per logger
        log.info("outside any run: dropped")
        with tracker.task("logging", "records") as run:
            log.debug("below the level: dropped")
            log.info("loaded %d rows from %s", 12, HOSTILE)
            log.warning("slow")
            try:
                {}["missing"]
            except KeyError:
                log.exception("lookup failed")
            log.critical("stack", stack_info=True)
    assert (root.level, list(root.handlers)) == before  # uninstalled, level given back
    tracker.flush()
    lines = tracker.run_logs(run.run_id)
    assert [(r.level, r.message.splitlines()[0]) for r in lines] == [
        ("info", f"etl.load: loaded 12 rows from {HOSTILE}"),
        ("warn", "etl.load: slow"),
        ("error", "etl.load: lookup failed"),
        ("error", "etl.load: stack"),
    ]
    tb = lines[2].message
    assert "Traceback (most recent call last):" in tb and "KeyError: 'missing'" in tb
    assert "{}[\"missing\"]" in tb  # the source line of the frame
    assert "Stack (most recent call last):" in lines[3].message


def test_log_handler_for_one_run_and_one_logger(tracker):
    import logging

    with tracker.task("logging", "explicit") as run:
        pass
    other = tracker.task("logging", "other")
    lg = logging.getLogger("tasker-test.explicit")
    lg.propagate = False
    try:
        h = tasker.LogHandler(logging.DEBUG, run=other, fmt="[%(levelname)s] %(message)s")
        h.install(lg)
        with tracker.task("logging", "current"):
            lg.debug("to the handler's run, not the current one")
        h.uninstall()
        lg.error("after uninstall: dropped")
        # Lines for a finished run: whatever the run says, never an error in the program.
        h2 = tasker.LogHandler(run=run).install(lg)
        lg.error("to a finished run")
        h2.uninstall()
    finally:
        lg.propagate = True
    other.complete()
    assert [(r.level, r.message) for r in tracker.run_logs(other.run_id)] == [
        ("debug", "[DEBUG] to the handler's run, not the current one")]
    with pytest.raises(ValueError):
        tasker.LogHandler("LOUD")


def test_logging_from_threads_keeps_every_line(tracker):
    import logging
    import threading

    lg = logging.getLogger("tasker-test.threads")
    with tracker.task("logging", "threads") as run, tasker.capture_logging(logger=lg, run=run):
        def work(k):
            for i in range(200):
                lg.info("t%d line %d", k, i)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = [r.message for r in tracker.run_logs(run.run_id)]
    assert len(lines) == 800
    for k in range(4):  # in order per thread
        mine = [m for m in lines if m.startswith(f"tasker-test.threads: t{k} ")]
        assert mine == [f"tasker-test.threads: t{k} line {i}" for i in range(200)]
