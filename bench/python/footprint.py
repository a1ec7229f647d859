#!/usr/bin/env python3
"""What the installed Python package costs: wheel size, installed size, import time
(next to ``import json``, measured in the same run) and the resident memory that
``import tasker; tasker.connect()`` on SQLite adds to a bare interpreter.

    python bench/python/footprint.py [--wheel dist/tasker-*.whl] [--runs 21]

Every figure comes from fresh interpreters (``python -X importtime``, /proc/self/status),
so nothing is cached in the measuring process. Run with the interpreter whose
environment has tasker installed (scripts/test-dist.sh uses a fresh venv).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Sequence

TARGET_IMPORT_MS = 20.0
TARGET_RSS_MB = 10.0


def import_ms(module: str, runs: int, parts_of: Sequence[str] = ()) -> Dict[str, List[float]]:
    """Cumulative import time of `module` (and of the modules in `parts_of`, imported on
    the way) in fresh interpreters, as -X importtime reports it."""
    times: Dict[str, List[float]] = {m: [] for m in (module, *parts_of)}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        for line in out.splitlines():
            # "import time:   self [us] | cumulative | imported package"
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[2] in times:
                times[parts[2]].append(int(parts[1]) / 1000.0)
    for m, t in times.items():
        if len(t) != runs:
            raise SystemExit(f"footprint: -X importtime did not report {m} in every run")
    return times


RSS_SCRIPT = r"""
import sys
def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
before = rss_kb()
imported = connected = before
if sys.argv[1] == "tasker":
    import tasker
    imported = rss_kb()
    # What the target measures: import tasker; tasker.connect() (which opens the file).
    t = tasker.connect("sqlite://" + sys.argv[2])
    connected = rss_kb()
    # Reported beside it: a first query, which loads the records (dataclasses).
    t.stages()
print(before, connected, imported, rss_kb())
"""


def rss_mb(what: str, db: str, runs: int) -> List[float]:
    """MB added by import + connect() in each run, then (last two) the medians of the
    MB added by the import alone and by import + connect() + a first query."""
    added, by_import, with_query = [], [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, what, db], capture_output=True, text=True, check=True
        ).stdout.split()
        added.append((int(out[1]) - int(out[0])) / 1024.0)
        by_import.append((int(out[2]) - int(out[0])) / 1024.0)
        with_query.append((int(out[3]) - int(out[0])) / 1024.0)
    return added + [statistics.median(by_import), statistics.median(with_query)]


def bare_rss_mb() -> float:
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, "bare", ""], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[1]) / 1024.0


def installed_kib() -> float:
    dist = importlib.metadata.distribution("tasker")
    total = 0
    for f in dist.files or []:
        path = dist.locate_file(f)
        if os.path.isfile(path):
            total += os.path.getsize(path)
    return total / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help="the wheel file, for its size")
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()

    print(f"footprint: Python {sys.version.split()[0]}, tasker {importlib.metadata.version('tasker')}")
    if args.wheel:
        print(f"  wheel size:      {os.path.getsize(args.wheel) / 1024:8.0f} KiB  ({os.path.basename(args.wheel)})")
    print(f"  installed size:  {installed_kib():8.0f} KiB  (files of the installed distribution)")

    json_ms = statistics.median(import_ms("json", args.runs)["json"])
    # Where the time goes: the native module and the Python layer (the records,
    # logging, multiprocessing and typing are loaded on first use, not here).
    parts = ("tasker._tasker", "tasker._core", "tasker._functional")
    t = {m: statistics.median(v) for m, v in import_ms("tasker", args.runs, parts).items()}
    tasker_ms = t["tasker"]
    verdict = "meets" if tasker_ms <= TARGET_IMPORT_MS else "misses"
    print(
        f"  import time:     tasker {tasker_ms:.1f} ms, json {json_ms:.1f} ms in the same run "
        f"({tasker_ms / json_ms:.1f}x; median of {args.runs} fresh interpreters; "
        f"{verdict} the {TARGET_IMPORT_MS:.0f} ms target)"
    )
    print("                   of which " + ", ".join(f"{m} {t[m]:.1f} ms" for m in parts))

    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "footprint.db")
        base = statistics.median(rss_mb("bare", db, args.runs)[:-2])
        measured = rss_mb("tasker", db, args.runs)
        added, by_import, with_query = statistics.median(measured[:-2]), measured[-2], measured[-1]
    verdict = "meets" if added <= TARGET_RSS_MB else "misses"
    print(
        f"  resident memory: import tasker + connect() (SQLite) adds {added:.1f} MB to a bare "
        f"interpreter of {bare_rss_mb():.1f} MB (no-op script: +{base:.1f} MB; "
        f"{verdict} the {TARGET_RSS_MB:.0f} MB target)"
    )
    print(f"                   of which import tasker {by_import:.1f} MB, connect() {added - by_import:.1f} MB")
    print(f"                   a first query (t.stages(), loading the records) brings it to {with_query:.1f} MB")


if __name__ == "__main__":
    main()
