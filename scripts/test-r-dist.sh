#!/usr/bin/env bash
# R source tarball layer: builds tasker_<version>.tar.gz (bindings-r/tools/build-tarball.sh),
# installs it into a temporary library with the network unreachable (a release build of
# every vendored crate, from scratch), runs R CMD check on the tarball against that
# installation (no second compile; the tests are the next step), then runs the R test
# suite against it. Closing line: "R dist: N passed, N failed".
#
# The install runs in a network namespace without any interface (unshare -n) when this
# script may create one (root, or unprivileged user namespaces); otherwise it says so and
# installs with the network present: the build is still --offline --locked from the
# vendored crates.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export TASKER_REPO_ROOT="$root"
export PATH="$PATH:$HOME/.cargo/bin"

work=$(mktemp -d)
pg_started=""
cleanup() {
    [ -n "$pg_started" ] && pg_stop
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-r-dist: $1" >&2; echo "R dist: 0 passed, 1 failed"; exit 1; }

# Cargo must not reuse anything: its own target directory, inside $work, and no profile
# override from the caller (the tarball builds release by default).
unset CARGO_TARGET_DIR TASKER_CARGO_PROFILE

start=$SECONDS
tarball=$(bash bindings-r/tools/build-tarball.sh "$work/dist" | tail -1) || fail "building the tarball failed"
[ -f "$tarball" ] || fail "no tarball was built"
echo "test-r-dist: $(basename "$tarball") $(du -h "$tarball" | cut -f1) built in $((SECONDS - start)) s"

offline=()
if unshare -n true 2>/dev/null; then
    offline=(unshare -n)
elif unshare -rn true 2>/dev/null; then
    offline=(unshare -rn)
else
    echo "test-r-dist: cannot create a network namespace here; installing with the network present" >&2
fi

lib="$work/lib"
mkdir -p "$lib"
start=$SECONDS
if ! "${offline[@]}" env CARGO_TARGET_DIR="$work/target" \
        R CMD INSTALL --no-multiarch -l "$lib" "$tarball" >"$work/install.log" 2>&1; then
    tail -50 "$work/install.log" >&2
    fail "R CMD INSTALL of the tarball failed${offline:+ (network unreachable)}"
fi
echo "test-r-dist: installed${offline:+ offline} in $((SECONDS - start)) s; installed size $(du -sh "$lib/tasker" | cut -f1)"
rm -rf "$work/target"

# R CMD check on the tarball, using the installation above (--install=check:<log>).
# RPostgres may be missing (no Debian package): a suggested package that is not
# installed is a NOTE here, not an ERROR. The tests run in the next step.
start=$SECONDS
(cd "$work" && _R_CHECK_FORCE_SUGGESTS_=false "${offline[@]}" \
    R CMD check --no-manual --no-tests --install="check:$work/install.log" --library="$lib" "$tarball" \
    >"$work/check.log" 2>&1)
check_status=$?
mkdir -p build && cp "$work/check.log" build/r-dist-check.log # kept for reading the NOTEs
grep -E "(NOTE|WARNING|ERROR)$|^Status:" "$work/check.log" >&2
if [ "$check_status" -ne 0 ] || grep -qE "(WARNING|ERROR)$" "$work/check.log"; then
    cat "$work/check.log" >&2
    fail "R CMD check of the tarball reported an ERROR or a WARNING"
fi
echo "test-r-dist: R CMD check (no ERROR, no WARNING) in $((SECONDS - start)) s"

# A throwaway PostgreSQL server, as in scripts/test-r.sh.
if [ -f tests/pg.sh ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    # shellcheck source=/dev/null
    source tests/pg.sh
    if pg_start >/dev/null 2>&1; then
        pg_started=1
        trap cleanup EXIT # pg.sh sets its own EXIT trap; ours stops the server too
    else
        echo "test-r-dist: could not start PostgreSQL; its tests are skipped" >&2
        unset TASKER_PG_URI
    fi
fi

# The suite, against the installed tarball only (R_LIBS puts it before any other tasker).
export R_LIBS="$lib${R_LIBS:+:$R_LIBS}"
export XDG_DATA_HOME="$work/xdg"
export XDG_CONFIG_HOME="$work/xdg"
mkdir -p "$XDG_DATA_HOME"
unset TASKER_DB_URL TASKER_DB_PATH TASKER_DB_DRIVER TASKER_DB_HOST TASKER_DB_NAME
Rscript -e 'lib <- strsplit(Sys.getenv("R_LIBS"), ":")[[1]][[1]]; stopifnot(startsWith(normalizePath(system.file(package = "tasker")), normalizePath(lib))); r <- as.data.frame(testthat::test_dir("bindings-r/tests/testthat", package = "tasker", load_package = "installed", stop_on_failure = FALSE, reporter = "summary")); f <- sum(r$failed) + sum(r$error); cat(sprintf("R dist: %d passed, %d failed\n", sum(r$passed), f)); quit(status = as.integer(f > 0))'
