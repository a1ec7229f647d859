"""OpenTelemetry export: a real OTLP/HTTP receiver started here decodes what a
Python pipeline sends with the OpenTelemetry proto definitions (PyPI package
opentelemetry-proto); a collector that accepts and never answers does not hold up
pipeline calls, warns once, and gets the queued runs when it is back; `tasker
export --format otlp-json` gives the same traces in the OTLP JSON encoding."""
import http.server
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Status as SpanStatus

import tasker


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1 (`port` 0: any free port)."""

    def __init__(self, port=0):
        self.requests = []
        self.content_types = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                outer.content_types.append((self.path, self.headers["Content-Type"]))
                outer.requests.append(req)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self):
        """(resource attributes, span) for every span received."""
        out = []
        for req in self.requests:
            for rs in req.resource_spans:
                res = attrs(rs.resource.attributes)
                for ss in rs.scope_spans:
                    out.extend((res, s) for s in ss.spans)
        return out

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """A collector that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def still_waiting(self, conn):
        """Whether the client still holds this connection open (reading what it sent)."""
        conn.setblocking(False)
        try:
            while True:
                if conn.recv(65536) == b"":
                    return False
        except BlockingIOError:
            return True

    def stop(self):
        # shutdown wakes the accepting thread, so the port is really closed.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.accepted:
            c.close()


def attrs(kvs):
    out = {}
    for kv in kvs:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


PIPELINE = textwrap.dedent(
    """
    import sys
    import tasker

    t = tasker.connect(sys.argv[1])
    with t.task("ingest", "download") as run:
        with run.subtask("files", 4) as s:
            for _ in range(4):
                s.increment()
        with run.subtask("checksums", 2) as s:
            s.increment(2)
    try:
        with t.task("ingest", "parse") as run:
            with run.subtask("rows", 10) as s:
                s.increment(3)
                raise ValueError("row 4 is bad")
    except ValueError:
        pass
    """
)


def run_pipeline(db_url, endpoint, tmp_path, **env):
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    full = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **env)
    proc = subprocess.run([sys.executable, str(script), db_url], env=full, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def history(db_url):
    t = tasker.connect(db_url)
    try:
        return {(r.task_name): r for r in t.history(limit=10)}
    finally:
        t.close()


def test_a_python_pipeline_sends_one_trace_per_run(db_url, tmp_path):
    rx = Receiver()
    try:
        run_pipeline(db_url, f"http://127.0.0.1:{rx.port}", tmp_path, OTEL_SERVICE_NAME="etl-nightly",
                     OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test")
        wait_for(lambda: len(rx.spans()) == 5, "2 runs with 2 + 1 subtasks")
    finally:
        rx.stop()
    assert {p for p, _ in rx.content_types} == {"/v1/traces"}
    assert {c for _, c in rx.content_types} == {"application/x-protobuf"}
    runs = history(db_url)
    spans = rx.spans()
    by_trace = {}
    for res, s in spans:
        by_trace.setdefault(s.trace_id, []).append((res, s))
    # One trace per run, its id the run's UUID.
    assert set(by_trace) == {uuid.UUID(r.run_id).bytes for r in runs.values()}
    for task, run in runs.items():
        trace = by_trace[uuid.UUID(run.run_id).bytes]
        roots = [s for _, s in trace if not s.parent_span_id]
        assert len(roots) == 1, trace
        root = roots[0]
        assert root.name == f"ingest/{task}"
        children = [s for _, s in trace if s.parent_span_id]
        assert all(c.parent_span_id == root.span_id for c in children)
        a = attrs(root.attributes)
        assert (a["tasker.stage"], a["tasker.task"], a["tasker.run_id"]) == ("ingest", task, run.run_id)
        res = trace[0][0]
        assert res["service.name"] == "etl-nightly"
        assert res["deployment.environment"] == "test"
        assert res["host.name"] == run.hostname
        assert res["process.pid"] == run.process_id
        assert root.start_time_unix_nano <= root.end_time_unix_nano
        events = [e.name for e in root.events]
        assert events[0] == "STARTED" and events[-1] == run.status.value
        if task == "download":
            assert root.status.code == SpanStatus.STATUS_CODE_OK
            assert sorted(c.name for c in children) == ["checksums", "files"]
            assert (a["tasker.items.done"], a["tasker.items.total"]) == (6, 6)
            assert all(c.status.code == SpanStatus.STATUS_CODE_OK for c in children)
        else:
            assert root.status.code == SpanStatus.STATUS_CODE_ERROR
            assert "row 4 is bad" in root.status.message
            (rows,) = children
            assert rows.status.code == SpanStatus.STATUS_CODE_ERROR
            assert attrs(rows.attributes)["tasker.items.done"] == 3
            assert [e.name for e in rows.events][-1] == "FAILED"


def test_a_subtask_span_goes_when_it_ends_and_tasker_yml_names_the_service(db_url, tmp_path, monkeypatch):
    rx = Receiver()
    for var in [v for v in os.environ if v.startswith("OTEL_")]:
        monkeypatch.delenv(var)
    (tmp_path / ".tasker.yml").write_text(
        f"otlp:\n  endpoint: http://127.0.0.1:{rx.port}\n  service_name: nightly-from-file\n"
        "  resource_attributes:\n    deployment.environment: staging\n")
    monkeypatch.chdir(tmp_path)
    t = tasker.connect(db_url)
    try:
        with t.task("ingest", "stream") as run:
            with run.subtask("first batch", 2) as s:
                s.increment(2)
            # The run goes on: the ended subtask's span arrives without it.
            wait_for(lambda: [s.name for _, s in rx.spans()] == ["first batch"],
                     "the first subtask's span while its run still runs")
            with run.subtask("second batch", 1) as s:
                s.increment()
        t.flush()
        wait_for(lambda: len(rx.spans()) == 3, "the run's span and the second subtask's")
        t.close()
    finally:
        rx.stop()
    spans = rx.spans()
    # Each span once: the run's export leaves out the subtask sent ahead of it.
    assert sorted(s.name for _, s in spans) == ["first batch", "ingest/stream", "second batch"]
    (root,) = [s for _, s in spans if not s.parent_span_id]
    assert all(s.parent_span_id == root.span_id for _, s in spans if s is not root)
    assert {res["service.name"] for res, _ in spans} == {"nightly-from-file"}
    assert {res["deployment.environment"] for res, _ in spans} == {"staging"}


def test_a_bad_otlp_key_in_tasker_yml_is_refused_naming_it(db_url, tmp_path, monkeypatch):
    (tmp_path / ".tasker.yml").write_text("otlp:\n  endpoint: collector:4318\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(tasker.ConfigError, match="otlp.endpoint .*collector:4318"):
        tasker.connect(db_url)
    (tmp_path / ".tasker.yml").write_text("otlp:\n  servce_name: x\n")
    with pytest.raises(tasker.ConfigError, match="servce_name"):
        tasker.connect(db_url)


def test_a_collector_that_does_not_answer_never_holds_up_the_pipeline(db_url, monkeypatch, caplog):
    silent = Silent()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{silent.port}")
    # Long enough that the writer is still inside its POST while the calls below run.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "60000")
    caplog.set_level(logging.WARNING, logger="tasker")
    t = tasker.connect(db_url)
    rx = None
    try:
        first = t.task("s", "first")
        first.complete()
        wait_for(lambda: silent.accepted, "the writer's export to connect")
        (conn,) = silent.accepted
        # The writer thread now waits for an answer that never comes; pipeline calls go on.
        second = t.task("s", "second")
        with second.subtask("part", 3) as st:
            st.increment(3)
        second.complete("done")
        t.flush()
        assert [r.status for r in t.history(limit=5)] == [tasker.Status.COMPLETED] * 2
        assert silent.still_waiting(conn), "the calls returned only after the export gave up"

        # The collector goes away: the POST fails, one warning, the runs stay queued.
        port = silent.port
        silent.stop()
        reached = lambda: [r for r in caplog.records if "cannot be reached" in r.getMessage()]  # noqa: E731
        wait_for(lambda: (t.health(), reached())[1], "the warning")
        t.task("s", "third").complete()
        time.sleep(1.5)  # at least one more (failing) retry: still one warning
        t.health()
        assert len(reached()) == 1
        assert f"127.0.0.1:{port}" in reached()[0].getMessage()

        # Back: the queued runs are delivered, with one line saying so.
        rx = Receiver(port)
        want = {uuid.UUID(r.run_id).bytes for r in t.history(limit=5)}
        wait_for(lambda: {s.trace_id for _, s in rx.spans()} >= want, "the queued runs", timeout=90)
        wait_for(lambda: (t.health(), [r for r in caplog.records if "is back" in r.getMessage()])[1],
                 "the line saying the collector is back")
        assert len(reached()) == 1
    finally:
        t.close()
        silent.stop()
        if rx:
            rx.stop()


def test_export_otlp_json_of_past_runs(db_url, db_path, tmp_path):
    rx = Receiver()
    try:
        run_pipeline(db_url, f"http://127.0.0.1:{rx.port}", tmp_path)
        wait_for(lambda: len(rx.spans()) == 5, "the live export")
    finally:
        rx.stop()
    out = subprocess.run([sys.executable, "-m", "tasker", "--db", db_path, "export", "--format", "otlp-json"],
                         capture_output=True, text=True, check=True,
                         env=dict(os.environ, OTEL_SERVICE_NAME="replay"))
    doc = json.loads(out.stdout)
    spans = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    services = {a["value"]["stringValue"] for rs in doc["resourceSpans"] for a in rs["resource"]["attributes"]
                if a["key"] == "service.name"}
    assert services == {"replay"}
    runs = history(db_url)
    assert {s["traceId"] for s in spans} == {uuid.UUID(r.run_id).hex for r in runs.values()}
    roots = {s["traceId"]: s for s in spans if not s.get("parentSpanId")}
    assert len(roots) == 2
    for s in spans:
        assert len(s["spanId"]) == 16 and int(s["spanId"], 16) >= 0
        if s.get("parentSpanId"):
            assert s["parentSpanId"] == roots[s["traceId"]]["spanId"]
        assert isinstance(s["startTimeUnixNano"], str) and int(s["startTimeUnixNano"]) > 0
    # The same ids the live export sent: a re-export updates, never duplicates.
    live = {(s.trace_id.hex(), s.span_id.hex()) for _, s in rx.spans()}
    assert {(s["traceId"], s["spanId"]) for s in spans} == live
    # Filters apply as for the other formats.
    one = subprocess.run([sys.executable, "-m", "tasker", "--db", db_path, "export", "--format", "otlp-json",
                          "--task", "parse"], capture_output=True, text=True, check=True)
    spans = [s for rs in json.loads(one.stdout)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert {s["name"] for s in spans} == {"ingest/parse", "rows"}
