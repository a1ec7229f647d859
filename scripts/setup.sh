#!/usr/bin/env bash
# Installs what the demo and the tests need on a fresh Debian 12 machine: system
# packages (R with the packages the R tests use, PostgreSQL server, Chromium, valgrind;
# RPostgres has no Debian package, so get_db_connection() is tested on SQLite and its
# PostgreSQL branch only for its "install RPostgres" error), the Rust toolchain check,
# and a Python virtualenv (.venv) with the test tools from scripts/requirements-test.txt.
#
# `scripts/setup.sh` sets up every layer (what .ci/run needs); `scripts/setup.sh python
# cli` only what those test layers need (scripts/test.sh passes the layers it runs), so
# a contributor to one package does not install R, PostgreSQL and Chromium first.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_LAYERS=(rust c python r r-dist dist cli postgres outage scale)
BASE_PACKAGES=(build-essential pkg-config)
R_PACKAGES=(
    r-base-dev r-cran-testthat r-cran-roxygen2 r-cran-jsonlite r-cran-withr
    r-cran-dbi r-cran-rsqlite r-cran-callr r-cran-knitr r-cran-rmarkdown xz-utils
    r-cran-progressr r-cran-future r-cran-future.apply r-cran-furrr r-cran-logger r-cran-cli
)
# What each layer needs beyond the base: Debian packages, "R" (R_PACKAGES) and
# "venv" (the Python virtualenv).
declare -A LAYER_NEEDS=(
    [rust]=""
    [c]="valgrind cmake"
    [python]="venv graphviz"
    [r]="R postgresql"
    [r-dist]="R postgresql"
    [dist]="venv valgrind cmake"
    [cli]="venv postgresql chromium chromium-driver graphviz"
    [postgres]="postgresql"
    [outage]="venv R postgresql"
    [scale]="venv R postgresql pgbouncer"
)

layers=("$@")
[ "${#layers[@]}" -gt 0 ] || layers=("${ALL_LAYERS[@]}")
APT_PACKAGES=("${BASE_PACKAGES[@]}")
want_venv=0
for layer in "${layers[@]}"; do
    [ -n "${LAYER_NEEDS[$layer]+set}" ] || { echo "setup: no such layer: $layer (layers: ${ALL_LAYERS[*]})" >&2; exit 2; }
    for need in ${LAYER_NEEDS[$layer]}; do
        case "$need" in
            R) APT_PACKAGES+=("${R_PACKAGES[@]}") ;;
            venv) want_venv=1 ;;
            *) APT_PACKAGES+=("$need") ;;
        esac
    done
done

missing=()
for p in $(printf '%s\n' "${APT_PACKAGES[@]}" | sort -u); do
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

[ "$want_venv" = 1 ] || exit 0
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
