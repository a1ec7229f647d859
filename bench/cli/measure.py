"""Measures, on one database: p50/p95 of GET /api/v1/status and GET /metrics (tasker
serve, keep-alive connection), the wall time of `tasker status` (and --json) and of
`tasker stats` (every task, and one task), and, as the
baseline in the same run, `SELECT count(*) FROM runs` through Python's sqlite3."""

import http.client
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import time

tasker, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(name, xs):
    print(f"{name:<34} p50 {pct(xs, 50) * 1000:9.2f} ms   p95 {pct(xs, 95) * 1000:9.2f} ms   (n={len(xs)})")
    return {"p50_ms": pct(xs, 50) * 1000, "p95_ms": pct(xs, 95) * 1000, "n": len(xs)}


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
    for path in ["/api/v1/status", "/api/v1/status?stage=stage03", "/metrics", "/api/v1/runs?limit=100", "/healthz"]:
        for _ in range(5):
            get(path)
        xs = []
        for _ in range(n):
            t = time.perf_counter()
            get(path)
            xs.append(time.perf_counter() - t)
        results[path] = summary("GET " + path, xs)
finally:
    srv.terminate()
    srv.wait(timeout=10)
print(json.dumps(results))
