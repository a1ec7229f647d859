"""Handles in other processes: 4 workers x 10,000 increments must store exactly 40,000,
with the fork and spawn start methods, from multiprocessing.Pool (closed, or
terminated by its `with` block) and concurrent.futures.ProcessPoolExecutor."""
import concurrent.futures
import multiprocessing

import pytest

import tasker
import mp_workers

WORKERS = 4
TOTAL = WORKERS * mp_workers.N


@pytest.fixture
def tracker(db_url):
    """The background writer never flushes on its own here (the interval is 10 min):
    what workers store is written by the exit, SIGTERM and handle-drop flushes."""
    t = tasker.connect(db_url, flush_interval_ms=600_000)
    yield t
    t.close()


def _items(tracker, run, number):
    return {s.subtask_number: s for s in tracker.subtasks(run.run_id)}[number].items_complete


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_close_join(tracker, method):
    ctx = multiprocessing.get_context(method)
    with tracker.task("mp", f"pool-{method}") as run:
        st = run.subtask("count", items_total=TOTAL)
        pool = ctx.Pool(WORKERS)
        try:
            pids = pool.map(mp_workers.increment_many, [st] * WORKERS, chunksize=1)
        finally:
            pool.close()
            pool.join()
        assert len(pids) == WORKERS
        assert _items(tracker, run, st.number) == TOTAL
        st.complete()
    rec = tracker.subtasks(run.run_id)[0]
    assert rec.items_complete == TOTAL and rec.status == "COMPLETED"
    assert rec.percent_complete == 100.0


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_with_block_terminates_workers(tracker, method):
    """`with Pool() as p:` terminates the workers (SIGTERM) right after map returns."""
    ctx = multiprocessing.get_context(method)
    with tracker.task("mp", f"with-pool-{method}") as run:
        st = run.subtask("count")
        with ctx.Pool(WORKERS) as pool:
            pool.map(mp_workers.increment_many, [st] * WORKERS, chunksize=1)
        assert _items(tracker, run, st.number) == TOTAL


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_executor(tracker, method):
    ctx = multiprocessing.get_context(method)
    with tracker.task("mp", f"executor-{method}") as run:
        st = run.subtask("count")
        with concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=ctx) as ex:
            list(ex.map(mp_workers.increment_many, [st] * WORKERS))
        assert _items(tracker, run, st.number) == TOTAL


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_functional_api_in_workers(tracker, db_url, method):
    ctx = multiprocessing.get_context(method)
    run_id = tasker.task_start("mp", f"functional-{method}", tracker=tracker)
    n = tasker.subtask_start("count", items_total=TOTAL, tracker=tracker)
    with ctx.Pool(WORKERS) as pool:
        pool.starmap(mp_workers.functional_increment, [(run_id, n, db_url)] * WORKERS)
    tasker.subtask_complete(tracker=tracker)
    tasker.task_complete(tracker=tracker)
    (rec,) = tracker.subtasks(run_id)
    assert rec.items_complete == TOTAL and rec.status == "COMPLETED"


def test_forked_process_with_inherited_handle(tracker):
    """A plain multiprocessing.Process (fork) uses the handle it inherited, unpickled."""
    ctx = multiprocessing.get_context("fork")
    with tracker.task("mp", "inherited") as run:
        st = run.subtask("count")
        st.increment(5)  # pending in the parent when it forks: written once, by the parent
        procs = [ctx.Process(target=mp_workers.increment_many, args=(st, 1000)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            assert p.exitcode == 0
        assert _items(tracker, run, st.number) == 2005


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sigterm_flushes_a_worker(tracker, method):
    import signal

    ctx = multiprocessing.get_context(method)
    with tracker.task("mp", f"sigterm-{method}") as run:
        st = run.subtask("count")
        ready = ctx.Event()
        p = ctx.Process(target=mp_workers.increment_then_wait, args=(st, 777, ready))
        p.start()
        assert ready.wait(120)
        p.terminate()
        p.join(120)
        assert p.exitcode == -signal.SIGTERM
        assert _items(tracker, run, st.number) == 777


def test_worker_starts_its_own_subtask(tracker):
    ctx = multiprocessing.get_context("spawn")
    with tracker.task("mp", "worker-subtasks") as run:
        with ctx.Pool(2) as pool:
            numbers = sorted(pool.map(mp_workers.run_in_worker, [run, run]))
    assert numbers == [1, 2]
    subs = tracker.subtasks(run.run_id)
    assert [s.items_complete for s in subs] == [3, 3]
    assert all(s.status == "COMPLETED" for s in subs)
