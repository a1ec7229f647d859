"""The CLI and `tasker serve` on PostgreSQL (the synchronous client must never run on
a tokio worker thread). Runs when TASKER_PG_URI names a server (scripts/test-cli.sh
starts a throwaway one with tests/pg.sh when PostgreSQL is installed)."""

import json
import os
import signal
import subprocess
import urllib.request
import uuid

import pytest

from conftest import FIXTURE, TASKER, Server, wait_for

PG = os.environ.get("TASKER_PG_URI")
pytestmark = pytest.mark.skipif(not PG, reason="TASKER_PG_URI is not set (no PostgreSQL server)")


@pytest.fixture
def pg_url():
    # A schema of its own, so the test starts from an empty database.
    sep = "&" if "?" in PG else "?"
    return f"{PG}{sep}schema=cli_{uuid.uuid4().hex[:10]}"


def test_cli_and_serve_on_postgresql(pg_url):
    subprocess.run([FIXTURE, "populate", pg_url], check=True)
    rows = json.loads(subprocess.run([TASKER, "--db", pg_url, "status", "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    assert {r["task_name"]: r["status"] for r in rows}["validate"] == "FAILED"

    server = Server(pg_url)
    try:
        h = server.json("/healthz")
        assert h["backend"] == "postgresql" and h["reachable"] is True
        run = subprocess.Popen([FIXTURE, "start", pg_url, "model", "score", "20"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        started = json.loads(run.stdout.readline())
        subprocess.run([FIXTURE, "increment", pg_url, started["run_id"], "1", "5"], check=True)

        def items():
            active = server.json("/api/v1/status")["active"]
            mine = [a for a in active if a["run_id"] == started["run_id"]]
            return mine and mine[0]["subtasks"][0]["items_complete"] == 5

        wait_for(items, what="the increment on PostgreSQL")
        assert "tasker_runs{" in server.get("/metrics")[2]
        run.communicate("complete\n", timeout=30)
        # SIGTERM with a live stream open: the server ends the stream and exits cleanly.
        stream = urllib.request.urlopen(server.url + "/api/v1/stream", timeout=10)
        stream.readline()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
        err = server.proc.stderr.read()
        assert "panic" not in err, err
        stream.close()
    finally:
        server.stop()
