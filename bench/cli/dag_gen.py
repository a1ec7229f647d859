"""Fills a tasker SQLite database (schema created by tasker) with a pipeline graph for
the DAG benchmark: TASKS tasks in 20 stages, each task after the first stage depending
on 1-3 tasks of earlier stages, and RUNS runs spread over them (the latest run of each
task mostly COMPLETED, some FAILED, a few RUNNING). Bulk SQL, like gen.py: the rows
match what the core writes. Dependencies go in after the runs, so the wait trigger
does not fire for these made-up runs (their waits are written directly)."""

import random
import sqlite3
import sys
import uuid
from datetime import datetime, timedelta, timezone

db, n_tasks, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
STAGES = 20
random.seed(11)
now = datetime.now(timezone.utc)


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


con = sqlite3.connect(db)
con.execute("PRAGMA synchronous=OFF")
cur = con.cursor()
stamp = ts(now)
per_stage = n_tasks // STAGES
stage_of, task_ids = {}, []
for s in range(STAGES):
    cur.execute(
        "INSERT INTO stages(stage_name, stage_order, created_at, updated_at) VALUES (?,?,?,?)",
        (f"dag{s:02d}", 100 + s, stamp, stamp),
    )
    sid = cur.lastrowid
    for t in range(per_stage):
        cur.execute(
            "INSERT INTO tasks(stage_id, task_name, task_order, created_at, updated_at) VALUES (?,?,?,?,?)",
            (sid, f"t{t:03d}", t, stamp, stamp),
        )
        task_ids.append(cur.lastrowid)
        stage_of[cur.lastrowid] = s
rows = []
span = timedelta(days=30)
for i in range(runs):
    task = task_ids[i % len(task_ids)]
    start = now - span + span * (i / runs)
    latest = i >= runs - len(task_ids)
    status = random.choice(["COMPLETED"] * 18 + ["FAILED", "CANCELLED"])
    if latest and random.random() < 0.02:
        status = "RUNNING"
    end = None if status == "RUNNING" else start + timedelta(seconds=random.uniform(5, 600))
    beat = now if status == "RUNNING" else end
    wait = random.uniform(0, 120) if stage_of[task] > 0 else None
    rows.append((str(uuid.uuid4()), task, "bench-host", 1000 + i % 30000, 1, "bench", status, ts(start),
                 ts(end) if end else None, ts(beat), ts(beat), 2, wait))
    if len(rows) >= 10000 or i == runs - 1:
        cur.executemany(
            "INSERT INTO runs(run_id, task_id, hostname, process_id, parent_pid, user_name, status, start_time,"
            " end_time, last_update, heartbeat_time, total_subtasks, wait_seconds) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        rows = []
deps = []
for task in task_ids:
    s = stage_of[task]
    if s == 0:
        continue
    earlier = [t for t in task_ids if stage_of[t] < s and stage_of[t] >= s - 3]
    for up in random.sample(earlier, min(len(earlier), random.randint(1, 3))):
        deps.append((task, up))
cur.executemany("INSERT OR IGNORE INTO task_dependencies(task_id, depends_on) VALUES (?,?)", deps)
con.commit()
print("generated:", {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("tasks", "runs", "task_dependencies")})
con.close()
