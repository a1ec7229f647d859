#!/usr/bin/env bash
# PostgreSQL at scale: N tracked C processes (scale_worker.c, release build of
# libtasker) against a throwaway server (tests/pg.sh, max_connections 1100) with
# PgBouncer in transaction mode (pool of 10) in front (tests/pgbouncer.sh).
# Settings (label:processes): direct:20 pooled:20 pooled:200 pooled:1000 by
# default; pass others as arguments. Prints one JSON line per setting. Knobs:
# BENCH_SECONDS (busy phase, 12), BENCH_IDLE_SECONDS (idle phase, 8).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p tasker-core -p tasker-cli
export BENCH_TASKER="$CARGO_TARGET_DIR/release/tasker"
mkdir -p build/bench
gcc -O2 -Wall -std=c11 -Iinclude bench/postgres/scale_worker.c -L"$CARGO_TARGET_DIR/release" -ltasker \
    -Wl,-rpath,"$CARGO_TARGET_DIR/release" -o build/bench/scale_worker
export BENCH_WORKER="$PWD/build/bench/scale_worker"
ulimit -n 16384 2>/dev/null || true
source tests/pg.sh
PG_MAX_CONNECTIONS=1100 pg_start
source tests/pgbouncer.sh
pgbouncer_start
trap 'pgbouncer_stop; pg_stop' EXIT
settings=("$@")
[ "${#settings[@]}" -gt 0 ] || settings=(direct:20 pooled:20 direct:200 pooled:200 pooled:1000)
python3 bench/postgres/scale.py "${settings[@]}"
