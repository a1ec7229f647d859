"""Driver of bench/postgres/scale.sh: N tracked C processes (scale_worker.c)
against one PostgreSQL server, through PgBouncer (transaction mode) or straight
to it. Measured from outside the processes: server transactions per second in the
busy phase and in the idle phase (runs open, nothing new to write), the most
connections at the server, CPU used by the server, and the latency of every
transition the processes made (p50/p99), and the p95 latency of the dashboard's
status API (`tasker serve` on the same database) quiet and under the load. Prints one JSON line per setting."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request


def psql(sql: str) -> str:
    return subprocess.run(["psql", "-Atqc", sql], check=True, capture_output=True, text=True).stdout.strip()


def commits() -> int:
    return int(psql("SELECT sum(xact_commit) FROM pg_stat_database"))


def server_ticks() -> dict:
    """CPU ticks used so far by each server process (backends come and go)."""
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("postgres", "postmaster"):
            ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """`tasker serve` on the same database, straight to the server (the
    dashboard holds its own connections), and a poller timing its status API."""

    def __init__(self, db_url: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api/v1/status"
        self.proc = subprocess.Popen([os.environ["BENCH_TASKER"], "serve", "--bind", f"127.0.0.1:{port}"],
                                     env=dict(os.environ, TASKER_DB_URL=db_url),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"tasker serve did not come up: {self.proc.stderr.read()[-500:]}")
                time.sleep(0.2)

    def get(self) -> float:
        t0 = time.perf_counter()
        with urllib.request.urlopen(self.url, timeout=30) as r:
            r.read()
        return (time.perf_counter() - t0) * 1e3

    def poll(self) -> None:
        """Times one status request every 100 ms while `on` is set. The requests
        run in windows of their own, so that the server's transaction counts
        elsewhere hold the workers' writes and nothing of the dashboard's but
        its own background polling (in the baseline)."""
        self.timings: list = []
        self.stop = threading.Event()
        self.on = threading.Event()

        def loop() -> None:
            while not self.stop.is_set():
                if self.on.wait(0.1):
                    at = time.monotonic()
                    self.timings.append((at, self.get()))
                    self.stop.wait(0.1)

        self.thread = threading.Thread(target=loop)
        self.thread.start()

    def requests(self, seconds: float) -> list:
        """Status API latencies (ms) over the next `seconds`."""
        t0 = time.monotonic()
        self.on.set()
        time.sleep(seconds)
        self.on.clear()
        return self.between(t0, time.monotonic())

    def between(self, t0: float, t1: float) -> list:
        return [ms for at, ms in self.timings if t0 <= at <= t1]

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def percentile(values: list, q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1)))] if values else float("nan")


def run(label: str, url: str, direct_url: str, procs: int, seconds: int, idle: int) -> dict:
    env = dict(os.environ, TASKER_DB_URL=url, BENCH_SECONDS=str(seconds), BENCH_IDLE_SECONDS=str(idle))
    most = [0]
    seen: dict = {}
    stop = threading.Event()
    dashboard = None if os.environ.get("BENCH_NO_DASHBOARD") else Dashboard(direct_url)
    if dashboard:
        dashboard.poll()

    def watch() -> None:
        while not stop.is_set():
            n = int(psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
            most[0] = max(most[0], n)
            seen.update(server_ticks())
            time.sleep(0.5)

    watcher = threading.Thread(target=watch)
    watcher.start()
    quiet_ms = dashboard.requests(2) if dashboard else []
    # What the monitoring and the idle dashboard commit per second, to subtract.
    m0, mt0 = commits(), time.monotonic()
    time.sleep(3)
    monitor_tps = (commits() - m0) / (time.monotonic() - mt0)
    before = server_ticks()
    start = time.monotonic()
    workers = [
        subprocess.Popen([os.environ["BENCH_WORKER"]], env=dict(env, BENCH_TASK=f"{label}-{i}", TASKER_HOSTNAME=f"host-{i % 20}"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(procs)
    ]
    spawned = time.monotonic()
    # Busy window: after every process is up, before the first goes idle.
    time.sleep(max(0.0, max(start + 2, spawned + 1) - time.monotonic()))
    # Its first part counts the server's transactions, its second times the
    # dashboard under the same load.
    busy = max(1.0, start + seconds - 0.5 - time.monotonic())
    b0, bt0, bw0 = commits(), time.monotonic(), time.time()
    time.sleep(busy / 2)
    b1, bt1, bw1 = commits(), time.monotonic(), time.time()
    loaded_ms = dashboard.requests(busy / 2) if dashboard else time.sleep(busy / 2) or []
    time.sleep(max(0.0, spawned + seconds + 2 - time.monotonic()))
    i0, it0 = commits(), time.monotonic()
    time.sleep(max(0.5, start + seconds + idle - 0.5 - time.monotonic()))
    i1, it1 = commits(), time.monotonic()
    flushes = 1000 / float(os.environ.get("TASKER_FLUSH_INTERVAL_MS", "200"))
    lat, failed, busy_transitions = [], 0, 0
    for w in workers:
        out, err = w.communicate(timeout=600)
        if w.returncode != 0 or "DONE" not in out:
            failed += 1
            sys.stderr.write(err[-500:])
        for line in out.splitlines():
            if line.startswith("T "):
                at, us = line[2:].split()
                lat.append(float(us))
                busy_transitions += bw0 <= float(at) <= bw1
    elapsed = time.monotonic() - start
    stop.set()
    watcher.join()
    if dashboard:
        dashboard.close()
    seen.update(server_ticks())
    cpu = sum(t - before.get(pid, 0) for pid, t in seen.items()) / os.sysconf("SC_CLK_TCK")
    busy_tps = (b1 - b0) / (bt1 - bt0) - monitor_tps
    idle_tps = (i1 - i0) / (it1 - it0) - monitor_tps
    transitions_per_s = busy_transitions / (bw1 - bw0)
    return {
        "setting": label,
        "processes": procs,
        "failed": failed,
        "spawn_s": round(spawned - start, 1),
        "busy_tps": round(busy_tps, 1),
        "busy_transitions_per_s": round(transitions_per_s, 1),
        "flush_interval_ms": round(1000 / flushes),
        "busy_bound": round(procs * flushes + transitions_per_s, 1),
        "idle_tps": round(idle_tps, 1),
        "idle_bound": round((procs * flushes + transitions_per_s) / 5, 1),
        "transitions": len(lat),
        "p50_us": round(percentile(lat, 0.5)),
        "p99_us": round(percentile(lat, 0.99)),
        "status_api_p95_ms_quiet": round(percentile(quiet_ms, 0.95), 1),
        "status_api_p95_ms_loaded": round(percentile(loaded_ms, 0.95), 1),
        "status_api_requests": len(quiet_ms) + len(loaded_ms),
        "server_connections_max": most[0],
        "server_cpu_s": round(cpu, 1),
        "elapsed_s": round(elapsed, 1),
    }


if __name__ == "__main__":
    seconds = int(os.environ.get("BENCH_SECONDS", "12"))
    idle = int(os.environ.get("BENCH_IDLE_SECONDS", "8"))
    for spec in sys.argv[1:]:
        label, procs = spec.split(":")
        url = os.environ["TASKER_BOUNCER_URI"] if label.startswith("pooled") else os.environ["TASKER_PG_URI"]
        sep = "&" if "?" in url else "?"
        schema = f"schema=bench_{label}_{os.getpid()}"
        direct = os.environ["TASKER_PG_URI"]
        direct = f"{direct}{'&' if '?' in direct else '?'}{schema}"
        print(json.dumps(run(label, f"{url}{sep}{schema}", direct, int(procs), seconds, idle)), flush=True)
