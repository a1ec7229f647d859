#!/usr/bin/env bash
# DAG benchmark: 1,000 tasks with dependencies and 100,000 runs (override TASKS, RUNS,
# N; OUT for another directory): p50/p95 of `tasker dag` and GET /api/v1/dag, next to
# `tasker status --json` and GET /api/v1/tasks measured in the same run.
# PROFILE=release measures an optimised build (default: debug, like the tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
TASKS="${TASKS:-1000}" RUNS="${RUNS:-100000}" N="${N:-50}"
PROFILE="${PROFILE:-debug}"
if [ "$PROFILE" = release ]; then
    cargo build -q --release -p tasker-cli --bins --examples
else
    cargo build -q -p tasker-cli --bins --examples
fi
BIN="$CARGO_TARGET_DIR/$PROFILE"
OUT="${OUT:-build/bench-dag}"
mkdir -p "$OUT"
DB="$OUT/dag.db"
if [ ! -f "$DB" ] || [ "${REGEN:-0}" = 1 ]; then
    rm -f "$DB" "$DB-wal" "$DB-shm"
    "$BIN/examples/tasker-fixture" register "sqlite://$PWD/$DB" '[]' # creates the schema
    python3 bench/cli/dag_gen.py "$DB" "$TASKS" "$RUNS"
fi
echo "profile: $PROFILE; $(nproc) cores; $(date -u +%FT%TZ)"
python3 bench/cli/dag_measure.py "$BIN/tasker" "$DB" "$N" | tee "$OUT/results.txt"
