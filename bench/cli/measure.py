"""Measures, on one database: p50/p95 of GET /api/v1/status, /metrics, /api/v1/runs
(by host), /api/v1/runs/{id} and /healthz (alone, and while six clients read 30-day
timelines) on tasker serve (keep-alive connection); the wall time of `tasker status`
(and --json), `tasker stats`, `history --host`, `show` (id, prefix, --last); the rows/s
of `export --table runs --format csv` next to `sqlite3 -csv`; and, as the
baseline in the same run, `SELECT count(*) FROM runs` through Python's sqlite3."""

import http.client
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import time

from percentiles import pct, summary

tasker, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


results = {}
# Baseline: the cheapest question about the runs table, in the same run.
con = sqlite3.connect(db)
xs = []
for _ in range(n):
    t = time.perf_counter()
    con.execute("SELECT count(*) FROM runs").fetchone()
    xs.append(time.perf_counter() - t)
results["select_count_runs"] = summary("SELECT count(*) FROM runs", xs)
con.close()

# The command line, from process start to exit.
# `tasker --version` opens no database: what starting the program costs by itself.
for args in (["--version"], ["status"], ["status", "--json"], ["stats"], ["stats", "--json"],
             ["stats", "--stage", "stage03", "--task", "task04"]):
    xs = []
    for _ in range(max(3, n // 20)):
        t = time.perf_counter()
        subprocess.run([tasker, "--db", db, *args], check=True, stdout=subprocess.DEVNULL)
        xs.append(time.perf_counter() - t)
    results["tasker " + " ".join(args)] = summary("tasker " + " ".join(args), xs)

# Runs of one host, one run by id, and an export, on the same file.
con = sqlite3.connect(db)
run_host = con.execute("SELECT hostname FROM runs ORDER BY start_time LIMIT 1").fetchone()[0]
run_id = con.execute("SELECT run_id FROM runs ORDER BY start_time LIMIT 1 OFFSET 5000").fetchone()[0]
nruns = con.execute("SELECT count(*) FROM runs").fetchone()[0]
con.close()
for args in (["history", "--host", run_host], ["show", run_id], ["show", run_id[:10]], ["show", "--last"]):
    xs = []
    for _ in range(max(5, n // 20)):
        t = time.perf_counter()
        subprocess.run([tasker, "--db", db, *args], check=True, stdout=subprocess.DEVNULL)
        xs.append(time.perf_counter() - t)
    label = "tasker " + " ".join(a if a != run_id else "<id>" for a in args)
    results[label] = summary(label, xs)


def rows_per_second(cmd, out):
    t = time.perf_counter()
    with open(out, "wb") as f:
        subprocess.run(cmd, check=True, stdout=f)
    secs = time.perf_counter() - t
    with open(out, "rb") as f:
        lines = sum(1 for _ in f) - 1
    return lines, secs


lines, secs = rows_per_second([tasker, "--db", db, "export", "--table", "runs", "--format", "csv"], db + ".export.csv")
base_lines, base_secs = rows_per_second(["sqlite3", "-csv", "-header", db, "SELECT * FROM runs"], db + ".sqlite3.csv")
print(f"{'export --table runs --format csv':<34} {lines} rows in {secs:.2f} s = {lines / secs:,.0f} rows/s;"
      f" sqlite3 -csv: {base_lines} rows in {base_secs:.2f} s = {base_lines / base_secs:,.0f} rows/s"
      f" (ratio {(lines / secs) / (base_lines / base_secs):.2f})")
results["export_runs_csv_rows_per_s"] = lines / secs
results["sqlite3_csv_rows_per_s"] = base_lines / base_secs

# The server.
t0 = time.perf_counter()
srv = subprocess.Popen([tasker, "--db", db, "serve", "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
try:
    line = srv.stdout.readline()
    started = time.perf_counter() - t0
    host, port = re.search(r"http://([0-9.]+):(\d+)/", line).groups()
    c = http.client.HTTPConnection(host, int(port), timeout=60)

    def get(path):
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return body

    while b"\ntasker_metrics_loaded 1\n" not in get("/metrics"):
        time.sleep(0.05)
    loaded = time.perf_counter() - t0
    print(f"{'serve: listening after':<34} {started * 1000:9.0f} ms; /metrics run counts loaded after {loaded * 1000:.0f} ms")
    results["serve_start_ms"] = started * 1000
    results["metrics_loaded_ms"] = loaded * 1000
    status = json.loads(get("/api/v1/status"))
    print(f"{'':<34} status payload: {len(status['tasks'])} tasks, {len(status['active'])} active runs")
    polls = []
    for _ in range(20):
        polls.append(json.loads(get("/healthz"))["last_poll_ms"] / 1000)
        time.sleep(0.25)
    results["dashboard poll (all queries)"] = summary("dashboard poll (all DB reads)", polls)
    for path in ["/api/v1/status", "/api/v1/status?stage=stage03", "/metrics", "/api/v1/runs?limit=100", "/healthz",
                 f"/api/v1/runs?host={run_host}", f"/api/v1/runs/{run_id}"]:
        for _ in range(5):
            get(path)
        xs = []
        for _ in range(n):
            t = time.perf_counter()
            get(path)
            xs.append(time.perf_counter() - t)
        results[path] = summary("GET " + path, xs)
    # /healthz while six clients keep the API's connections busy with 30-day timelines.
    import threading
    stop_at = time.perf_counter() + 8

    def heavy():
        h = http.client.HTTPConnection(host_ip, int(port), timeout=120)
        while time.perf_counter() < stop_at:
            h.request("GET", "/api/v1/timeline?from=30d&limit=20000")
            h.getresponse().read()

    host_ip = re.search(r"http://([0-9.]+):", line).group(1)
    threads = [threading.Thread(target=heavy) for _ in range(6)]
    for th in threads:
        th.start()
    time.sleep(0.5)
    xs = []
    while time.perf_counter() < stop_at - 0.5:
        t = time.perf_counter()
        get("/healthz")
        xs.append(time.perf_counter() - t)
        time.sleep(0.05)
    for th in threads:
        th.join()
    results["/healthz under 6 timeline clients"] = summary("GET /healthz (6 heavy clients)", xs)
finally:
    srv.terminate()
    srv.wait(timeout=10)
print(json.dumps(results))
