"""``tasker.LogHandler`` and ``tasker.capture_logging()``: the standard library's
``logging`` records, tracebacks included, as log lines of the current run.

Loaded on first use (``tasker.LogHandler``), so that ``import tasker`` does not load
``logging``.
"""
from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, List, Optional, Tuple, Type, Union

from . import _core
from ._tasker import TaskerError

if TYPE_CHECKING:  # pragma: no cover
    from ._core import Run

__all__ = ["LogHandler", "capture_logging"]

_DEFAULT_FORMAT = "%(name)s: %(message)s"


class LogHandler(logging.Handler):
    """A :class:`logging.Handler` that writes each record as a log line of a run.

    The run is ``run`` if given, else the current run when the record is logged
    (:func:`tasker.current_run`); records logged outside any run are dropped. A line
    keeps the record's level (DEBUG→debug, INFO→info, WARNING→warn, ERROR and
    CRITICAL→error); its time, host and process are the run log's own. The text is
    ``"<logger name>: <message>"`` followed by the formatted traceback when the
    record carries an exception (``logger.exception(...)``, ``exc_info=True``) and
    the stack with ``stack_info=True``; ``fmt`` (a ``logging.Formatter`` format) or
    ``setFormatter()`` changes it. Like ``Run.log``, it only touches memory: the lines
    are written with the run's progress.

    A context manager too: ``with tasker.capture_logging(): ...`` removes the
    handler (and restores the logger's level) at the end of the block.
    """

    def __init__(
        self,
        level: Union[int, str] = logging.NOTSET,
        *,
        run: Optional["Run"] = None,
        fmt: Optional[str] = None,
    ) -> None:
        super().__init__(level)
        self.run = run
        self.setFormatter(logging.Formatter(fmt or _DEFAULT_FORMAT))
        self._installed: List[Tuple[logging.Logger, int]] = []

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        # Handler.handle() takes the handler's lock around emit(); Run.log is safe to
        # call from any thread, so the lock would only cost time.
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        run = self.run if self.run is not None else _core.current_run()
        if run is None:
            return
        try:
            run.log(record.levelno, self.format(record))
        except TaskerError:
            # Logging never fails the program: the run may be finished, or the line
            # refused; there is nowhere better to report it than the log itself.
            pass
        except RecursionError:  # pragma: no cover - as logging.StreamHandler does
            raise
        except Exception:
            self.handleError(record)

    def install(self, logger: Optional[logging.Logger] = None) -> "LogHandler":
        """Adds this handler to ``logger`` (default: the root logger), lowering the
        logger's level to the handler's when it is higher (otherwise the records
        would never reach the handler). Returns the handler."""
        target = logger if logger is not None else logging.getLogger()
        if self in target.handlers:
            return self
        self._installed.append((target, target.level))
        if self.level and (target.level == logging.NOTSET or target.level > self.level):
            if target.getEffectiveLevel() > self.level:
                target.setLevel(self.level)
        target.addHandler(self)
        return self

    def uninstall(self) -> None:
        """Removes this handler from the loggers :meth:`install` added it to and
        gives them back their levels."""
        while self._installed:
            target, level = self._installed.pop()
            target.removeHandler(self)
            target.setLevel(level)

    def __enter__(self) -> "LogHandler":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.uninstall()


def capture_logging(
    level: Union[int, str] = logging.INFO,
    logger: Union[logging.Logger, str, None] = None,
    *,
    run: Optional["Run"] = None,
    fmt: Optional[str] = None,
) -> LogHandler:
    """Sends ``logging`` records of ``level`` and above (default INFO) to the current
    run's log, in one line: ``tasker.capture_logging()``.

    ``logger`` (a logger or its name; default the root logger, so every logger
    that propagates) gets a :class:`LogHandler`; its level is lowered to ``level``
    if it is higher, since the root logger's default (WARNING) would drop INFO
    records before any handler saw them. Calling it again for the same logger
    returns the handler already there. Use the result as a context manager to
    remove it again, or call its ``uninstall()``.
    """
    target = logging.getLogger(logger) if isinstance(logger, str) or logger is None else logger
    for h in target.handlers:
        if isinstance(h, LogHandler) and h.run is run:
            h.setLevel(level)
            if target.getEffectiveLevel() > h.level:
                target.setLevel(h.level)
            return h
    return LogHandler(level, run=run, fmt=fmt).install(target)
