#!/usr/bin/env bash
# The main job: builds tasker, runs a real tracked demo pipeline on the embedded
# default database (SQLite under $XDG_DATA_HOME/tasker, or the database your
# TASKER_DB_URL / .tasker.yml names), then shows what it recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "demo: install Rust first (https://rustup.rs)" >&2; exit 1; }
command -v cc >/dev/null || { echo "demo: a C compiler is needed (apt-get install build-essential)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Release builds, as users install them (the tests use debug builds).
echo "demo: building libtasker and the tasker command, release (first time: a few minutes)"
cargo build -q --release -p tasker-core -p tasker-cli
LIB="$CARGO_TARGET_DIR/release"
mkdir -p build/c
cc -std=c11 -Iinclude examples/c/pipeline.c -L"$LIB" -ltasker -Wl,-rpath,"$LIB" -o build/c/pipeline

echo "demo: running the C pipeline (a million tracked items, a handled failure)"
build/c/pipeline > build/c/pipeline.out
head -n 1 build/c/pipeline.out

# The Python package, built into .venv (skipped with a note if Python tooling is missing).
if command -v python3 >/dev/null; then
    if { [ -x .venv/bin/python ] || python3 -m venv .venv; } &&
        { .venv/bin/python -c "import maturin" 2>/dev/null || .venv/bin/pip install -q "maturin>=1.9,<2"; } &&
        (. .venv/bin/activate && maturin develop -q --release >/dev/null 2>&1); then
        echo "demo: running the Python pipeline (worker processes, a retried step)"
        .venv/bin/python examples/python/pipeline.py 2>&1 | tail -n 5
    else
        echo "demo: Python package not built (python3-venv and PyPI access are needed); skipping it"
    fi
fi

echo
"$LIB/tasker" status || true
cat <<MSG

Next:
  $LIB/tasker watch        live view of running tasks
  $LIB/tasker serve        dashboard at http://127.0.0.1:8750
MSG
