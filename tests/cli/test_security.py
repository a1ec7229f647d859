"""`tasker serve` on a network: HTTPS with a self-signed certificate made here by
openssl, the plain-HTTP warning, signed session cookies, short tokens refused,
slow-header and surplus connections cut, /healthz in token mode, no-store and no
panic text on the API."""

import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import TASKER

TOKEN = "tok; en with spaces=0123456789"  # `;`, spaces and `=`: a cookie could not hold it


def host_port(server):
    host, port = server.url.split("://")[1].split(":")
    return host, int(port)


@pytest.fixture
def cert(tmp_path):
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed to make the test certificate")
    crt, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return crt, key


def test_tls_with_a_self_signed_certificate(db, serve, cert):
    crt, key = cert
    ctx = ssl.create_default_context(cafile=str(crt))
    server = serve(db, "--tls-cert", str(crt), "--tls-key", str(key), "--token", TOKEN,
                   bind="0.0.0.0:0", ssl_context=ctx)
    assert server.url.startswith("https://")
    auth = {"Authorization": "Bearer " + TOKEN}
    status, _, body = server.get("/api/v1/status", auth)
    assert status == 200 and "stages" in json.loads(body)
    assert server.get("/api/v1/status")[0] == 401

    # Over HTTPS the session cookie is Secure.
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=ctx))
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(server.url + "/?token=" + urllib.parse.quote(TOKEN), timeout=10)
    assert e.value.code == 303 and "; Secure" in e.value.headers["Set-Cookie"]
    # Over TLS no plain-HTTP warning.
    server.stop()
    assert "plain HTTP" not in server.proc.stderr.read()

    # Plain HTTP to the TLS port gets no answer (the TLS handshake fails).
    server = serve(db, "--tls-cert", str(crt), "--tls-key", str(key), ssl_context=ctx)
    host, port = host_port(server)
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert not s.recv(100).startswith(b"HTTP/1.1 200")
    # A client that does not trust the certificate refuses it.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "/healthz", timeout=10, context=ssl.create_default_context())
    assert server.get("/healthz")[0] == 200


def test_tls_options_are_checked(db, tmp_path, cert):
    crt, key = cert
    out = subprocess.run([TASKER, "--db", str(db), "serve", "--bind", "127.0.0.1:0", "--tls-cert", str(crt)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "--tls-key" in out.stderr
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    out = subprocess.run([TASKER, "--db", str(db), "serve", "--bind", "127.0.0.1:0",
                          "--tls-cert", str(not_pem), "--tls-key", str(key)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and str(not_pem) in out.stderr and "certificate" in out.stderr, out.stderr


def test_plain_http_with_a_token_on_the_network_warns(db, serve):
    server = serve(db, "--token", TOKEN, bind="0.0.0.0:0")
    server.stop()
    err = server.proc.stderr.read()
    assert "warning" in err and "plain HTTP" in err and "--tls-cert" in err, err
    assert TOKEN not in err


def test_short_tokens_are_refused_without_showing_them(db):
    out = subprocess.run([TASKER, "--db", str(db), "serve", "--bind", "0.0.0.0:0", "--token", "hunter2-secret"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert "too short" in out.stderr and "16" in out.stderr, out.stderr
    assert "hunter2-secret" not in out.stderr


def test_the_cookie_is_a_signed_session_not_the_token(db, serve):
    server = serve(db, "--token", TOKEN, bind="0.0.0.0:0")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as e:
        opener.open(server.url + "/?token=" + urllib.parse.quote(TOKEN), timeout=10)
    assert e.value.code == 303
    set_cookie = e.value.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Secure" not in set_cookie
    pair = set_cookie.split(";")[0]
    name, value = pair.split("=", 1)
    assert name == "tasker_session"
    assert "tok" not in value and "0123456789" not in value, "the cookie does not carry the token"
    assert server.get("/api/v1/status", {"Cookie": pair})[0] == 200
    assert server.get("/", {"Cookie": "other=1; " + pair})[0] == 200
    # A forged or altered session, or the token itself as a cookie, is refused.
    assert server.get("/api/v1/status", {"Cookie": pair[:-2] + "00"})[0] == 401
    assert server.get("/api/v1/status", {"Cookie": "tasker_session=v1.99999999999.00"})[0] == 401
    assert server.get("/api/v1/status", {"Cookie": "tasker_token=" + TOKEN})[0] == 401
    # The bearer scheme in any case.
    for scheme in ["Bearer", "bearer", "BEARER"]:
        assert server.get("/api/v1/status", {"Authorization": f"{scheme} {TOKEN}"})[0] == 200, scheme
    assert server.get("/api/v1/status", {"Authorization": "Basic " + TOKEN})[0] == 401


def test_healthz_without_the_token_says_only_up_or_down(db, serve):
    server = serve(db, "--token", TOKEN, bind="0.0.0.0:0")
    status, _, body = server.get("/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    assert str(db) not in body
    full = server.json("/healthz", {"Authorization": "Bearer " + TOKEN})
    assert full["status"] == "ok" and full["backend"] == "sqlite" and "version" in full and "database" in full


def test_api_answers_are_not_cached_and_never_show_panic_text(db, serve):
    server = serve(db)
    for path in ["/api/v1/status", "/api/v1/runs", "/api/v1/timeline", "/api/v1/runs/nope", "/api/v1/runs?since=x"]:
        _, headers, _ = server.get(path)
        assert headers["Cache-Control"] == "no-store", path
    # Ages far out of range once panicked inside the server: whatever the answer, it
    # is an HTTP answer without the panic's text.
    for path in ["/api/v1/runs?since=100000000d", "/api/v1/timeline?from=100000000d",
                 "/api/v1/runs?since=9999999999999999s"]:
        status, _, body = server.get(path)
        assert status in (400, 500), (path, status)
        for leak in ["panicked", "overflow", ".rs:", "unwrap"]:
            assert leak not in body, (path, body)
    assert server.get("/healthz")[0] == 200, "the server survived"


def test_slow_header_connections_are_cut(db, serve):
    server = serve(db, "--header-timeout", "1")
    host, port = host_port(server)
    with socket.create_connection((host, port), timeout=10) as s:
        started = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")  # never finished
        reply = s.recv(1000)
        waited = time.monotonic() - started
    assert not reply.startswith(b"HTTP/1.1 200"), reply
    assert 0.8 <= waited <= 5, f"cut after {waited:.1f}s"
    # A connection that sends nothing at all is cut too.
    with socket.create_connection((host, port), timeout=10) as s:
        started = time.monotonic()
        assert not s.recv(1000).startswith(b"HTTP/1.1 200")
        assert 0.8 <= time.monotonic() - started <= 5
    assert server.get("/healthz")[0] == 200


def test_connections_past_the_cap_are_closed(db, serve):
    server = serve(db, "--max-connections", "20", "--header-timeout", "30")
    host, port = host_port(server)
    held = []
    try:
        for _ in range(20):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\n")  # half a request: held open
            held.append(s)
        time.sleep(0.3)
        # 200 more half-open connections: each is closed at once.
        started = time.monotonic()
        for _ in range(200):
            with socket.create_connection((host, port), timeout=10) as s:
                try:
                    s.sendall(b"GET / HTTP/1.1\r\n")
                    assert s.recv(100) == b""
                except ConnectionResetError:
                    pass  # closed with our bytes unread: a reset, as good as a close
        assert time.monotonic() - started < 10
    finally:
        for s in held:
            s.close()
    # Once they are gone, requests are served again.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if server.get("/healthz")[0] == 200:
                break
        except (ConnectionError, urllib.error.URLError):
            time.sleep(0.2)
    assert server.get("/healthz")[0] == 200
