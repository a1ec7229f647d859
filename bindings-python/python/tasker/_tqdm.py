"""``tasker.tqdm``: tqdm's progress bar that also counts into a subtask.

With tqdm installed, ``tasker.tqdm`` is a subclass of ``tqdm.tqdm``: the same
arguments, the same bar on the same stream, the same methods (``update``,
``set_description``, ``write``, ``with ... as bar``). Inside a run (the current run,
or ``run=``) it also starts a subtask named ``name`` (else ``desc``, else "items")
with ``total`` items and counts every item tqdm counts. Without tqdm it is a plain
iterator that tracks the same way (``run.track``) and draws nothing.

Counting costs nothing per item: tqdm already counts, and its count goes to the
subtask whenever tqdm redraws (``update``) and when the bar closes, so the subtask
lags the bar by at most tqdm's ``mininterval`` and ends exact. Loaded on first use.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable, Iterator, Optional

from . import _core

__all__ = ["tqdm", "HAVE_TQDM"]

try:
    import tqdm as _tqdm_module
except ImportError:  # pragma: no cover - exercised by the test without tqdm
    _tqdm_module = None  # type: ignore[assignment]

HAVE_TQDM = _tqdm_module is not None


def _start(run: Optional["_core.Run"], name: Optional[str], desc: Any, total: Any) -> Optional["_core.Subtask"]:
    run = run if run is not None else _core.current_run()
    if run is None:
        return None
    label = name or (str(desc).rstrip(": ") if desc else "") or "items"
    items: Optional[int] = None
    if total is not None:
        try:
            t = float(total)
        except (TypeError, ValueError):
            t = -1.0
        if t >= 0 and t != float("inf") and t == int(t):
            items = int(t)
    return run.subtask(label, items)


def _left_early(st: "_core.Subtask") -> None:
    # A `break`, or the loop body raised: which one is known only to whoever catches
    # the exception, so the run decides, as for run.track(): its `with` fails the
    # subtask with the exception, a normal end completes it.
    _core._ORPHANS.setdefault(st.run_id, []).append(st)


if _tqdm_module is not None:

    class tqdm(_tqdm_module.tqdm):  # type: ignore[misc,name-defined]  # noqa: N801 - tqdm's name
        """``tqdm.tqdm`` that also counts into a subtask of the current run (or ``run``).

        Extra keywords: ``run`` (default: the current run; without one it is just
        tqdm), ``name`` (the subtask's name; default ``desc``, else "items"). The
        subtask completes when the loop ends or the bar is closed, fails when the
        iterable raises or the ``with`` block ends with an exception, and is left to
        the enclosing run when the loop is left early (as with ``run.track``).
        """

        def __init__(
            self,
            iterable: Optional[Iterable[Any]] = None,
            *args: Any,
            run: Optional["_core.Run"] = None,
            name: Optional[str] = None,
            **kwargs: Any,
        ) -> None:
            self._tk_sub: Optional[_core.Subtask] = None
            self._tk_sent = 0
            self._tk_own_n = 0  # the count of a bar disabled from the start (tqdm keeps none)
            self._tk_finished = False
            self._tk_iterating = False
            self._tk_exc: Optional[BaseException] = None
            super().__init__(iterable, *args, **kwargs)
            self._tk_was_disabled = bool(self.disable)
            desc = kwargs.get("desc", args[0] if args else None)
            self._tk_sub = _start(run, name, desc, self.total)
            if self._tk_sub is not None and self.n:
                self._tk_sync()  # `initial=`: items done before this process started

        def _tk_count(self) -> int:
            return self._tk_own_n if self._tk_was_disabled else int(self.n)

        def _tk_sync(self) -> None:
            st = self._tk_sub
            if st is None or self._tk_finished:
                return
            n = self._tk_count()
            if n > self._tk_sent:
                st.increment(n - self._tk_sent)
                self._tk_sent = n

        def __iter__(self) -> Iterator[Any]:
            if self._tk_sub is None:
                it: Iterator[Any] = super().__iter__()
                return it
            self._tk_iterating = True
            if self._tk_was_disabled:
                return self._tk_disabled_iter()
            # tqdm's own generator, unwrapped: no cost per item. It calls update()
            # when it redraws and close() when the loop ends, however it ends.
            it = super().__iter__()
            return it

        def _tk_disabled_iter(self) -> Iterator[Any]:
            st = self._tk_sub
            assert st is not None
            inc = st.increment
            try:
                for obj in self.iterable:
                    yield obj
                    inc()
                    self._tk_own_n += 1
                    self._tk_sent += 1
            finally:
                self.close()

        def update(self, n: float = 1) -> Optional[bool]:
            r: Optional[bool] = super().update(n)
            if self._tk_sub is not None and not self._tk_finished:
                if self._tk_was_disabled:
                    self._tk_own_n += int(n)
                self._tk_sync()
            return r

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
            self._tk_exc = exc
            return super().__exit__(exc_type, exc, tb)

        def close(self) -> None:
            super().close()
            st = self._tk_sub
            if st is None or self._tk_finished:
                return
            self._tk_sync()
            self._tk_finished = True
            exc = self._tk_exc
            if exc is None and self._tk_iterating:
                # Called from tqdm's loop (its `finally`): the exception in flight
                # says how the loop ended. A loop run to its end while an outer
                # `except` block handles another exception would look failed, unless
                # it counted its whole total.
                exc = sys.exc_info()[1]
                if exc is not None and self.total is not None and self._tk_count() >= self.total:
                    exc = None
            if isinstance(exc, GeneratorExit):
                _left_early(st)
                return
            _core._finish_with(st, exc, exc.__traceback__ if exc is not None else None)

else:

    class tqdm:  # type: ignore[no-redef]  # noqa: N801 - tqdm's name
        """Without the tqdm package: iterates and counts into a subtask of the current
        run (or ``run``) like ``run.track``; draws nothing. Accepts tqdm's arguments."""

        def __init__(
            self,
            iterable: Optional[Iterable[Any]] = None,
            desc: Optional[str] = None,
            total: Optional[float] = None,
            *args: Any,
            run: Optional["_core.Run"] = None,
            name: Optional[str] = None,
            **kwargs: Any,
        ) -> None:
            if total is None and iterable is not None:
                try:
                    total = len(iterable)  # type: ignore[arg-type]
                except (TypeError, AttributeError):
                    total = None
            self.iterable = iterable
            self.total = total
            self.n: float = 0
            self._tk_sub = _start(run, name, desc, total)
            self._tk_finished = False

        def __iter__(self) -> Iterator[Any]:
            if self.iterable is None:
                raise TypeError("tasker.tqdm: nothing to iterate over (iterable=None)")
            if self._tk_sub is None:
                return iter(self.iterable)
            self._tk_finished = True
            total = None if self.total is None else int(self.total)
            return iter(_core.Tracked(self._tk_sub, self.iterable, total, False, None))

        def __len__(self) -> int:
            if self.total is None:
                raise TypeError("tasker.tqdm: the length is unknown")
            return int(self.total)

        def update(self, n: float = 1) -> None:
            self.n += n
            if self._tk_sub is not None:
                self._tk_sub.increment(int(n))

        def close(self) -> None:
            if self._tk_sub is not None and not self._tk_finished:
                self._tk_finished = True
                _core._finish_with(self._tk_sub, None, None)

        def __enter__(self) -> "tqdm":
            return self

        def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
            if self._tk_sub is not None and not self._tk_finished:
                self._tk_finished = True
                _core._finish_with(self._tk_sub, exc, tb)

        def set_description(self, desc: Optional[str] = None, refresh: bool = True) -> None:
            pass

        def set_postfix(self, *args: Any, **kwargs: Any) -> None:
            pass

        @staticmethod
        def write(s: str, file: Any = None, end: str = "\n", nolock: bool = False) -> None:
            (file or sys.stdout).write(s + end)
