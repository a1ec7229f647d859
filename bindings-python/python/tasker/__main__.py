"""The ``tasker`` command line from Python: ``python -m tasker status`` and the
``tasker`` script the wheel installs. Both run the Rust command line compiled into
``tasker._tasker`` (the same code as the stand-alone ``tasker`` binary)."""

from __future__ import annotations

import signal
import sys
import threading
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - annotations only
    from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs ``tasker ARGS...`` (``argv`` defaults to ``sys.argv[1:]``); returns its exit status."""
    from tasker import _tasker

    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    if threading.current_thread() is threading.main_thread():
        # As with the binary, Ctrl-C ends `watch` at once (Python's own handler only
        # sets a flag that the Rust code never reads); `serve` installs its own handler
        # and shuts down gracefully.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    if not hasattr(_tasker, "cli_main"):
        print("tasker: this build of the Python package leaves out the command line "
              "(Cargo feature 'server')", file=sys.stderr)
        return 1
    return _tasker.cli_main(["tasker", *args])


if __name__ == "__main__":
    sys.exit(main())
