#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian 12 machine:
# system packages (R with the packages the R tests use, PostgreSQL server, Chromium,
# valgrind; RPostgres has no Debian package, so get_db_connection() is tested on SQLite
# and its PostgreSQL branch only for its "install RPostgres" error), the Rust toolchain check,
# and a Python virtualenv (.venv) with the test tools from scripts/requirements-test.txt.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    build-essential pkg-config valgrind cmake
    r-base-dev r-cran-testthat r-cran-roxygen2 r-cran-jsonlite r-cran-withr
    r-cran-dbi r-cran-rsqlite r-cran-callr r-cran-knitr r-cran-rmarkdown xz-utils
    r-cran-progressr r-cran-future r-cran-future.apply r-cran-furrr r-cran-logger r-cran-cli
    postgresql pgbouncer
    chromium chromium-driver
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || {
    echo "setup: cargo not found; install Rust from https://rustup.rs (rustc >= 1.89)" >&2
    exit 1
}

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.requirements-installed
if [ ! -f "$stamp" ] || ! cmp -s scripts/requirements-test.txt "$stamp"; then
    echo "setup: installing Python test tools into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
    cp scripts/requirements-test.txt "$stamp"
fi
