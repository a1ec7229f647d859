"""The dashboard's paged views on a large database (bench/cli/run.sh makes one):
p50/p95 of the timeline (fitted and a 30-day window, pages), History (pages,
search, another sort) and the grid, next to `SELECT count(*) FROM runs` on the
same file in the same run.

    python3 bench/cli/pages.py target/release/tasker build/bench-cli/bench.db [N]
"""

import re
import sqlite3
import subprocess
import sys
import time
import urllib.request

from percentiles import pct

tasker, db = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 11


con = sqlite3.connect(db)
xs = []
for _ in range(n):
    s = time.perf_counter()
    con.execute("SELECT count(*) FROM runs").fetchone()
    xs.append((time.perf_counter() - s) * 1000)
print(f"{'SELECT count(*) FROM runs':60s} p50 {pct(xs, 50):8.1f} ms  p95 {pct(xs, 95):8.1f} ms")

proc = subprocess.Popen([tasker, "--db", db, "serve", "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
try:
    url = re.search(r"(http://[0-9.]+:\d+)/", proc.stdout.readline()).group(1)
    for path in [
        "/api/v1/timeline",
        "/api/v1/timeline?from=30d",
        "/api/v1/timeline?from=30d&offset=2000",
        "/api/v1/timeline?from=30d&status=FAILED",
        "/api/v1/history?limit=100",
        "/api/v1/history?limit=100&offset=2000",
        "/api/v1/history?limit=100&q=task03",
        "/api/v1/history?limit=100&sort=duration",
        "/api/v1/history?limit=100&sort=duration&dir=asc&offset=2000",
        "/api/v1/history?limit=100&sort=host",
        "/api/v1/history?limit=100&sort=task&status=FAILED,CANCELLED",
        "/api/v1/history?limit=100&sort=status&q=task03",
        "/api/v1/grid?per_task=25",
    ]:
        xs, size = [], 0
        for _ in range(n):
            s = time.perf_counter()
            size = len(urllib.request.urlopen(url + path, timeout=300).read())
            xs.append((time.perf_counter() - s) * 1000)
        print(f"{path:60s} p50 {pct(xs, 50):8.1f} ms  p95 {pct(xs, 95):8.1f} ms  {size:9d} bytes")
finally:
    proc.terminate()
    proc.wait()
