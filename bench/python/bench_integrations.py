#!/usr/bin/env python3
"""Cost of tasker's integrations with logging and tqdm, each next to its baseline
measured in the same run.

1. A logging call (``logger.info("item %d done", i)``) reaching a
   ``tasker.LogHandler`` (the line goes to the current run's log), next to the same
   call reaching a ``logging.NullHandler``. Target (issue 16): <= 2x.
2. Iterating ``tasker.tqdm(range(N))`` (a tqdm bar that also counts into a subtask)
   next to iterating ``tqdm.tqdm(range(N))``, both drawing to the null device with
   tqdm's default redraw interval. Target (issue 16): <= 1.2x.

    . .venv/bin/activate && maturin develop --release   # the numbers mean little in debug
    python bench/python/bench_integrations.py [--calls 100000] [--repeat 15]

Each figure is the best of --repeat timed loops; the cases take turns, one loop each
per round, so that a change in the machine's load hits every case alike.
"""
import argparse
import logging
import os
import sys
import tempfile
import time

import tasker


def best_ns(cases, calls, repeat):
    best = {name: float("inf") for name, _ in cases}
    for _ in range(repeat):
        for name, loop in cases:
            t0 = time.perf_counter_ns()
            loop(calls)
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / calls)
    return best


def report(title, best, base):
    print(title)
    for name, ns in best.items():
        print(f"  {name:<34} {ns:9.1f} ns/call  {ns / best[base]:5.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    db = os.path.join(tempfile.mkdtemp(prefix="tasker-bench-"), "bench.db")
    # Enough log lines kept that no drop marker work is skipped or added mid-run.
    tracker = tasker.connect("sqlite://" + db, max_log_lines=10_000)
    run = tracker.task("bench", "integrations")
    with run:
        null_logger = logging.getLogger("bench.null")
        null_logger.propagate = False
        null_logger.setLevel(logging.INFO)
        null_logger.addHandler(logging.NullHandler())
        tk_logger = logging.getLogger("bench.tasker")
        tk_logger.propagate = False
        tk_logger.setLevel(logging.INFO)
        tk_logger.addHandler(tasker.LogHandler())

        def null_loop(n, info=null_logger.info):
            for i in range(n):
                info("item %d done", i)

        def tasker_loop(n, info=tk_logger.info):
            for i in range(n):
                info("item %d done", i)

        def run_log_loop(n, log=run.log):
            for i in range(n):
                log(20, "item %d done" % i)

        best = best_ns(
            [("logging -> NullHandler", null_loop), ("logging -> tasker.LogHandler", tasker_loop),
             ("run.log(20, text) directly", run_log_loop)],
            args.calls, args.repeat)
        report(f"logging call ({args.calls} calls, best of {args.repeat})", best, "logging -> NullHandler")
        ratio_log = best["logging -> tasker.LogHandler"] / best["logging -> NullHandler"]

        try:
            import tqdm as tqdm_module
        except ImportError:
            print("tqdm: not installed, skipped")
            ratio_tqdm = None
        else:
            devnull = open(os.devnull, "w")
            n_iter = args.calls * 10

            def plain(n):
                for _ in tqdm_module.tqdm(range(n), file=devnull):
                    pass

            def ours(n):
                for _ in tasker.tqdm(range(n), file=devnull, run=run, name="bench"):
                    pass

            best = best_ns([("tqdm.tqdm iteration", plain), ("tasker.tqdm iteration", ours)], n_iter, args.repeat)
            report(f"tqdm iteration ({n_iter} items per loop, best of {args.repeat})", best, "tqdm.tqdm iteration")
            ratio_tqdm = best["tasker.tqdm iteration"] / best["tqdm.tqdm iteration"]
            counted = sum(s.items_complete for s in run.subtasks() if s.subtask_name == "bench")
            expected = n_iter * args.repeat
            print(f"  items counted by tasker.tqdm subtasks: {counted} (expected {expected})")
            if counted != expected:
                print("  COUNT MISMATCH", file=sys.stderr)
                sys.exit(1)

    print(f"targets: LogHandler <= 2x NullHandler: {ratio_log:.2f}x"
          + ("" if ratio_tqdm is None else f"; tasker.tqdm <= 1.2x tqdm: {ratio_tqdm:.2f}x"))
    tracker.close()


if __name__ == "__main__":
    main()
