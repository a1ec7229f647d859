"""Run logs from the command line, the JSON API and the dashboard: lines
logged by other processes (tasker-fixture), `tasker logs -f` in a pseudo
terminal seeing a new line within a second, Ctrl-C and a closed pipe ending
it quietly, control characters and markup shown inert everywhere."""

import json
import os
import pty
import select
import signal
import subprocess
import time

import pytest

from conftest import FIXTURE, TASKER, wait_for, _need

HOSTILE = "<script>alert(1)</script><b>bold</b> \x1b[2J\x1b]0;pwned\x07 end"


def log(db, run_id, level, message):
    subprocess.run([_need(FIXTURE), "log", f"sqlite://{db}", run_id, level, message], check=True)


def tasker(db, *args):
    return subprocess.run([_need(TASKER), "--db", str(db), *args], capture_output=True, text=True, timeout=60)


def test_logs_prints_lines_with_levels_and_control_characters_escaped(db, runs):
    r = runs(db, "logs", "printed")
    log(db, r.run_id, "info", "first")
    log(db, r.run_id, "warn", "second\nwith a second line")
    log(db, r.run_id, "ERROR", HOSTILE)
    out = tasker(db, "logs", r.run_id)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    lines = out.stdout.splitlines()
    assert [ln.split()[2] for ln in lines if not ln.startswith("    ")] == ["INFO", "WARN", "ERROR"]
    assert "    with a second line" in lines
    assert "\\x1b[2J\\x1b]0;pwned\\x07 end" in out.stdout
    assert "<script>alert(1)</script>" in out.stdout  # a terminal shows markup as text
    errors = tasker(db, "logs", r.run_id, "--level", "error", "--json")
    rows = [json.loads(x) for x in errors.stdout.splitlines()]
    assert [x["message"] for x in rows] == [HOSTILE]
    assert tasker(db, "logs", r.run_id, "-n", "1").stdout.count("\n") == 1
    bad = tasker(db, "logs", r.run_id, "--level", "loud")
    assert bad.returncode == 2 and "loud" in bad.stderr
    missing = tasker(db, "logs", "no-such-run")
    assert missing.returncode == 1 and "no-such-run" in missing.stderr


def read_until(fd, needle, timeout):
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                buf += os.read(fd, 65536)
            except OSError:
                break
    return buf


def test_follow_shows_a_line_from_another_process_within_a_second(db, runs):
    r = runs(db, "logs", "followed")
    log(db, r.run_id, "info", "before following")
    pid, fd = pty.fork()
    if pid == 0:  # the child: `tasker logs -f` on a terminal
        os.execv(str(TASKER), [str(TASKER), "--db", str(db), "logs", r.run_id, "-f"])
    try:
        assert b"before following" in read_until(fd, b"before following", 15)
        for i in range(3):
            log(db, r.run_id, "warn", f"from another process {i}")
            written = time.monotonic()  # the fixture exits after its line is stored
            seen = read_until(fd, f"another process {i}".encode(), 5)
            took = time.monotonic() - written
            assert f"another process {i}".encode() in seen, seen
            assert took < 1.0, f"line {i} shown {took:.2f} s after it was written"
        os.kill(pid, signal.SIGINT)  # Ctrl-C
        rest = read_until(fd, b"\0never", 2)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) in (0, 130), status
        assert b"panicked" not in rest and b"Error" not in rest, rest
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(fd)


def test_follow_ends_quietly_when_its_reader_goes_away(db, runs):
    r = runs(db, "logs", "piped")
    log(db, r.run_id, "info", "one")
    p = subprocess.Popen([TASKER, "--db", str(db), "logs", r.run_id, "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert b"one" in p.stdout.readline()
    p.stdout.close()  # like `| head -1`
    log(db, r.run_id, "info", "two")
    p.wait(timeout=10)
    assert p.stderr.read() == b""


def test_show_failed_items_lists_keys_and_errors(db, runs):
    r = runs(db, "logs", "items")
    for county in ["Adams", "Baker <i>x</i>"]:
        subprocess.run([FIXTURE, "item-failed", f"sqlite://{db}", r.run_id, str(r.subtask), county,
                        "timeout\x1b[31m"], check=True)
    out = tasker(db, "show", r.run_id, "--failed-items")
    assert out.returncode == 0, out.stderr
    assert f"subtask {r.subtask}: 2 failed" in out.stdout
    assert "Adams" in out.stdout and "Baker <i>x</i>" in out.stdout and "\x1b" not in out.stdout
    data = json.loads(tasker(db, "show", r.run_id, "--failed-items", "--json").stdout)
    assert data["counts"][0]["total"] == 2
    assert [x["item_key"] for x in data["items"]] == ["Adams", "Baker <i>x</i>"]


def test_the_json_api_pages_a_run_s_lines_by_id(db, runs, serve):
    r = runs(db, "logs", "api")
    for i in range(5):
        log(db, r.run_id, "info" if i % 2 else "error", f"line {i}")
    s = serve(db)
    rows = s.json(f"/api/v1/runs/{r.run_id}/logs")
    assert [x["message"] for x in rows] == [f"line {i}" for i in range(5)]
    after = s.json(f"/api/v1/runs/{r.run_id}/logs?after={rows[1]['log_id']}&level=error")
    assert [x["message"] for x in after] == ["line 2", "line 4"]
    status, _, body = s.get(f"/api/v1/runs/{r.run_id}/logs?level=loud")
    assert status == 400 and "loud" in body
    status, _, _ = s.get("/api/v1/runs/no-such-run/logs")
    assert status == 404
    items = s.json(f"/api/v1/runs/{r.run_id}/items")
    assert items == {"counts": [], "items": []}
