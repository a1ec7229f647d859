#!/usr/bin/env bash
# Benchmark of the CLI (status, stats, history --host, show, export) and of `tasker serve`
# (status, runs by host and by id, /metrics, /healthz under load) on a large database:
# 100,000 runs, 1,000,000 events, 50 active runs (override with RUNS, EVENTS_PER_RUN,
# ACTIVE, N; OUT for another directory; RUNS=1000000 OUT=build/bench-cli-1m for the
# million-run point). The baseline measured in the same run is `SELECT count(*) FROM runs`.
# PROFILE=release measures an optimised build (default: debug, like the tests).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
RUNS="${RUNS:-100000}" EVENTS_PER_RUN="${EVENTS_PER_RUN:-10}" ACTIVE="${ACTIVE:-50}" N="${N:-200}"
PROFILE="${PROFILE:-debug}"
if [ "$PROFILE" = release ]; then
    cargo build -q --release -p tasker-cli --bins --examples
else
    cargo build -q -p tasker-cli --bins --examples
fi
BIN="$CARGO_TARGET_DIR/$PROFILE"
OUT="${OUT:-build/bench-cli}"
mkdir -p "$OUT"
DB="$OUT/bench.db"
if [ ! -f "$DB" ] || [ "${REGEN:-0}" = 1 ]; then
    rm -f "$DB" "$DB-wal" "$DB-shm"
    "$BIN/examples/tasker-fixture" populate "sqlite://$PWD/$DB" # creates the schema
    start=$SECONDS
    # From 500,000 runs the rows are made inside SQLite (gen_sql.py, the same shape):
    # Python row by row would take minutes.
    if [ "$RUNS" -ge 500000 ] || [ "${GEN:-}" = sql ]; then
        python3 bench/cli/gen_sql.py "$DB" "$RUNS" "$EVENTS_PER_RUN" "$ACTIVE"
    else
        python3 bench/cli/gen.py "$DB" "$RUNS" "$EVENTS_PER_RUN" "$ACTIVE"
    fi
    echo "generated in $((SECONDS - start)) s"
fi
echo "profile: $PROFILE; $(nproc) cores; $(date -u +%FT%TZ)"
python3 bench/cli/measure.py "$BIN/tasker" "$DB" "$N" | tee "$OUT/results.txt"
python3 bench/cli/pages.py "$BIN/tasker" "$DB" "${PAGES_N:-11}" | tee -a "$OUT/results.txt"
