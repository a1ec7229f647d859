"""Eight processes in three languages (3 C, 3 Python, 2 R) log on one run while
the PostgreSQL server is stopped for a few seconds and started again. Every
line of every process is stored exactly once, in the order each process logged
it, with its process id; the same on SQLite without an outage. A run's bound
with its drop marker is checked by the core's tests (core/tests/run_logs.rs).

Run by scripts/test-outage.sh (the throwaway server, the C worker, the Python and
R packages)."""
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

import tasker

HERE = Path(__file__).resolve().parent
LINES = 300  # per process, 10 ms apart: each process logs through the 2.5 s outage

PY_WORKER = """
import os, time, tasker
t = tasker.connect()
run = t.attach(os.environ["TASKER_TEST_RUN"])
tag = os.environ["TASKER_TEST_TAG"]
for i in range(int(os.environ["TASKER_TEST_LINES"])):
    run.log("warn" if i % 7 == 0 else "info", f"{tag} {i}")
    if i == 0:
        print("READY", flush=True)
    time.sleep(0.01)
t.close()
print("DONE")
"""

R_WORKER = """
library(tasker)
run_id <- Sys.getenv("TASKER_TEST_RUN")
tag <- Sys.getenv("TASKER_TEST_TAG")
for (i in seq_len(as.integer(Sys.getenv("TASKER_TEST_LINES"))) - 1L) {
  tasker_log(sprintf("%s %d", tag, i), level = if (i %% 7L == 0L) "warn" else "info", run_id = run_id)
  if (i == 0L) { cat("READY\n"); flush(stdout()) }
  Sys.sleep(0.01)
}
tasker_flush()
cat("DONE\\n")
"""


def pg_ctl(*args):
    cmd = [os.path.join(os.environ["PG_BIN"], "pg_ctl"), "-D", os.path.join(os.environ["TASKER_PG_DIR"], "data"), *args]
    if os.environ.get("TASKER_PG_RUNAS"):
        cmd = ["runuser", "-u", os.environ["TASKER_PG_RUNAS"], "--", *cmd]
    subprocess.run(cmd, check=True, cwd=os.environ["TASKER_PG_DIR"], stdout=subprocess.DEVNULL)


def spawn_all(env):
    c = os.environ.get("TASKER_OUTAGE_C_LOG_WORKER")
    if not c:
        pytest.fail("TASKER_OUTAGE_C_LOG_WORKER is not set (scripts/test-outage.sh builds it)")
    argv = {"c": [c], "py": [sys.executable, "-c", PY_WORKER], "r": ["Rscript", "-e", R_WORKER]}
    procs = {}
    for kind, n in [("c", 3), ("py", 3), ("r", 2)]:
        for k in range(n):
            tag = f"{kind}{k}"
            procs[tag] = subprocess.Popen(argv[kind], env=dict(env, TASKER_TEST_TAG=tag), text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return procs


def finish_all(procs):
    for tag, p in procs.items():
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0 and "DONE" in out, f"{tag} failed:\n{out[-2000:]}\n{err[-4000:]}"


def read_when_back(f, timeout=30.0):
    """A query on a connection the restart closed fails once (the tracker then
    reconnects in the background): ask again until the answer comes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return f()
        except tasker.StorageError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def check_lines(t, run_id, tags):
    rows = read_when_back(lambda: t.run_logs(run_id))
    assert not any(r.dropped_lines for r in rows), "no line may be dropped below the bound"
    per = defaultdict(list)
    pids = defaultdict(set)
    for r in rows:
        tag, i = r.message.split()
        per[tag].append(int(i))
        pids[tag].add(r.process_id)
        assert r.level == ("warn" if int(i) % 7 == 0 else "info"), r
    assert sorted(per) == sorted(tags)
    for tag in tags:
        assert per[tag] == list(range(LINES)), f"{tag}: lines missing, repeated or out of order"
        assert len(pids[tag]) == 1, (tag, pids[tag])
    assert len({next(iter(p)) for p in pids.values()}) == len(tags), "one process id per worker"
    return len(rows)


def run_scenario(url, tmp_path, outage):
    state = tmp_path / "state"
    env = dict(os.environ, TASKER_DB_URL=url, XDG_STATE_HOME=str(state), TASKER_TEST_LINES=str(LINES))
    owner = tasker.connect(url)
    run = owner.task("logs", "eight processes")
    env["TASKER_TEST_RUN"] = run.run_id
    procs = spawn_all(env)
    if outage:
        # Every worker has attached the run (a read) and logged its first line.
        for tag, p in procs.items():
            assert p.stdout.readline().strip() == "READY", f"{tag} did not start"
        pg_ctl("stop", "-m", "fast", "-w")
        time.sleep(2.5)
        pg_ctl("start", "-w", "-t", "60", "-l", os.path.join(os.environ["TASKER_PG_DIR"], "server.log"),
               "-o", os.environ["TASKER_PG_OPTS"])
    finish_all(procs)
    # The next tasker process on this host replays what is left in spool files.
    subprocess.run([sys.executable, "-c", "import sys, tasker; tasker.connect(sys.argv[1]).close()", url],
                   env=env, check=True, timeout=120)
    n = check_lines(owner, run.run_id, list(procs))
    run.complete()
    owner.close()
    return n


def test_eight_processes_in_three_languages_log_on_one_run_sqlite(tmp_path):
    n = run_scenario(f"sqlite://{tmp_path / 'logs.db'}", tmp_path, outage=False)
    print(f"{n} lines from 8 processes (SQLite)")


@pytest.mark.skipif("TASKER_PG_DIR" not in os.environ, reason="needs the throwaway server of tests/pg.sh")
def test_eight_processes_log_through_a_postgres_outage_exactly_once(tmp_path):
    url = f"{os.environ['TASKER_PG_URI']}?schema=logs_{os.getpid()}"
    n = run_scenario(url, tmp_path, outage=True)
    print(f"{n} lines from 8 processes through a PostgreSQL outage")
