"""`import tasker` stays cheap: modules that cost milliseconds are loaded on first use.

Checked by what a fresh interpreter has loaded, not by timing (the time itself is
measured next to `import json` by bench/python/footprint.py)."""
import subprocess
import sys

# Each costs 3-11 ms at import; none is needed until a query, a callback, a log
# message or a worker process.
DEFERRED = ("dataclasses", "logging", "multiprocessing", "json", "traceback", "inspect", "signal")


def loaded_after(code: str) -> set:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_import_defers_costly_modules():
    loaded = loaded_after("import tasker")
    assert "tasker._tasker" in loaded
    assert not loaded & set(DEFERRED), sorted(loaded & set(DEFERRED))
    assert "tasker._records" not in loaded and "tasker._serve" not in loaded


def test_lazy_names_resolve_and_are_listed():
    import tasker

    for name in ("RunRecord", "Status", "to_pandas", "serve", "Dashboard", "TransitionEvent"):
        assert getattr(tasker, name) is getattr(tasker, name)
        assert name in dir(tasker)
    from tasker import Health, PurgeReport  # noqa: F401  (the `from` form works too)

    assert tasker.Status.RUNNING == "RUNNING"


def test_unknown_attribute_is_an_attribute_error():
    import tasker

    try:
        tasker.no_such_thing
    except AttributeError as e:
        assert "no_such_thing" in str(e)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_tracking_loads_only_what_it_needs():
    # Tracking hooks process exit through multiprocessing (its workers exit with
    # os._exit); the records are never needed by a pipeline that only tracks.
    loaded = loaded_after(
        "import tasker, tempfile, os\n"
        "d = tempfile.mkdtemp()\n"
        "t = tasker.connect('sqlite://' + os.path.join(d, 't.db'))\n"
        "with t.task('s', 't') as run:\n"
        "    with run.subtask('a', items_total=3) as st:\n"
        "        st.increment(3)\n"
        "t.flush()"
    )
    assert "multiprocessing.util" in loaded
    assert "tasker._records" not in loaded and "dataclasses" not in loaded
