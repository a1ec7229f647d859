#!/usr/bin/env bash
# CLI layer: builds `tasker` and the tasker-fixture helper, writes a database with real
# data through the core API (the example pipeline, plus runs from other processes), runs
# the Rust tests of the command line (human output, --json, export, report, reap, purge),
# then the Python tests of `tasker serve`: /metrics through prometheus_client's parser,
# authentication, the JSON API and server-sent events, and the dashboard in headless
# Chromium (selenium + /usr/bin/chromedriver; screenshots in build/).
# Run from anywhere after scripts/setup.sh; ends with pytest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export NO_COLOR=1

cargo build -q -p tasker-cli --bins --examples
mkdir -p build

# A demo database written by another process, and the CLI reading it.
DEMO=build/cli-demo.db
rm -f "$DEMO" "$DEMO-wal" "$DEMO-shm"
"$CARGO_TARGET_DIR/debug/examples/tasker-fixture" populate "sqlite://$PWD/$DEMO"
"$CARGO_TARGET_DIR/debug/tasker" --db "$DEMO" status
"$CARGO_TARGET_DIR/debug/tasker" --db "$DEMO" report --html build/cli-report.html

cargo test -q -p tasker-cli

# A database written by the C example pipeline (another language, another process),
# read by the CLI in tests/cli/test_example_db.py.
if command -v gcc >/dev/null; then
    cargo build -q -p tasker-core --all-features
    mkdir -p build/cli
    gcc -std=c11 -Iinclude examples/c/pipeline.c -L"$CARGO_TARGET_DIR/debug" -ltasker -lm \
        -Wl,-rpath,"$CARGO_TARGET_DIR/debug" -o build/cli/c_pipeline
    rm -f build/cli/c-example.db build/cli/c-example.db-wal build/cli/c-example.db-shm
    build/cli/c_pipeline "sqlite://$PWD/build/cli/c-example.db" >/dev/null
    export TASKER_C_EXAMPLE_DB="$PWD/build/cli/c-example.db"
fi

.venv/bin/python - <<'PY' || .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
import selenium, prometheus_client  # noqa: F401
PY
# PostgreSQL too, when it is installed: a throwaway server (tests/pg.sh) for test_postgres.py.
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    source tests/pg.sh
    pg_start >/dev/null
fi
.venv/bin/pytest -q -p no:cacheprovider tests/cli
