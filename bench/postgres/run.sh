#!/usr/bin/env bash
# PostgreSQL benchmark: starts a throwaway server (tests/pg.sh) and runs the
# ignored test core/tests/pg_bench.rs, in release mode unless BENCH_PROFILE=dev.
# Prints: a transition through tasker next to a raw UPDATE round trip,
# progress calls/s and database transactions/s with 16 processes incrementing,
# and the replay rate of writes queued while the server was stopped next to a
# raw batched INSERT.
# Knobs: TASKER_BENCH_N (transitions, 2000), TASKER_BENCH_SECONDS (5),
# TASKER_BENCH_PROCS (16). Not a test: it asserts only that counts are exact.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
profile=(--release)
[ "${BENCH_PROFILE:-release}" = dev ] && profile=()
source tests/pg.sh
pg_start
for bench in postgres_benchmark postgres_replay_benchmark; do
    cargo test -q "${profile[@]}" -p tasker-core --all-features --test pg_bench -- --ignored --nocapture --exact "$bench" 2>&1 \
        | grep -v '^running\|^test \|^$\|^test result'
done
