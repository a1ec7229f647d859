#!/usr/bin/env bash
# Builds libtasker in release and runs the C benchmarks: progress calls
# (bench/c/bench_progress.c) and tasker_log (bench/c/bench_log.c).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build -q --release -p tasker-core --all-features
mkdir -p build/bench
cc -O2 -std=c11 -Iinclude bench/c/bench_progress.c "$CARGO_TARGET_DIR/release/libtasker.a" -lm -lpthread -ldl -o build/bench/bench_progress_c
db=$(mktemp -d)/bench.db
build/bench/bench_progress_c "sqlite://$db"
cc -O2 -std=c11 -Iinclude bench/c/bench_log.c "$CARGO_TARGET_DIR/release/libtasker.a" -lm -lpthread -ldl -o build/bench/bench_log_c
build/bench/bench_log_c "sqlite://$(dirname "$db")/bench-log.db"
