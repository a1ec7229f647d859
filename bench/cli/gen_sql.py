"""The database gen.py writes (same stages, tasks, hosts, statuses, subtasks and
events), generated inside SQLite by INSERT ... SELECT over a counter instead of row by
row from Python: a million runs in about a minute instead of many. Ids are random
(UUIDv4-shaped), times spread over 90 days ending now.

    python3 bench/cli/gen_sql.py DB RUNS EVENTS_PER_RUN ACTIVE
"""

import sqlite3
import sys
import time

db, runs, events_per_run, active = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
STAGES, TASKS = 20, 10
SPAN_US = 90 * 86400 * 1_000_000

con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA synchronous=OFF")
con.execute("PRAGMA cache_size=-262144")
now_us = int(time.time() * 1_000_000)
t0 = time.perf_counter()


def ts(us):
    """SQL of a fixed-form time (the store's TS_FORMAT) from integer microseconds."""
    return f"strftime('%Y-%m-%dT%H:%M:%S', ({us}) / 1000000, 'unixepoch') || printf('.%06dZ', ({us}) % 1000000)"


con.execute("BEGIN")
stamp = con.execute(f"SELECT {ts(now_us)}").fetchone()[0]
con.execute("CREATE TEMP TABLE bench_tasks(k INTEGER PRIMARY KEY, task_id INTEGER NOT NULL)")
for s in range(STAGES):
    cur = con.execute(
        "INSERT INTO stages(stage_name, stage_order, created_at, updated_at) VALUES (?,?,?,?)",
        (f"stage{s:02d}", s + 10, stamp, stamp),
    )
    sid = cur.lastrowid
    for t in range(TASKS):
        cur = con.execute(
            "INSERT INTO tasks(stage_id, task_name, task_order, created_at, updated_at) VALUES (?,?,?,?,?)",
            (sid, f"task{t:02d}", t, stamp, stamp),
        )
        con.execute("INSERT INTO bench_tasks VALUES (?, ?)", (s * TASKS + t, cur.lastrowid))

# One row per run with its numbers; the text columns are derived from them below.
con.execute(
    f"""CREATE TEMP TABLE bench_runs AS
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {runs} - 1)
    SELECT i,
           lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
                 || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))) AS run_id,
           {now_us} - {SPAN_US} + i * ({SPAN_US} / {runs}) AS start_us,
           5000000 + abs(random()) % 3595000000 AS dur_us,
           CASE WHEN i >= {runs} - {active} THEN 'RUNNING'
                ELSE CASE abs(random()) % 20 WHEN 0 THEN 'FAILED' WHEN 1 THEN 'CANCELLED' ELSE 'COMPLETED' END
           END AS status
    FROM n"""
)
con.execute(
    f"""INSERT INTO runs(run_id, task_id, hostname, process_id, parent_pid, user_name, status, start_time,
                         end_time, last_update, heartbeat_time, total_subtasks, current_subtask, error_message)
    SELECT b.run_id, k.task_id, 'bench-host-' || (b.i % 8), 1000 + b.i % 30000, 1, 'bench', b.status,
           {ts('b.start_us')},
           CASE WHEN b.status = 'RUNNING' THEN NULL ELSE {ts('b.start_us + b.dur_us')} END,
           CASE WHEN b.status = 'RUNNING' THEN {ts(now_us)} ELSE {ts('b.start_us + b.dur_us')} END,
           CASE WHEN b.status = 'RUNNING' THEN {ts(now_us)} ELSE {ts('b.start_us + b.dur_us')} END,
           2, 2, CASE WHEN b.status = 'FAILED' THEN 'boom' END
    FROM bench_runs b JOIN bench_tasks k ON k.k = b.i % {STAGES * TASKS}
    ORDER BY b.i"""
)
con.execute(
    f"""INSERT INTO subtasks(run_id, subtask_number, subtask_name, status, start_time, end_time, last_update,
                             items_total, items_complete)
    SELECT b.run_id, p.n, 'part ' || p.n,
           CASE WHEN b.status = 'FAILED' AND p.n = 2 THEN 'FAILED'
                WHEN b.status = 'RUNNING' AND p.n = 2 THEN 'RUNNING'
                WHEN b.status = 'FAILED' THEN 'RUNNING'
                ELSE 'COMPLETED' END,
           {ts('b.start_us')},
           CASE WHEN b.status = 'RUNNING' THEN NULL ELSE {ts('b.start_us + b.dur_us')} END,
           CASE WHEN b.status = 'RUNNING' THEN {ts(now_us)} ELSE {ts('b.start_us + b.dur_us')} END,
           500, CASE WHEN b.status = 'RUNNING' AND p.n = 2 THEN abs(random()) % 500 ELSE 500 END
    FROM bench_runs b, (SELECT 1 AS n UNION ALL SELECT 2) p
    ORDER BY b.i, p.n"""
)
kinds = [("run", None, "NOT_STARTED", "STARTED"), ("subtask", 1, "NOT_STARTED", "STARTED"),
         ("run", None, "STARTED", "RUNNING"), ("subtask", 1, "STARTED", "RUNNING"),
         ("subtask", 1, "RUNNING", "COMPLETED"), ("subtask", 2, "NOT_STARTED", "STARTED"),
         ("subtask", 2, "STARTED", "RUNNING"), ("subtask", 2, "RUNNING", "RUNNING"),
         ("subtask", 2, "RUNNING", "COMPLETED"), ("run", None, "RUNNING", None)]
con.execute("CREATE TEMP TABLE bench_kinds(k INTEGER PRIMARY KEY, kind, sub, old, new)")
con.executemany("INSERT INTO bench_kinds VALUES (?,?,?,?,?)", [(k, *kinds[k % len(kinds)]) for k in range(events_per_run)])
con.execute(
    f"""INSERT INTO events(time, run_id, subtask_number, kind, old_status, new_status, message)
    SELECT {ts(f'b.start_us + b.dur_us * e.k / {max(events_per_run, 1)}')}, b.run_id, e.sub, e.kind, e.old,
           COALESCE(e.new, b.status), NULL
    FROM bench_runs b, bench_kinds e
    ORDER BY b.i, e.k"""
)
con.execute("COMMIT")
print(
    "generated:",
    {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "subtasks", "events", "tasks")},
    "active:", con.execute("SELECT count(*) FROM runs WHERE status='RUNNING'").fetchone()[0],
    f"in {time.perf_counter() - t0:.0f} s",
)
con.close()
