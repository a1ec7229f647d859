"""DAG benchmark: p50/p95 of `tasker dag --format json` and `--format text` (process
start to exit) and of GET /api/v1/dag (tasker serve, keep-alive), next to baselines
measured in the same run: `tasker status --json` (the same latest-run read without the
graph) and GET /api/v1/tasks."""

import http.client
import json
import re
import subprocess
import sys
import time

from percentiles import pct, summary

tasker, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


results = {}
dag = json.loads(subprocess.run([tasker, "--db", db, "dag", "--format", "json"], check=True,
                                capture_output=True, text=True).stdout)
print(f"graph: {len(dag['nodes'])} tasks, {len(dag['edges'])} edges, "
      f"{sum(x['blocked'] for x in dag['nodes'])} blocked, {sum(x['waiting'] for x in dag['nodes'])} waiting")
for args in (["status", "--json"], ["dag", "--format", "json"], ["dag", "--format", "text"]):
    xs = []
    for _ in range(max(5, n // 10)):
        t = time.perf_counter()
        subprocess.run([tasker, "--db", db, *args], check=True, stdout=subprocess.DEVNULL)
        xs.append(time.perf_counter() - t)
    results["tasker " + " ".join(args)] = summary("tasker " + " ".join(args), xs)

srv = subprocess.Popen([tasker, "--db", db, "serve", "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
try:
    host, port = re.search(r"http://([0-9.]+):(\d+)/", srv.stdout.readline()).groups()
    c = http.client.HTTPConnection(host, int(port), timeout=60)

    def get(path):
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (path, r.status, body[:200])
        return body

    for path in ["/api/v1/tasks", "/api/v1/dag"]:
        for _ in range(3):
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
print(f"ratio p95 tasker dag --format json / tasker status --json: "
      f"{results['tasker dag --format json']['p95_ms'] / results['tasker status --json']['p95_ms']:.2f}")
print(json.dumps(results))
