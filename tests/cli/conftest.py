"""Fixtures for the `tasker serve` tests: the binaries, a populated database,
servers on free ports, and runs driven from other processes (tasker-fixture)."""

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
TASKER = TARGET / "debug" / "tasker"
FIXTURE = TARGET / "debug" / "examples" / "tasker-fixture"


def _need(p: Path) -> Path:
    if not p.exists():
        pytest.fail(f"{p} is missing: run `cargo build -p tasker-cli --examples` first")
    return p


@pytest.fixture
def db(tmp_path):
    """A database written by the example pipeline (another process)."""
    path = tmp_path / "tasker.db"
    subprocess.run([_need(FIXTURE), "populate", f"sqlite://{path}"], check=True)
    return path


class Server:
    # ssl_context: for an https:// server (--tls-cert), the context that trusts its certificate.
    def __init__(self, db, *args, env=None, bind="127.0.0.1:0", ssl_context=None):
        self.ssl_context = ssl_context
        self.proc = subprocess.Popen(
            [_need(TASKER), "--db", str(db), "serve", "--bind", bind, "--poll-ms", "200", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline()
        m = re.search(r"(https?)://([0-9.]+:\d+)/", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"serve did not start: {line!r} {self.proc.stderr.read()}")
        self.url = f"{m.group(1)}://{m.group(2)}".replace("//0.0.0.0:", "//127.0.0.1:")

    def get(self, path, headers=None):
        """(status, headers, body) of a GET."""
        req = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ssl_context) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def json(self, path, headers=None):
        status, _, body = self.get(path, headers)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def serve():
    servers = []

    def start(db, *args, env=None, bind="127.0.0.1:0", ssl_context=None):
        s = Server(db, *args, env=env, bind=bind, ssl_context=ssl_context)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


class Run:
    """A run held open by a tasker-fixture process until `finish()`."""

    def __init__(self, db, stage, task, items, env=None):
        self.db = db
        self.proc = subprocess.Popen(
            [_need(FIXTURE), "start", f"sqlite://{db}", stage, task, str(items)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        started = json.loads(self.proc.stdout.readline())
        self.run_id = started["run_id"]
        self.subtask = started["subtask"]

    def increment(self, n):
        """Adds n items from a third process."""
        subprocess.run(
            [FIXTURE, "increment", f"sqlite://{self.db}", self.run_id, str(self.subtask), str(n)],
            check=True,
        )

    def finish(self, how="complete"):
        if self.proc.poll() is None:
            self.proc.communicate(how + "\n", timeout=30)


@pytest.fixture
def runs():
    started = []

    def start(db, stage, task, items=100, env=None):
        r = Run(db, stage, task, items, env=env)
        started.append(r)
        return r

    yield start
    for r in started:
        try:
            r.finish()
        except Exception:
            r.proc.kill()


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last value {last!r})")
