#!/usr/bin/env bash
# Rust layer: formatting, lints, the header is current, and the core's tests
# (unit tests, integration tests on real SQLite files, multi-process and crash tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo fmt --all -- --check
cargo build -q --workspace --exclude tasker-r
cargo run -q -p gen-header -- --check
cargo clippy -q --workspace --exclude tasker-r --all-targets -- -D warnings
cargo test -q -p tasker-core 2>&1
