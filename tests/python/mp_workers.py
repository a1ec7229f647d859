"""Functions run in worker processes by the multiprocessing tests (importable by
spawned workers, and light: no pytest import)."""
import os

import tasker

N = 10_000


def increment_many(st, n=N):
    for _ in range(n):
        st.increment()
    return os.getpid()


def update_and_increment(args):
    st, n = args
    for i in range(n):
        st.increment()
    return os.getpid()


def functional_increment(run_id, number, url, n=N):
    t = tasker.connect(url)
    for _ in range(n):
        tasker.subtask_increment(run_id=run_id, subtask_number=number, tracker=t)
    return os.getpid()


def run_in_worker(run):
    st = run.subtask("from a worker", items_total=3)
    for _ in range(3):
        st.increment()
    st.complete()
    return st.number


def increment_then_wait(st, n, ready):
    for _ in range(n):
        st.increment()
    ready.set()
    import time

    time.sleep(3600)  # ended by SIGTERM
