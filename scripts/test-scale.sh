#!/usr/bin/env bash
# Scale layer: a throwaway PostgreSQL with max_connections = 20 and PgBouncer in
# transaction mode (pool of 10) in front (tests/pg.sh, tests/pgbouncer.sh). Runs the
# store suite through PgBouncer, then 200 tracked C, Python and R processes through
# it, through it with a server restart, and straight to the server (tests/scale).
# Builds what it needs if the earlier layers did not.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export TASKER_CARGO_PROFILE="${TASKER_CARGO_PROFILE:-dev}"
LIB="$CARGO_TARGET_DIR/debug"
OUT=build/scale
RLIB="$PWD/build/Rlib"
mkdir -p "$OUT" "$RLIB"

cargo build -q -p tasker-core --all-features
gcc -Wall -Wextra -Werror -std=c11 -Iinclude tests/scale/worker.c -L"$LIB" -ltasker \
    -Wl,-rpath,"$LIB" -o "$OUT/worker"
export TASKER_SCALE_C_WORKER="$PWD/$OUT/worker"
# The Python package of this tree (quick when it is current).
(. .venv/bin/activate && maturin develop -q) >/dev/null 2>&1 \
    || { echo "maturin develop failed" >&2; exit 1; }
if [ ! -d "$RLIB/tasker" ]; then
    R CMD INSTALL --no-multiarch --clean -l "$RLIB" bindings-r >/dev/null
fi
export R_LIBS="$RLIB${R_LIBS:+:$R_LIBS}"

source tests/pg.sh
PG_MAX_CONNECTIONS=20 pg_start
source tests/pgbouncer.sh
pgbouncer_start
trap 'pgbouncer_stop; pg_stop' EXIT
echo "test-scale: PostgreSQL on $PGPORT (max_connections 20), PgBouncer on $TASKER_BOUNCER_PORT (pool 10)"

status=0
echo "--- the store suite through PgBouncer"
TASKER_PG_URL="host=127.0.0.1 port=$TASKER_BOUNCER_PORT user=postgres dbname=postgres sslmode=disable pooler=transaction" \
    cargo test -q -p tasker-core --all-features --test store_suite on_postgres:: -- --include-ignored 2>&1 | tail -n 3 || status=1
echo "--- 200 processes"
.venv/bin/python -m pytest -q -p no:cacheprovider -s tests/scale || status=1
if [ "$status" != 0 ]; then
    echo "test-scale: FAILED; the last lines of the logs:" >&2
    tail -n 15 "$TASKER_PG_DIR/server.log" >&2 || true
    tail -n 15 "$TASKER_BOUNCER_DIR/pgbouncer.log" >&2 || true
fi
exit "$status"
