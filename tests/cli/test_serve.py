"""`tasker serve`: /metrics parsed by prometheus_client, /healthz, the JSON API,
server-sent events, and authentication."""

import json
import re
import signal
import socket
import subprocess
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import TASKER, wait_for


def metrics(server):
    status, headers, body = server.get("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    samples = {}
    for f in families.values():
        for s in f.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_have_the_expected_series_and_values(db, serve, runs):
    server = serve(db)
    wait_for(lambda: metrics(server)[1].get(("tasker_metrics_loaded", ())) == 1, what="metrics loaded")
    fams, s = metrics(server)
    assert fams["tasker_runs"].type == "gauge"
    assert fams["tasker_run_duration_seconds"].type == "histogram"
    assert value(s, "tasker_runs", stage="model", task="fit", status="COMPLETED") == 2
    assert value(s, "tasker_runs", stage="prepare", task="validate", status="FAILED") == 1
    assert value(s, "tasker_run_duration_seconds_count", stage="model", task="fit") == 2
    assert value(s, "tasker_run_duration_seconds_bucket", stage="model", task="fit", le="+Inf") == 2
    assert value(s, "tasker_last_success_timestamp_seconds", stage="prepare", task="download") > 1.7e9
    assert value(s, "tasker_database_up", backend="sqlite") == 1
    assert value(s, "tasker_lost_runs_all") == 0
    assert fams["tasker_dashboard_poll_seconds"].type == "gauge"
    assert 0 < value(s, "tasker_dashboard_poll_seconds") < 10
    # Prometheus naming: `_total` only on counters; no label names a run (bounded series).
    for f in fams.values():
        if f.type != "counter":
            assert not f.name.endswith("_total"), f.name
        for sample in f.samples:
            assert "run_id" not in sample.labels, sample

    run = runs(db, "publish", 'up"load\\ \n<x>', items=40)
    run.increment(10)

    def active_seen():
        _, s = metrics(server)
        return value(s, "tasker_active_runs", stage="publish", task='up"load\\ \n<x>') == 1 and s

    s = wait_for(active_seen, what="the active run in /metrics")
    labels = dict(stage="publish", task='up"load\\ \n<x>')  # per task, not per run
    wait_for(lambda: value(metrics(server)[1], "tasker_subtask_items_done", **labels) == 10, what="items done")
    assert value(s, "tasker_subtask_items_expected", **labels) == 40
    # Counts follow the run's events (read a moment after the poll that saw it).
    wait_for(
        lambda: (lambda s: value(s, "tasker_runs", stage="publish", task='up"load\\ \n<x>', status="STARTED") == 1
                 or value(s, "tasker_runs", stage="publish", task='up"load\\ \n<x>', status="RUNNING") == 1)(
            metrics(server)[1]
        ),
        what="the active run counted",
    )
    run.finish()
    wait_for(
        lambda: value(metrics(server)[1], "tasker_runs", stage="publish", task='up"load\\ \n<x>', status="COMPLETED")
        == 1,
        what="the completed run counted",
    )
    _, s = metrics(server)
    assert value(s, "tasker_active_runs", stage="publish", task='up"load\\ \n<x>') is None


# The process holding a run samples itself every second and writes with its
# heartbeat, every second too.
SAMPLED = {"TASKER_SAMPLE_INTERVAL_S": "1", "TASKER_HEARTBEAT_INTERVAL_S": "1"}


def test_metrics_and_status_show_resources_of_active_runs(db, serve, runs):
    server = serve(db)
    run = runs(db, "model", "sampled", items=10, env=SAMPLED)
    labels = dict(stage="model", task="sampled")  # per task: no series per run
    rss = wait_for(lambda: value(metrics(server)[1], "tasker_active_resident_bytes", **labels), what="the run's memory")
    assert rss > 1_000_000, "a process has more than a megabyte resident"
    _, s = metrics(server)
    assert value(s, "tasker_active_cpu_seconds", **labels) >= 0
    active = [v for v in server.json("/api/v1/status")["active"] if v["run_id"] == run.run_id]
    assert active and active[0]["resources"]["rss_bytes"] > 0
    detail = wait_for(lambda: len(server.json(f"/api/v1/runs/{run.run_id}")["samples"]) >= 2 and server.json(
        f"/api/v1/runs/{run.run_id}"
    ), what="two samples")
    assert all(x["pid"] == detail["run"]["process_id"] for x in detail["samples"])
    run.finish()
    wait_for(lambda: value(metrics(server)[1], "tasker_active_resident_bytes", **labels) is None, what="the gauge gone")


def test_serve_applies_retention_and_reports_it(db, serve):
    server = serve(db, env={"TASKER_RETENTION_DAYS": "30"})
    ret = wait_for(lambda: server.json("/api/v1/status")["retention"], what="retention in the status")
    assert ret["days"] == 30
    ret = wait_for(lambda: server.json("/api/v1/status")["retention"]["last_applied"] and ret, what="applied once")
    _, s = metrics(server)
    assert value(s, "tasker_retention_days") == 30
    # The example's runs are all recent: none deleted.
    assert value(s, "tasker_retention_deleted_runs_total") == 0
    assert value(s, "tasker_retention_failing") == 0
    assert value(s, "tasker_retention_last_applied_timestamp_seconds") > 1.7e9
    plain = serve(db)
    assert plain.json("/api/v1/status")["retention"] is None
    assert value(metrics(plain)[1], "tasker_retention_days") is None


def test_healthz_and_json_api(db, serve, runs):
    server = serve(db)
    h = server.json("/healthz")
    assert h["status"] == "ok" and h["reachable"] is True and h["backend"] == "sqlite"

    st = server.json("/api/v1/status")
    # One version everywhere: the footer shows the payload's, /healthz has the same.
    assert st["version"] == h["version"] and re.fullmatch(r"\d+\.\d+\.\d+.*", st["version"])
    assert [x["stage_name"] for x in st["stages"]] == ["prepare", "model", "publish"]
    assert {t["task_name"] for t in st["tasks"]} >= {"download", "validate", "fit", "score", "upload"}
    only = server.json("/api/v1/status?stage=model")
    assert {t["stage_name"] for t in only["tasks"]} == {"model"}
    failed = server.json("/api/v1/status?status=FAILED")
    assert [t["task_name"] for t in failed["tasks"]] == ["validate"]

    history = server.json("/api/v1/runs?limit=10")
    assert len(history) == 4
    detail = server.json("/api/v1/runs/" + failed["tasks"][0]["run_id"])
    assert detail["run"]["error_detail"].startswith("Traceback")
    assert detail["subtasks"][0]["error_message"].startswith("row 121")
    status, _, _ = server.get("/api/v1/runs/nope")
    assert status == 404
    tl = server.json("/api/v1/timeline?from=1h")
    assert len(tl["runs"]) == 4
    tl = server.json("/api/v1/timeline?from=1h&stage=model")
    assert {r["stage_name"] for r in tl["runs"]} == {"model"}
    status, _, body = server.get("/api/v1/timeline?from=yesterday-ish")
    assert status == 400 and "from" in body
    # Ages too long ago are refused like any bad value, never a panic or a dropped connection.
    for path in ["/api/v1/runs?since=100000000d", "/api/v1/timeline?from=100000000d", "/api/v1/stats?since=9999999999999999s"]:
        status, _, body = server.get(path)
        assert status == 400 and "too long ago" in body, (path, status, body)
    events = server.json("/api/v1/events?after=0&limit=5")
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)

    # The stream sends the state at once, then again when another process changes it.
    run = runs(db, "model", "score", items=10)
    req = urllib.request.Request(server.url + "/api/v1/stream")
    with urllib.request.urlopen(req, timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        seen_items = None
        run.increment(7)
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: ") and '"active"' in line:
                payload = json.loads(line[len("data: "):])
                mine = [a for a in payload["active"] if a["run_id"] == run.run_id]
                if mine and mine[0]["subtasks"][0]["items_complete"] == 7:
                    seen_items = 7
                    break
        assert seen_items == 7


def test_public_bind_needs_a_token_and_requests_without_it_get_401(db, serve):
    out = subprocess.run(
        [TASKER, "--db", str(db), "serve", "--bind", "0.0.0.0:0"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert "refusing" in out.stderr and "--token" in out.stderr

    # On every interface, with a token (from the environment, kept out of the process list).
    server = serve(db, bind="0.0.0.0:0", env={"TASKER_SERVE_TOKEN": "s3cret-token-0123456789"})
    for path in ["/", "/api/v1/status", "/metrics", "/api/v1/stream", "/api/v1/runs", "/assets/app.js"]:
        status, headers, _ = server.get(path)
        assert status == 401, path
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
        status, _, _ = server.get(path, {"Authorization": "Bearer wrong"})
        assert status == 401, path
    ok = {"Authorization": "Bearer s3cret-token-0123456789"}
    assert server.get("/api/v1/status", ok)[0] == 200
    assert server.get("/metrics", ok)[0] == 200
    assert server.get("/healthz")[0] == 200, "health checks need no token"

    # A browser opens /?token=... once; the cookie carries the token afterwards.
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(server.url + "/?token=s3cret-token-0123456789", timeout=10)
        raise AssertionError("expected a redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 303
        cookie = e.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, _ = server.get("/api/v1/status", {"Cookie": cookie.split(";")[0]})
    assert status == 200


def test_loopback_without_token_only_answers_to_local_host_names(db, serve):
    server = serve(db)
    host, port = server.url[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n")
        reply = s.recv(200).decode()
    assert reply.startswith("HTTP/1.1 421"), reply
    status, headers, body = server.get("/")
    assert status == 200
    assert "script-src 'self'" in headers["Content-Security-Policy"]



def test_sigterm_ends_live_streams_and_stops_the_server(db, serve):
    server = serve(db)
    stream = urllib.request.urlopen(server.url + "/api/v1/stream", timeout=10)
    assert stream.readline().startswith(b"event: status") or True
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=15) == 0
    assert "panic" not in server.proc.stderr.read()
    stream.close()
