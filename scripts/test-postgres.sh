#!/usr/bin/env bash
# PostgreSQL layer: starts a throwaway server (tests/pg.sh: TLS on, password auth
# for every user but postgres), then runs the shared store suite on SQLite and
# PostgreSQL, the dependency and DAG tests on both, and the PostgreSQL-only tests
# (many hosts, TLS, bad credentials).
# Works as root on a fresh Debian 12 once scripts/setup.sh installed postgresql.
# Extra arguments go to cargo test (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
source tests/pg.sh
pg_start
echo "test-postgres: throwaway PostgreSQL on 127.0.0.1:$PGPORT ($TASKER_PG_DIR)"
tests=(--test store_suite --test run_logs --test dag --test alerts --test listeners)
for f in core/tests/pg_*.rs; do
    # pg_bench holds benchmarks (bench/postgres/run.sh), not tests.
    [ "$f" = core/tests/pg_bench.rs ] && continue
    [ -e "$f" ] && tests+=(--test "$(basename "$f" .rs)")
done
status=0
# The PostgreSQL tests are #[ignore]d (skipped where no server is started): this
# layer starts one and runs them, and they fail, not pass, if it cannot be reached.
cargo test -p tasker-core --all-features "${tests[@]}" -- --include-ignored "$@" 2>&1 | tee "$TASKER_PG_DIR/cargo-test.log" || status=$?
if [ "$status" != 0 ]; then
    echo "test-postgres: FAILED; the last lines of the server log:" >&2
    tail -n 30 "$TASKER_PG_DIR/server.log" >&2 || true
fi
# cargo prints one summary per test binary; end with the totals of all of them.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "postgres: %d passed, %d failed\n", p, f }' "$TASKER_PG_DIR/cargo-test.log"
exit "$status"
