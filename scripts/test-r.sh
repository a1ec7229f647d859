#!/usr/bin/env bash
# R layer: installs the package into build/Rlib (debug Rust build, shared target dir),
# checks that the generated .Call wrappers are up to date, runs the testthat suite
# against the installed package and prints one closing line: "R: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export TASKER_CARGO_PROFILE="${TASKER_CARGO_PROFILE:-dev}"
export TASKER_REPO_ROOT="$PWD"
LIB="$PWD/build/Rlib"
mkdir -p "$LIB"

fail() { echo "$1" >&2; echo "R: 0 passed, 1 failed"; exit 1; }

# The cross-language tests link the C reader against target/debug/libtasker.so.
cargo build -q -p tasker-core --all-features || fail "cargo build -p tasker-core failed"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --clean leaves bindings-r/src as it was (no .o/.so for R CMD check to trip over).
if ! R CMD INSTALL --no-multiarch --clean -l "$LIB" bindings-r >"$log" 2>&1; then
    cat "$log" >&2
    fail "R CMD INSTALL bindings-r failed"
fi

# The wrappers in R/extendr-wrappers.R must match the compiled library.
R_LIBS="$LIB" Rscript bindings-r/tools/make-wrappers.R bindings-r || fail "make-wrappers.R failed"
if ! git diff --exit-code -- bindings-r/R/extendr-wrappers.R; then
    fail "bindings-r/R/extendr-wrappers.R is stale: run Rscript bindings-r/tools/make-wrappers.R and commit it"
fi

# A throwaway PostgreSQL server for the SQLite/PostgreSQL comparison, when installed.
if [ -f tests/pg.sh ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    # shellcheck source=/dev/null
    source tests/pg.sh
    if pg_start >/dev/null 2>&1; then
        trap 'rm -f "$log"; pg_stop' EXIT
    else
        echo "test-r: could not start PostgreSQL; its tests are skipped" >&2
        unset TASKER_PG_URI
    fi
fi

export R_LIBS="$LIB${R_LIBS:+:$R_LIBS}"
# The optional packages the integrations are tested with (scripts/setup.sh installs
# them): a missing one fails the layer here, and fails (not skips) its tests.
export TASKER_TEST_REQUIRE_PACKAGES="${TASKER_TEST_REQUIRE_PACKAGES-progressr future future.apply furrr logger cli}"
missing_pkgs=$(Rscript -e 'p <- strsplit(Sys.getenv("TASKER_TEST_REQUIRE_PACKAGES"), "[ ,]+")[[1]]; p <- p[nzchar(p)]; cat(p[!vapply(p, requireNamespace, TRUE, quietly = TRUE)])')
[ -z "$missing_pkgs" ] || fail "R packages missing: $missing_pkgs (run scripts/setup.sh)"
# Never the user's database: every test configures its own file, and this is a
# throwaway default for anything that would fall back to it.
export XDG_DATA_HOME="$(mktemp -d)"
export XDG_CONFIG_HOME="$XDG_DATA_HOME"
unset TASKER_DB_URL TASKER_DB_PATH TASKER_DB_DRIVER TASKER_DB_HOST TASKER_DB_NAME
Rscript -e 'r <- as.data.frame(testthat::test_dir("bindings-r/tests/testthat", package = "tasker", load_package = "installed", stop_on_failure = FALSE, reporter = "summary")); f <- sum(r$failed) + sum(r$error); cat(sprintf("R: %d passed, %d failed\n", sum(r$passed), f)); quit(status = as.integer(f > 0))'
status=$?
rm -rf "$XDG_DATA_HOME"
exit $status
