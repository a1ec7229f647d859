#!/usr/bin/env bash
# Python layer: builds the extension into .venv (debug profile), checks the type stubs
# against the module (mypy.stubtest) and the public API against the stubs (mypy
# --strict over the package and a file that calls every public signature), then runs
# pytest. Needs the .venv that scripts/setup.sh creates. Ends with pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
if [ ! -x .venv/bin/python ]; then
    echo "test-python: .venv is missing; run scripts/setup.sh first" >&2
    exit 1
fi
# shellcheck disable=SC1091
. .venv/bin/activate

echo "--- build (maturin develop, debug)"
maturin develop -q >/tmp/tasker-maturin.$$.log 2>&1 || { cat /tmp/tasker-maturin.$$.log >&2; rm -f /tmp/tasker-maturin.$$.log; exit 1; }
rm -f /tmp/tasker-maturin.$$.log

echo "--- stubs: mypy.stubtest tasker._tasker"
python -m mypy.stubtest tasker._tasker
echo "--- types: mypy --strict (package + every public signature)"
python -m mypy bindings-python/python/tasker tests/python/api_usage.py

echo "--- pytest"
exec python -m pytest -q -p no:cacheprovider tests/python
