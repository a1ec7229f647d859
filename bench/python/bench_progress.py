#!/usr/bin/env python3
"""Per-call cost of tasker's progress calls from Python, next to baselines measured in
the same run: an empty Python method call, a trivial PyO3 method call, and
tqdm.update(1) writing to the null device.

    . .venv/bin/activate && maturin develop --release   # the numbers mean little in debug
    python bench/python/bench_progress.py [--calls 200000] [--repeat 40]

Each figure is the best of --repeat timed loops of --calls calls (loop overhead
included, and measured on its own as "empty loop"). The cases take turns, one loop
each per round, so that a change in the machine's load (other builds on shared
cores) hits every case alike instead of the ones measured during it. Ratios are to
the trivial PyO3 call. Targets: st.increment() <= 2x the PyO3 call and cheaper than tqdm (issue 3);
the R-named functional tasker.subtask_increment() <= 3x the handle's st.increment()
(issue 12).
"""
import argparse
import os
import sys
import tempfile
import time

import tasker
from tasker import _tasker


class Plain:
    def method(self):
        pass


def best_ns_per_call(cases, calls, repeat):
    """{name: best ns per call}, measuring the cases in turn, `repeat` rounds."""
    best = {name: float("inf") for name, _ in cases}
    for _ in range(repeat):
        for name, loop in cases:
            t0 = time.perf_counter_ns()
            loop(calls)
            dt = time.perf_counter_ns() - t0
            best[name] = min(best[name], dt / calls)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="tasker-bench-")
    tracker = tasker.connect("sqlite://" + os.path.join(tmp, "bench.db"))
    run = tracker.task("bench", "progress")
    st = run.subtask("increments")
    st_update = run.subtask("updates")
    tasker.set_default_tracker(tracker)
    tasker.tasker_context(run.run_id)
    fn_number = tasker.subtask_start("functional")
    noop = _tasker._Noop()
    plain = Plain()

    try:
        import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    devnull = open(os.devnull, "w")
    bar = tqdm.tqdm(total=None, file=devnull) if tqdm else None

    def empty_loop(n):
        for _ in range(n):
            pass

    def python_method(n):
        p = plain
        for _ in range(n):
            p.method()

    def pyo3_method(n):
        o = noop
        for _ in range(n):
            o.call()

    def increment(n):
        s = st
        for _ in range(n):
            s.increment()

    def update(n):
        s = st_update
        for i in range(n):
            s.update(items_complete=i)

    def functional(n):
        f = tasker.subtask_increment
        for _ in range(n):
            f()

    # The functional form as it was written in Python before it became native
    # (same lookups: context variable, active run, last subtask of the run).
    from tasker import _core

    def python_subtask_increment(increment=1, quiet=True, *, run_id=None, subtask_number=None, tracker=None):
        if run_id is None and subtask_number is None and tracker is None:
            r = _core._current.get() or _core._active
            if r is not None:
                st = _core._LAST_SUBTASK.get(r.run_id)
                if st is not None:
                    st.increment(increment)
                    return
        raise AssertionError("the benchmark uses the fast path only")

    def functional_python(n):
        f = python_subtask_increment
        for _ in range(n):
            f()

    def functional_explicit(n):
        f = tasker.subtask_increment
        rid = run.run_id
        for _ in range(n):
            f(run_id=rid, subtask_number=fn_number)

    def tqdm_update(n):
        b = bar
        for _ in range(n):
            b.update(1)

    cases = [
        ("empty loop (overhead)", empty_loop),
        ("empty Python method call", python_method),
        ("trivial PyO3 method call", pyo3_method),
        ("st.increment()", increment),
        ("st.update(items_complete=i)", update),
        ("subtask_increment() (functional)", functional),
        ("same, in Python (before: for comparison)", functional_python),
        ("subtask_increment(run_id=, subtask_number=)", functional_explicit),
    ]
    if bar is not None:
        cases.append(("tqdm.update(1) to /dev/null", tqdm_update))

    best = best_ns_per_call(cases, args.calls, args.repeat)
    results = [(name, best[name]) for name, _ in cases]

    ref = dict(results)["trivial PyO3 method call"]
    before = tracker.subtasks(run.run_id)
    print(f"tasker {tasker.__version__}, Python {sys.version.split()[0]}, "
          f"{args.calls:,} calls x best of {args.repeat}")
    print()
    print(f"| {'call':<45} | {'ns/call':>8} | {'x PyO3 call':>11} |")
    print(f"|{'-' * 47}|{'-' * 10}|{'-' * 13}|")
    for name, ns in results:
        print(f"| {name:<45} | {ns:8.1f} | {ns / ref:11.2f} |")
    inc = dict(results)["st.increment()"]
    print()
    print(f"st.increment() / trivial PyO3 call = {inc / ref:.2f} (target <= 2)")
    fn = dict(results)["subtask_increment() (functional)"]
    print(f"subtask_increment() / st.increment() = {fn / inc:.2f} (target <= 3;"
          f" in Python it was {dict(results)['same, in Python (before: for comparison)'] / inc:.2f})")
    if bar is not None:
        print(f"st.increment() / tqdm.update(1)    = {inc / dict(results)['tqdm.update(1) to /dev/null']:.2f} (target < 1)")
    stats = tracker._native.stats()
    print(f"database: {stats[0]} progress transactions for all of the above "
          f"(items stored: {[s.items_complete for s in before]})")
    if bar is not None:
        bar.close()
    devnull.close()
    run.complete()
    tracker.close()


if __name__ == "__main__":
    main()
