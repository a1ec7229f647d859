"""Four processes in three languages (Python, R, C) work on one shared run while the
PostgreSQL server is stopped (`pg_ctl stop -m fast`) for 5 s and started again.
Each starts auto-numbered subtasks, increments and completes them; one exits during
the outage, leaving its writes in a spool file for the next tasker process on the
host. Afterwards every subtask started anywhere is stored once, with its own name,
exact items, final status and events; no call raised; the owner completes the run.

Run by scripts/test-outage.sh, which starts the throwaway server (tests/pg.sh),
builds the C worker and installs the Python and R packages."""
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import tasker

HERE = Path(__file__).resolve().parent
ITEMS = 40
OUTAGE_S = 5.0

pytestmark = pytest.mark.skipif(
    "TASKER_PG_DIR" not in os.environ, reason="needs the throwaway server of tests/pg.sh"
)


def pg_ctl(*args: str) -> None:
    cmd = [os.path.join(os.environ["PG_BIN"], "pg_ctl"), "-D", os.path.join(os.environ["TASKER_PG_DIR"], "data"), *args]
    if os.environ.get("TASKER_PG_RUNAS"):
        cmd = ["runuser", "-u", os.environ["TASKER_PG_RUNAS"], "--", *cmd]
    subprocess.run(cmd, check=True, cwd=os.environ["TASKER_PG_DIR"], stdout=subprocess.DEVNULL)


class Worker:
    def __init__(self, tag: str, argv: list, env: dict) -> None:
        self.tag = tag
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, timeout: float = 180) -> list:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0 and "DONE" in out, f"worker {self.tag} failed:\n{out[-2000:]}\n{err[-4000:]}"
        self.stderr = err
        return [tuple(line.split()[1:3]) for line in out.splitlines() if line.startswith("SUBTASK ")]


def test_python_r_and_c_processes_share_a_run_through_a_postgres_outage(tmp_path):
    schema = f"four_languages_{os.getpid()}"
    url = f"{os.environ['TASKER_PG_URI']}?schema={schema}"
    signals = tmp_path / "signals"
    signals.mkdir()
    state = tmp_path / "state"
    env = dict(os.environ, TASKER_DB_URL=url, XDG_STATE_HOME=str(state), TASKER_TEST_SIGNALS=str(signals))
    owner = tasker.connect(url)
    run = owner.task("outage", "four languages")
    env["TASKER_TEST_RUN"] = run.run_id

    def spawn(tag: str, argv: list, **extra: str) -> Worker:
        return Worker(tag, argv, dict(env, TASKER_TEST_TAG=tag, **extra))

    py = [sys.executable, str(HERE / "worker.py")]
    workers = [
        spawn("py", py),
        spawn("r", ["Rscript", str(HERE / "worker.R")]),
        spawn("c", [os.environ["TASKER_OUTAGE_C_WORKER"]]),
    ]
    exiter = spawn("exiter", py, TASKER_TEST_EXIT_IN_OUTAGE="1")
    time.sleep(3)  # all at work while the server is up (R takes a second to start)
    for w in workers:
        assert w.proc.poll() is None, f"worker {w.tag} ended early: {w.proc.communicate()}"

    pg_ctl("stop", "-m", "fast", "-w")
    down_at = time.monotonic()
    (signals / "down").write_text("")
    exited = exiter.finish(timeout=60)  # it works and exits while the server is down
    assert time.monotonic() - down_at < OUTAGE_S, "the exiter did not exit during the outage"
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    pg_ctl("start", "-w", "-t", "60", "-l", os.path.join(os.environ["TASKER_PG_DIR"], "server.log"),
           "-o", os.environ["TASKER_PG_OPTS"])
    time.sleep(3)  # and at work after it is back
    (signals / "stop").write_text("")

    started = list(exited)
    for w in workers:
        mine = w.finish()
        assert mine, f"worker {w.tag} started nothing"
        started += mine
    warned = Counter(line for line in exiter.stderr.splitlines() if "cannot write to" in line)
    assert sum(warned.values()) == 1, exiter.stderr

    # The next tasker process on this host replays what is left in spool files (the
    # long-lived ones adopt them too, at their next heartbeat).
    subprocess.run([sys.executable, "-c", "import sys, tasker; tasker.connect(sys.argv[1]).close()", url],
                   env=env, check=True, timeout=120)
    later = owner
    subs = later.subtasks(run.run_id)
    names = [s.subtask_name for s in subs]
    assert len(names) == len(set(names)), "a subtask stored twice"
    assert sorted(names) == sorted(name for name, _ in started), "missing or unexpected subtasks"
    for s in subs:
        assert (s.status, s.items_complete) == ("COMPLETED", ITEMS), (s.subtask_name, s.status, s.items_complete)
    events = later.events(run_id=run.run_id, limit=1_000_000)
    for s in subs:
        mine = [(e.old_status, e.new_status) for e in events if e.subtask_number == s.subtask_number]
        assert mine == [("NOT_STARTED", "STARTED"), ("STARTED", "RUNNING"), ("RUNNING", "COMPLETED")], (
            s.subtask_name,
            mine,
        )
    stored = {s.subtask_name: s.subtask_number for s in subs}
    renumbered = sum(1 for name, given in started if int(given) != stored[name])
    print(f"{len(subs)} subtasks from 4 processes; {renumbered} stored under another number than the one given out")
    assert renumbered > 0, "no number given out during the outage was taken: the scenario did not happen"
    run.complete("all workers done")
    assert later.run(run.run_id).status == "COMPLETED"
    left = [p.name for p in (state / "tasker" / "spool").glob("*.jsonl")] if (state / "tasker" / "spool").exists() else []
    assert left == [], left
