"""The dashboard from Python (tasker.serve) and the command line from Python (python -m
tasker): the same Rust server and commands as the `tasker` binary."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

import tasker


def get(url, token=None):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_serve_starts_and_stops_twice(tracker):
    with tracker.task("dash", "watched") as run:
        for _ in range(2):
            d = tasker.serve(port=0, tracker=tracker, open_browser=False)
            assert d.url.startswith("http://127.0.0.1:") and d.running
            status, body = get(d.url + "healthz")
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert json.loads(body)["version"] == tasker.__version__
            _, body = get(d.url + "api/v1/status")
            assert run.run_id in {t["run_id"] for t in json.loads(body)["tasks"]}
            assert d.url in d._repr_html_() and "<a href=" in d._repr_html_()
            d.stop()
            assert not d.running
            with pytest.raises(OSError):
                urllib.request.urlopen(d.url + "healthz", timeout=5)
            d.stop()  # twice: nothing happens
        with tasker.serve(port=0, tracker=tracker, open_browser=False) as d:
            assert get(d.url + "healthz")[0] == 200
        assert not d.running and "stopped" in repr(d)


def test_serve_refuses_a_public_address_as_the_command_does(tracker, db_path, monkeypatch):
    monkeypatch.delenv("TASKER_SERVE_TOKEN", raising=False)
    with pytest.raises(tasker.ArgumentError) as e:
        tasker.serve(port=0, host="0.0.0.0", tracker=tracker, open_browser=False)
    cli = subprocess.run(
        [sys.executable, "-m", "tasker", "--db", db_path, "serve", "--bind", "0.0.0.0:0"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "TASKER_SERVE_TOKEN"},
    )
    assert cli.returncode == 2
    # The same check and the same words: the server's, in the core.
    assert cli.stderr.strip() == f"tasker: {e.value}"
    assert "refusing" in str(e.value) and "0.0.0.0:0" in str(e.value)

    with tasker.serve(port=0, host="0.0.0.0", token="s3cret-token-0123456789", tracker=tracker, open_browser=False) as d:
        port = d.url.rstrip("/").rsplit(":", 1)[1]
        local = f"http://127.0.0.1:{port}/"
        assert get(local + "api/v1/status")[0] == 401
        assert get(local + "api/v1/status", token="s3cret-token-0123456789")[0] == 200
    with pytest.raises(tasker.ArgumentError, match="port"):
        tasker.serve(port=70000, tracker=tracker, open_browser=False)
    with pytest.raises(tasker.ArgumentError, match="token"):
        tasker.serve(port=0, token="", tracker=tracker, open_browser=False)


def test_the_command_line_runs_from_the_package(tracker, db_path):
    with tracker.task("cli", "from python"):
        pass
    tracker.flush()
    out = subprocess.run(
        [sys.executable, "-m", "tasker", "--db", db_path, "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [v["task_name"] for v in json.loads(out.stdout)] == ["from python"]
    version = subprocess.run([sys.executable, "-m", "tasker", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"tasker {tasker.__version__}"
    from tasker.__main__ import main

    assert main(["--db", db_path, "status", "--status", "NOT_A_STATUS"]) == 2
