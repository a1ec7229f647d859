#!/usr/bin/env python3
"""A small tracked pipeline: word statistics over a generated corpus.

    python examples/python/pipeline.py            # the default database (TASKER_DB_URL,
                                                  # .tasker.yml, or ~/.local/share/tasker)
    TASKER_DB_URL=sqlite:///tmp/demo.db python examples/python/pipeline.py
    tasker status                                 # then look at it from anywhere

Stage "prepare" generates text files; stage "analyse" counts words in parallel
worker processes (each increments the same subtask), retries a flaky step, and
writes a report. Every step shows up as a subtask with its progress.
"""
import collections
import logging
import multiprocessing
import os
import random
import sys
import tempfile

import tasker

FILES = 40
WORDS_PER_FILE = 5_000
VOCABULARY = "the quick brown fox jumps over a lazy dog while pipelines report progress".split()


def generate(run, workdir):
    rng = random.Random(42)
    paths = []
    for i in run.track(range(FILES), "write text files", display=sys.stderr.isatty()):
        path = os.path.join(workdir, f"part-{i:03d}.txt")
        with open(path, "w") as f:
            f.write(" ".join(rng.choice(VOCABULARY) for _ in range(WORDS_PER_FILE)))
        paths.append(path)
    return paths


def count_words(args):
    """Runs in a worker process: `st` arrived pickled and increments the shared subtask."""
    st, path = args
    counts = collections.Counter()
    with open(path) as f:
        for word in f.read().split():
            counts[word] += 1
    st.increment()  # one file done
    return counts


def flaky_download(attempt):
    if attempt == 0:
        raise ConnectionError("mirror timed out")
    return "reference.txt"


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    tracker = tasker.default_tracker()
    print(f"tracking into {tracker.location} (from {tracker.source})")
    tracker.register_tasks(
        [
            {"stage": "prepare", "stage_order": 1, "name": "generate corpus", "type": "python",
             "task_order": 1, "script_path": os.path.abspath(__file__)},
            {"stage": "analyse", "stage_order": 2, "name": "word counts", "type": "python",
             "task_order": 1, "script_path": os.path.abspath(__file__)},
        ]
    )
    workdir = tempfile.mkdtemp(prefix="tasker-example-")

    with tracker.task("prepare", "generate corpus", total_subtasks=1, files=FILES) as run:
        paths = generate(run, workdir)

    with tracker.task("analyse", "word counts", total_subtasks=3, version=tasker.__version__) as run:
        # 1. Count words in 4 worker processes; each increments the same subtask.
        with run.subtask("count words", items_total=len(paths)) as st:
            with multiprocessing.Pool(4) as pool:
                partial = pool.map(count_words, [(st, p) for p in paths])
        total = sum(partial, collections.Counter())

        # 2. A flaky step: the first attempt fails (recorded), the retry succeeds.
        for attempt in range(2):
            step = run.subtask(f"download reference (attempt {attempt + 1})")
            try:
                flaky_download(attempt)
            except ConnectionError as e:
                step.fail(f"{type(e).__name__}: {e}")
                continue
            step.complete()
            break

        # 3. The report, with a message as progress.
        with run.subtask("write report", items_total=len(total)) as st:
            report = os.path.join(workdir, "report.txt")
            with open(report, "w") as f:
                for word, n in total.most_common():
                    f.write(f"{word}\t{n}\n")
                    st.increment()
            st.update(message=f"{len(total)} distinct words")

    for sub in tracker.subtasks(run.run_id):
        print(f"  #{sub.subtask_number} {sub.subtask_name:<34} {sub.status.value:<10} "
              f"{sub.items_complete}/{sub.items_total if sub.items_total is not None else '?'}"
              + (f"  ({sub.error_message})" if sub.error_message else ""))
    print(f"report: {report}")


if __name__ == "__main__":
    main()
