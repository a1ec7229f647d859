"""Fills a tasker SQLite database (schema already created by tasker) with a large history:
RUNS runs over STAGES x TASKS tasks, EVENTS_PER_RUN events each, two subtasks per run,
ACTIVE runs still RUNNING (heartbeat fresh, on another host). Bulk SQL, because a million
transitions through the API would take minutes: the rows match what the core writes."""

import random
import sqlite3
import sys
import uuid
from datetime import datetime, timedelta, timezone

db, runs, events_per_run, active = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
STAGES, TASKS = 20, 10
random.seed(7)
now = datetime.now(timezone.utc)


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


con = sqlite3.connect(db)
con.execute("PRAGMA synchronous=OFF")
cur = con.cursor()
stamp = ts(now)
task_ids = []
for s in range(STAGES):
    cur.execute(
        "INSERT INTO stages(stage_name, stage_order, created_at, updated_at) VALUES (?,?,?,?)",
        (f"stage{s:02d}", s + 10, stamp, stamp),
    )
    sid = cur.lastrowid
    for t in range(TASKS):
        cur.execute(
            "INSERT INTO tasks(stage_id, task_name, task_order, created_at, updated_at) VALUES (?,?,?,?,?)",
            (sid, f"task{t:02d}", t, stamp, stamp),
        )
        task_ids.append(cur.lastrowid)

run_rows, sub_rows, ev_rows = [], [], []
span = timedelta(days=90)
for i in range(runs):
    rid = str(uuid.uuid4())
    task = task_ids[i % len(task_ids)]
    start = now - span + span * (i / runs)
    is_active = i >= runs - active
    dur = timedelta(seconds=random.uniform(5, 3600))
    status = "RUNNING" if is_active else random.choice(["COMPLETED"] * 18 + ["FAILED", "CANCELLED"])
    end = None if is_active else start + dur
    beat = now if is_active else end
    run_rows.append(
        (rid, task, f"bench-host-{i % 8}", 1000 + i % 30000, 1, None, "bench", status, ts(start),
         ts(end) if end else None, ts(beat), ts(beat), 2, 2, None, None,
         "boom" if status == "FAILED" else None)
    )
    for n in (1, 2):
        done = 500 if not is_active or n == 1 else random.randint(0, 499)
        sstatus = "COMPLETED" if (not is_active or n == 1) and status != "FAILED" else ("FAILED" if status == "FAILED" and n == 2 else "RUNNING")
        sub_rows.append(
            (rid, n, f"part {n}", sstatus, ts(start), ts(end) if sstatus in ("COMPLETED", "FAILED") and end else None,
             ts(beat), 500, done)
        )
    kinds = [("run", None, "NOT_STARTED", "STARTED"), ("subtask", 1, "NOT_STARTED", "STARTED"),
             ("run", None, "STARTED", "RUNNING"), ("subtask", 1, "STARTED", "RUNNING"),
             ("subtask", 1, "RUNNING", "COMPLETED"), ("subtask", 2, "NOT_STARTED", "STARTED"),
             ("subtask", 2, "STARTED", "RUNNING"), ("subtask", 2, "RUNNING", "RUNNING"),
             ("subtask", 2, "RUNNING", "COMPLETED"), ("run", None, "RUNNING", status)]
    for k in range(events_per_run):
        kind, sub, old, new = kinds[k % len(kinds)]
        ev_rows.append((ts(start + dur * (k / events_per_run)), rid, sub, kind, old, new, None))
    if len(run_rows) >= 10000 or i == runs - 1:
        cur.executemany(
            "INSERT INTO runs(run_id, task_id, hostname, process_id, parent_pid, process_start_time, user_name, status,"
            " start_time, end_time, last_update, heartbeat_time, total_subtasks, current_subtask, overall_percent,"
            " message, error_message) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            run_rows,
        )
        cur.executemany(
            "INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, start_time, end_time, last_update,"
            " items_total, items_complete) VALUES (?,?,?,?,?,?,?,?,?)",
            sub_rows,
        )
        cur.executemany(
            "INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)"
            " VALUES (?,?,?,?,?,?,?)",
            ev_rows,
        )
        run_rows, sub_rows, ev_rows = [], [], []
con.commit()
print(
    "generated:",
    {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "subtasks", "events", "tasks")},
    "active:", con.execute("SELECT count(*) FROM runs WHERE status='RUNNING'").fetchone()[0],
)
con.close()
