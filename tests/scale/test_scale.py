"""Many tracked processes on one PostgreSQL server with few connections.

The server (tests/pg.sh) has max_connections = 20; PgBouncer (tests/pgbouncer.sh)
runs in transaction mode with a pool of 10 server connections. 200 processes --
C, Python and R, on 10 simulated hosts -- each run one task with 3 subtasks of
100 increments:

- through PgBouncer: every total exact, every transition stored, no warning, no
  call raising;
- through PgBouncer with the server restarted in the middle: the same, after the
  outage replays;
- straight to the server (20 slots for 200 processes): the processes wait and
  retry (their writes kept meanwhile), say the server has no slot left and name
  the pooler, and in the end every write is stored -- never a crash, never a lost
  write.

Run by scripts/test-scale.sh. TASKER_SCALE_PROCS changes the number of processes.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tasker

HERE = Path(__file__).resolve().parent
PROCS = int(os.environ.get("TASKER_SCALE_PROCS", "200"))

pytestmark = pytest.mark.skipif(
    "TASKER_BOUNCER_URI" not in os.environ, reason="needs tests/pg.sh and tests/pgbouncer.sh"
)


def command(i: int) -> list:
    if i % 10 == 0:
        return ["Rscript", str(HERE / "worker.R")]
    if i % 10 in (1, 4, 7):
        return [sys.executable, str(HERE / "worker.py")]
    return [os.environ["TASKER_SCALE_C_WORKER"]]


def pg_ctl(*args: str) -> None:
    cmd = [os.path.join(os.environ["PG_BIN"], "pg_ctl"), "-D", os.path.join(os.environ["TASKER_PG_DIR"], "data"), *args]
    if os.environ.get("TASKER_PG_RUNAS"):
        cmd = ["runuser", "-u", os.environ["TASKER_PG_RUNAS"], "--", *cmd]
    subprocess.run(cmd, check=True, cwd=os.environ["TASKER_PG_DIR"], stdout=subprocess.DEVNULL)


def fleet(url: str, prefix: str, state: Path, during=None) -> list:
    """Starts PROCS tracked processes at once and waits for all of them."""
    procs = []
    for i in range(PROCS):
        env = dict(
            os.environ,
            TASKER_DB_URL=url,
            TASKER_HOSTNAME=f"host-{i % 10}",
            TASKER_TEST_TASK=f"{prefix}-{i:04d}",
            TASKER_TEST_WORK_MS="800",
            XDG_STATE_HOME=str(state),
        )
        procs.append((i, subprocess.Popen(command(i), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    if during is not None:
        during()
    results = []
    for i, p in procs:
        out, err = p.communicate(timeout=600)
        results.append((i, p.returncode, out, err))
    return results


def verify(url: str, prefix: str, state: Path) -> None:
    # The next tasker process on this host replays what exited processes left.
    subprocess.run([sys.executable, "-c", "import sys, tasker; tasker.connect(sys.argv[1]).close()", url],
                   env=dict(os.environ, XDG_STATE_HOME=str(state)), check=True, timeout=300)
    t = tasker.connect(url)
    runs = [r for r in t.history(stage="scale", limit=100_000) if r.task_name.startswith(prefix + "-")]
    assert sorted(r.task_name for r in runs) == sorted(f"{prefix}-{i:04d}" for i in range(PROCS)), "one run per process"
    assert {r.hostname for r in runs} == {f"host-{h}" for h in range(10)}
    for r in runs:
        assert r.status == "COMPLETED", (r.task_name, r.status)
        subs = t.subtasks(r.run_id)
        assert [(s.subtask_name, s.status, s.items_complete) for s in subs] == [
            (f"part {k}", "COMPLETED", 100) for k in range(3)
        ], r.task_name
        kinds = [(e.subtask_number, e.new_status) for e in t.events(run_id=r.run_id, limit=100)]
        assert kinds.count((None, "COMPLETED")) == 1, (r.task_name, kinds)
        assert sum(1 for n, s in kinds if n is not None and s == "COMPLETED") == 3, (r.task_name, kinds)
    left = list((state / "tasker" / "spool").glob("*.jsonl")) if (state / "tasker" / "spool").exists() else []
    assert left == [], left


def schema_url(base: str, name: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}schema={name}_{os.getpid()}"


def failures(results: list) -> list:
    return [(i, rc, err[-1500:]) for i, rc, out, err in results if rc != 0 or "DONE" not in out]


def test_two_hundred_processes_through_pgbouncer(tmp_path):
    url = schema_url(os.environ["TASKER_BOUNCER_URI"], "scale")
    results = fleet(url, "pooled", tmp_path / "state")
    assert failures(results) == []
    noisy = [(i, err) for i, rc, out, err in results if "cannot write" in err or "error" in err.lower()]
    assert noisy == [], noisy[:3]
    verify(url, "pooled", tmp_path / "state")


def test_two_hundred_processes_through_pgbouncer_with_a_server_restart(tmp_path):
    url = schema_url(os.environ["TASKER_BOUNCER_URI"], "restart")
    tasker.connect(url)  # the schema exists before the server goes away

    def restart() -> None:
        time.sleep(1.5)
        pg_ctl("restart", "-m", "fast", "-w", "-t", "60", "-l", os.path.join(os.environ["TASKER_PG_DIR"], "server.log"),
               "-o", os.environ["TASKER_PG_OPTS"])

    results = fleet(url, "restart", tmp_path / "state", during=restart)
    assert failures(results) == []
    verify(url, "restart", tmp_path / "state")


def test_two_hundred_processes_straight_to_a_server_with_twenty_slots(tmp_path):
    url = schema_url(os.environ["TASKER_PG_URI"], "direct")
    tasker.connect(url)
    results = fleet(url, "direct", tmp_path / "state")
    assert failures(results) == [], "a process crashed or a call raised"
    told = [err for i, rc, out, err in results if "no connection slot left" in err]
    if told:  # when the server was full, the warning names the cure
        assert all("pooler" in err for err in told)
    print(f"{len(told)} of {PROCS} processes found the server full and were told about the pooler")
    verify(url, "direct", tmp_path / "state")
