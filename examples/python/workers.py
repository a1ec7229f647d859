#!/usr/bin/env python3
"""Worker processes reporting into one run, with the tools a pipeline already
uses: concurrent.futures, multiprocessing, logging and tqdm.

    TASKER_DB_URL=sqlite:///tmp/demo.db python examples/python/workers.py
    tasker logs <run id>          # the log lines, from every process
    tasker show <run id>          # the subtasks and their counts

- "score files": a ProcessPoolExecutor of 4 processes. Each task receives the
  subtask (it pickles) and increments it; the total is exact however the work is
  spread. A file that cannot be scored is recorded with item_failed(), so the run
  says which ones failed and why. Workers log to the run too: st.log() there.
- "checksum files": a multiprocessing.Pool mapping over the files, the main
  process drawing a tqdm bar (tasker.tqdm) that is also the subtask's count.
- logging: tasker.capture_logging() sends the main process's log records
  (tracebacks included) to the run's log.
"""
import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
import sys
import tempfile

import tasker

FILES = 60
log = logging.getLogger("workers-example")


def score(st, path):
    """In a worker process: `st` arrived pickled and counts into the parent's subtask."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"CORRUPT"):
        st.item_failed(os.path.basename(path), "corrupt header")
    else:
        st.log("debug", f"pid {os.getpid()} scored {os.path.basename(path)}")
    st.increment()
    return len(data)


def checksum(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    workdir = tempfile.mkdtemp(prefix="tasker-workers-")
    paths = []
    for i in range(FILES):
        path = os.path.join(workdir, f"file-{i:03d}.bin")
        with open(path, "wb") as f:
            f.write((b"CORRUPT" if i % 20 == 7 else b"DATA") + os.urandom(2048))
        paths.append(path)

    with tasker.task("examples", "workers", total_subtasks=2) as run, tasker.capture_logging():
        log.info("scoring %d files in %s", len(paths), workdir)
        with run.subtask("score files", items_total=len(paths)) as st:
            with concurrent.futures.ProcessPoolExecutor(max_workers=4) as pool:
                sizes = list(pool.map(score, [st] * len(paths), paths, chunksize=5))
        log.info("scored %d bytes", sum(sizes))

        with multiprocessing.Pool(4) as pool:
            sums = list(tasker.tqdm(pool.imap(checksum, paths), total=len(paths), desc="checksum files",
                                    disable=not sys.stderr.isatty()))
        log.info("%d distinct checksums", len(set(sums)))
        try:
            raise ValueError("a deliberate error, logged with its traceback")
        except ValueError:
            log.exception("checksum report not written")
        print(run.run_id)


if __name__ == "__main__":
    main()
