"""The dashboard from Python: :func:`serve` starts the server of ``tasker serve`` (the
same Rust code, compiled into the extension module) on threads of its own."""

from __future__ import annotations

import atexit
import sys
import threading
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from typing import Any, Optional, Set

from . import _tasker
from ._core import Tracker, default_tracker

_RUNNING: Set["Dashboard"] = set()
_RUNNING_LOCK = threading.Lock()


class Dashboard:
    """A dashboard served from this process, returned by :func:`serve`.

    ``url`` is its address (with the port actually bound); ``stop()`` ends it (also a
    context manager, and stopped at interpreter exit). In Jupyter it shows as a link.
    """

    __slots__ = ("_server", "__weakref__")

    def __init__(self, server: _tasker.DashboardServer) -> None:
        self._server = server

    @property
    def url(self) -> str:
        """``http://HOST:PORT/``."""
        return self._server.url

    @property
    def database(self) -> str:
        """The database served (never with its password)."""
        return self._server.database

    @property
    def running(self) -> bool:
        """Whether it still serves."""
        return self._server.running

    def stop(self) -> None:
        """Stops serving: requests in progress finish, live streams end, its database
        connections close and its threads are joined. Stopping twice does nothing."""
        self._server.stop()
        with _RUNNING_LOCK:
            _RUNNING.discard(self)

    def open(self) -> bool:
        """Opens the dashboard in a web browser (``webbrowser.open``)."""
        import webbrowser

        return webbrowser.open(self.url)

    def __enter__(self) -> "Dashboard":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<tasker.Dashboard {self.url} ({self.database}; {self._server.auth}) {state}>"

    def _repr_html_(self) -> str:
        import html  # only in notebooks: html.entities is not worth loading at import

        url = html.escape(self.url, quote=True)
        if not self.running:
            return f"tasker dashboard (stopped) was at {url}"
        return (
            f'tasker dashboard: <a href="{url}" target="_blank" rel="noopener">{url}</a> '
            f"({html.escape(self.database)}; stop it with <code>.stop()</code>)"
        )


def _interactive() -> bool:
    """A console or a notebook, as R's ``interactive()``: not a script run by python."""
    return hasattr(sys, "ps1") or bool(sys.flags.interactive) or "ipykernel" in sys.modules


def serve(
    port: int = 8750,
    *,
    host: str = "127.0.0.1",
    open_browser: Optional[bool] = None,
    tracker: Optional[Tracker] = None,
    token: Optional[str] = None,
    no_auth: bool = False,
    title: str = "tasker",
    poll_ms: int = 500,
) -> Dashboard:
    """Serves the dashboard (as ``tasker serve``) in background threads and returns at
    once with a :class:`Dashboard` (``.url``, ``.stop()``).

    ``port=0`` takes any free port. The database is ``tracker``'s, else the default
    tracker's (``TASKER_DB_URL``, ``.tasker.yml``, ...). An address that is not loopback
    needs a ``token`` (or ``TASKER_SERVE_TOKEN``), or ``no_auth=True``: otherwise
    :class:`ArgumentError` is raised, as ``tasker serve`` refuses it. ``open_browser``
    opens it in a web browser; by default only in an interactive session.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise _tasker.ArgumentError(f"invalid port {port!r}: a whole number from 0 to 65535")
    if not hasattr(_tasker, "serve_start"):
        raise _tasker.TaskerError("this build of tasker leaves out the dashboard server (Cargo feature 'server')")
    t = tracker if tracker is not None else default_tracker()
    bind = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    server = _tasker.serve_start(
        t._native, bind, token=token, no_auth=no_auth, poll_ms=poll_ms, title=title
    )
    dashboard = Dashboard(server)
    with _RUNNING_LOCK:
        _RUNNING.add(dashboard)
    if open_browser if open_browser is not None else _interactive():
        dashboard.open()
    return dashboard


@atexit.register
def _stop_all() -> None:
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for d in running:
        try:
            d.stop()
        except Exception:  # pragma: no cover - never break an exiting interpreter
            pass
