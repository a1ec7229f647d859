"""The command line in a real terminal (a pty at 80 and 200 columns), and the API's
consistency: unknown filter values refused alike, the database's state in the
status payload, /healthz on its own connection."""

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import threading
import time

import pytest

from conftest import TASKER, wait_for

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG = "t" * 300  # a 300-character task name


def in_pty(args, columns, seconds=None, env=None):
    """Runs `tasker ARGS` with stdout on a pty `columns` wide; returns its lines without
    colour codes (and after `seconds`, stops it: for `watch`)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    e = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    e.update(env or {})
    proc = subprocess.Popen([str(TASKER), *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=e)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + (seconds or 30)
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the pty
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)
    os.close(master)
    text = ANSI.sub("", out.decode(errors="replace"))
    return [l.rstrip("\r") for l in text.replace("\r\n", "\n").split("\n")], proc


@pytest.fixture
def busy_db(db, runs):
    """The example pipeline plus an active run of a task with a 300-character name."""
    run = runs(db, "publish", LONG, items=40)
    run.increment(3)
    return db


@pytest.mark.parametrize("columns", [80, 200])
def test_status_history_and_watch_fit_the_terminal(busy_db, columns):
    for args, seconds in ((["status"], None), (["history"], None), (["watch"], 2.5)):
        lines, proc = in_pty(["--db", str(busy_db), *args], columns, seconds)
        text = "\n".join(lines)
        assert any(l.strip() for l in lines), (args, text)
        too_wide = [l for l in lines if len(l) > columns]
        assert not too_wide, (args, columns, too_wide)
        assert "…" in text, f"the long name is cut with an ellipsis: {args}\n{text}"
        if args == ["status"]:
            # Room for every column at 200; at 80 the host goes before the task.
            assert ("HOST:PID" in text) == (columns == 200), text
            assert "TASK" in text and "STATUS" in text
        if args == ["watch"]:
            assert "tasker watch" in text and "elapsed" in text, text


def test_columns_variable_is_honoured_without_a_terminal(busy_db):
    out = subprocess.run([TASKER, "--db", busy_db, "status"], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "80"}, check=True).stdout
    assert max(len(l) for l in out.splitlines()) <= 80, out
    # Piped without COLUMNS: nothing is cut (scripts see whole names).
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([TASKER, "--db", busy_db, "status"], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert LONG[:32 - 1] in out


def test_unknown_filter_values_are_refused_alike_everywhere(db, serve):
    server = serve(db)
    for path in ["/api/v1/status", "/api/v1/stages", "/api/v1/active", "/api/v1/runs",
                 "/api/v1/timeline"]:
        status, _, body = server.get(path + "?status=bogus")
        assert status == 400 and "bogus" in body, (path, status, body)
        ok, _, _ = server.get(path + "?status=failed,active")
        assert ok == 200, path


def test_status_payload_says_the_database_is_readable(db, serve):
    server = serve(db)
    st = server.json("/api/v1/status")
    assert st["db_ok"] is True and st["stale_since"] is None and st["db_error"] is None


def test_healthz_answers_while_the_api_pool_is_busy(db, serve):
    server = serve(db)
    # Keep both API connections busy with the heaviest queries there are.
    stop = time.monotonic() + 3
    def hammer():
        while time.monotonic() < stop:
            server.get("/api/v1/timeline?from=30d&limit=20000")
    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        worst = 0.0
        for _ in range(10):
            t0 = time.monotonic()
            h = server.json("/healthz")
            worst = max(worst, time.monotonic() - t0)
            assert h["reachable"] is True
        assert worst < 1.0, worst
    finally:
        for t in threads:
            t.join()


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut (every connection closed, new ones
    refused) and restored: the database "goes down" while the server keeps running."""

    def __init__(self, port):
        import socket
        self.target = ("127.0.0.1", port)
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.up = True
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if not self.up:
                c.close()
                continue
            try:
                s = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            self.conns += [c, s]
            for a, b in ((c, s), (s, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.close()
                except OSError:
                    pass

    def cut(self):
        import socket
        self.up = False
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns = []

    def restore(self):
        self.up = True


@pytest.mark.skipif(not os.environ.get("TASKER_PG_URI"), reason="TASKER_PG_URI is not set (no PostgreSQL server)")
def test_status_and_badge_say_when_the_database_is_unreachable(serve):
    import uuid
    from conftest import FIXTURE
    pg_port = int(re.search(r":(\d+)/", os.environ["TASKER_PG_URI"]).group(1))
    proxy = Proxy(pg_port)
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/postgres?schema=down_{uuid.uuid4().hex[:8]}"
    subprocess.run([FIXTURE, "populate", url], check=True)
    server = serve(url)
    before = server.json("/api/v1/status")
    assert before["db_ok"] is True
    proxy.cut()
    down = wait_for(lambda: (lambda s: s if s["db_ok"] is False else None)(server.json("/api/v1/status")),
                    what="the status payload saying the database is down")
    assert down["stale_since"] is not None and down["db_error"], down
    assert down["tasks"], "the last data read is still shown"
    # The dashboard's live badge follows the stream's db_error event (no "live" while down).
    app_js = server.get("/assets/app.js")[2]
    handler = app_js[app_js.index('addEventListener("db_error"'):][:400]
    assert "conn-down" in handler, handler
    proxy.restore()
    wait_for(lambda: server.json("/api/v1/status")["db_ok"] is True, timeout=60,
             what="the status payload recovering")
