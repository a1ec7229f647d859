#!/usr/bin/env bash
# Outage layer: Python, R and C processes share one run while a throwaway PostgreSQL
# server (tests/pg.sh) is stopped for 5 s and started again (tests/outage), and an R
# script killed mid-run raises one LOST alert (tests/python/test_alerts.py). Builds
# what it needs if the earlier layers did not: the C worker against the debug
# libtasker, the Python package in .venv, the R package in build/Rlib.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export TASKER_CARGO_PROFILE="${TASKER_CARGO_PROFILE:-dev}"
LIB="$CARGO_TARGET_DIR/debug"
OUT=build/outage
RLIB="$PWD/build/Rlib"
mkdir -p "$OUT" "$RLIB"

cargo build -q -p tasker-core --all-features
gcc -Wall -Wextra -Werror -std=c11 -Iinclude tests/outage/worker.c -L"$LIB" -ltasker \
    -Wl,-rpath,"$LIB" -o "$OUT/worker"
export TASKER_OUTAGE_C_WORKER="$PWD/$OUT/worker"
gcc -Wall -Wextra -Werror -std=c11 -Iinclude tests/outage/log_worker.c -L"$LIB" -ltasker \
    -Wl,-rpath,"$LIB" -o "$OUT/log_worker"
export TASKER_OUTAGE_C_LOG_WORKER="$PWD/$OUT/log_worker"

# The Python package of this tree (quick when it is current).
(. .venv/bin/activate && maturin develop -q) >/dev/null 2>&1 \
    || { echo "maturin develop failed" >&2; exit 1; }
if [ ! -d "$RLIB/tasker" ]; then
    echo "--- installing the R package into build/Rlib"
    R CMD INSTALL --no-multiarch --clean -l "$RLIB" bindings-r >/dev/null
fi
export R_LIBS="$RLIB${R_LIBS:+:$R_LIBS}"

source tests/pg.sh
pg_start
echo "test-outage: throwaway PostgreSQL on 127.0.0.1:$PGPORT ($TASKER_PG_DIR)"
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider -s tests/outage || status=$?
# The LOST alert of a killed R script needs the R package, installed above (the
# Python layer, before the R layer, skips it).
TASKER_TEST_REQUIRE_R=1 .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/python/test_alerts.py -k sigkilled || status=$?
if [ "$status" != 0 ]; then
    echo "test-outage: FAILED; the last lines of the server log:" >&2
    tail -n 20 "$TASKER_PG_DIR/server.log" >&2 || true
fi
exit "$status"
