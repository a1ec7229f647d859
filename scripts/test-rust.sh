#!/usr/bin/env bash
# Rust layer: formatting, lints, the header is current, the core's Cargo features (a
# SQLite-only build compiles and pulls in no PostgreSQL client, TLS or web server), and
# the core's tests (unit tests, integration tests on real SQLite files, multi-process
# and crash tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo fmt --all -- --check
cargo build -q --workspace --exclude tasker-r
cargo run -q -p gen-header -- --check
cargo clippy -q --workspace --exclude tasker-r --all-targets -- -D warnings
# The SQLite-only core (the default features): lint-clean, and without the crates of the
# other features in its dependency tree.
cargo clippy -q -p tasker-core --all-targets -- -D warnings
heavy=$(cargo tree -q -p tasker-core -e normal --prefix none | awk '{print $1}' |
    { grep -xE 'postgres|tokio-postgres|tokio|rustls|axum|hyper' || true; } | sort -u | tr '\n' ' ')
if [ -n "$heavy" ]; then
    echo "test-rust: the SQLite-only core depends on: $heavy" >&2
    exit 1
fi
cargo test -q -p tasker-core --all-features 2>&1
