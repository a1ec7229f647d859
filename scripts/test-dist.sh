#!/usr/bin/env bash
# Dist layer: the packages as users install them, without the network and without Rust.
#
#  - builds the Python wheel (maturin build --release: abi3, manylinux tag from maturin's
#    own compliance check), installs it into a fresh venv whose PATH has no cargo or
#    rustc (pip --no-index; in a network namespace without interfaces when this script
#    may create one), runs the example pipeline, `tasker --version`, `tasker status`,
#    `python -m tasker`, `tasker serve` (curl /healthz, SIGTERM ends it cleanly) and the
#    dashboard from Python (tasker.serve(), twice);
#  - installs libtasker into a prefix (scripts/install-c.sh, release) and builds the
#    example pipeline against it with CMake and with pkg-config, runs both (one under
#    valgrind);
#  - prints the wheel size, installed size, import time next to `import json` and the
#    memory `import tasker; tasker.connect()` adds (bench/python/footprint.py).
#
# The builds share the repository's target directory (cargo --offline: the crates must
# be in cargo's cache, as after any earlier build). Ends with "dist: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_NET_OFFLINE=true

work=$(mktemp -d)
serve_pid=""
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
check() { # name, command...
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name" >&2; fi
}
fail() { echo "test-dist: $1" >&2; failed=$((failed + 1)); echo "dist: $passed passed, $failed failed"; exit 1; }

[ -x .venv/bin/maturin ] || fail ".venv/bin/maturin is missing: run scripts/setup.sh"

# --- the wheel
start=$SECONDS
if ! .venv/bin/maturin build --release --locked --offline --out "$work/wheelhouse" >"$work/wheel.log" 2>&1; then
    tail -n 40 "$work/wheel.log" >&2
    fail "maturin build --release failed"
fi
wheel=$(ls "$work"/wheelhouse/tasker-*.whl)
tag=$(basename "$wheel" .whl | cut -d- -f3-)
echo "test-dist: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB) built in $((SECONDS - start)) s"
check "the wheel is abi3 for CPython >= 3.9" test "${tag%%-*}-$(echo "$tag" | cut -d- -f2)" = "cp39-abi3"
check "the wheel has a manylinux tag" sh -c "echo '$tag' | grep -qE -- '-manylinux_2_[0-9]+_x86_64'"
check "the wheel holds one native module and no executable" sh -c \
    "python3 -m zipfile -l '$wheel' | awk '{print \$1}' | grep -E '\\.so\$|/scripts/' | tr '\\n' ' ' | grep -qxE 'tasker/_tasker[^ ]*\\.so '"

# --- a fresh venv, no Rust on PATH, no network
offline=()
if unshare -n true 2>/dev/null; then
    offline=(unshare -n)
elif unshare -rn true 2>/dev/null; then
    offline=(unshare -rn)
else
    echo "test-dist: cannot create a network namespace here; pip runs with --no-index only" >&2
fi
venv="$work/venv"
python3 -m venv "$venv" || fail "python3 -m venv failed"
clean_path="$venv/bin:/usr/bin:/bin"
check "no cargo or rustc on the venv's PATH" env PATH="$clean_path" sh -c '! command -v cargo && ! command -v rustc'
if ! "${offline[@]}" env PATH="$clean_path" pip install -q --no-index --disable-pip-version-check "$wheel" \
    >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    fail "pip install of the wheel failed${offline:+ (network unreachable)}"
fi
check "pip check" env PATH="$clean_path" pip check -q --disable-pip-version-check >/dev/null

# Everything below runs as a user of the wheel would: the venv's python and tasker
# script, a database of its own, the working directory outside the repository.
export XDG_DATA_HOME="$work/xdg/data" XDG_CONFIG_HOME="$work/xdg/config" XDG_STATE_HOME="$work/xdg/state"
unset TASKER_DB_URL TASKER_DB_PATH TASKER_DB_DRIVER TASKER_DB_HOST TASKER_DB_NAME TASKER_SERVE_TOKEN
db="$work/pipeline.db"
run() { (cd "$work" && "${offline[@]}" env PATH="$clean_path" TASKER_DB_URL="sqlite://$db" "$@"); }
# The servers run outside the network namespace (its loopback is down), and only on loopback.
run_local() { (cd "$work" && env PATH="$clean_path" TASKER_DB_URL="sqlite://$db" "$@"); }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
check "tasker --version is the workspace version" test "$(run tasker --version)" = "tasker $version"
check "python -m tasker --version" test "$(run python -m tasker --version)" = "tasker $version"
if run python "$root/examples/python/pipeline.py" >"$work/pipeline.out" 2>&1; then
    passed=$((passed + 1))
else
    cat "$work/pipeline.out" >&2
    echo "FAIL: the tracked example pipeline" >&2
    failed=$((failed + 1))
fi
run tasker status >"$work/status.out" 2>&1
check "tasker status shows the pipeline's runs" grep -q "COMPLETED" "$work/status.out"
run python -m tasker status --json >"$work/status.json" 2>&1
check "python -m tasker status --json" python3 -c "
import json, sys
views = json.load(open(sys.argv[1]))
assert isinstance(views, list) and views and '\"COMPLETED\"' in json.dumps(views), views
" "$work/status.json"
check "a usage error exits 2" sh -c "cd '$work' && PATH='$clean_path' tasker status --no-such-flag 2>/dev/null; test \$? = 2"

# tasker serve from the wheel (loopback; a port chosen by the system).
(cd "$work" && exec env PATH="$clean_path" TASKER_DB_URL="sqlite://$db" \
    tasker serve --bind 127.0.0.1:0 >"$work/serve.out" 2>&1) &
serve_pid=$!
url=""
for _ in $(seq 1 100); do
    url=$(sed -n 's|^tasker dashboard on \(http://[^ ]*/\) .*|\1|p' "$work/serve.out")
    [ -n "$url" ] && break
    sleep 0.1
done
if [ -n "$url" ]; then
    check "tasker serve answers /healthz" sh -c "curl -sf '${url}healthz' | grep -q '\"ok\"'"
    kill -TERM "$serve_pid"
    wait "$serve_pid"
    check "tasker serve stops cleanly on SIGTERM" test $? = 0
else
    cat "$work/serve.out" >&2
    echo "FAIL: tasker serve did not start" >&2
    failed=$((failed + 1))
fi
serve_pid=""

# The dashboard from Python, twice in one process, from the installed wheel.
check "tasker.serve() starts and stops twice" run_local python - <<'PY'
import json, urllib.request
import tasker
for _ in range(2):
    d = tasker.serve(port=0, open_browser=False)
    with urllib.request.urlopen(d.url + "healthz", timeout=10) as r:
        assert json.load(r)["status"] == "ok"
    d.stop()
    assert not d.running
PY

# --- the C library, installed into a prefix (release)
start=$SECONDS
if bash scripts/install-c.sh "$work/prefix" >"$work/install-c.log" 2>&1; then
    echo "test-dist: C prefix installed in $((SECONDS - start)) s; $(du -sh "$work/prefix/lib" | cut -f1) under lib/"
    if command -v cmake >/dev/null &&
        cmake -S examples/c/cmake -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" \
            -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 &&
        cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1; then
        check "CMake build (find_package(tasker)) runs" "$work/cmake/pipeline" "sqlite://$work/c1.db" >/dev/null
        check "CMake static build runs" "$work/cmake/pipeline_static" "sqlite://$work/c2.db" >/dev/null
    else
        cat "$work/cmake.log" >&2
        echo "FAIL: CMake build against the installed prefix" >&2
        failed=$((failed + 1))
    fi
    pc=$(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs tasker)
    # shellcheck disable=SC2086
    if gcc -std=c11 -Wall -Wextra -Werror examples/c/pipeline.c $pc -o "$work/pipeline_pc"; then
        check "pkg-config build runs" "$work/pipeline_pc" "sqlite://$work/c3.db" >/dev/null
        if command -v valgrind >/dev/null; then
            check "pkg-config build under valgrind" valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
                --errors-for-leak-kinds=definite "$work/pipeline_pc" "sqlite://$work/c4.db" >/dev/null
        else
            echo "FAIL: valgrind missing (scripts/setup.sh installs it)" >&2
            failed=$((failed + 1))
        fi
    else
        echo "FAIL: pkg-config build against the installed prefix" >&2
        failed=$((failed + 1))
    fi
else
    cat "$work/install-c.log" >&2
    echo "FAIL: scripts/install-c.sh" >&2
    failed=$((failed + 1))
fi

# --- numbers (reported, not judged: the machine is shared)
run python "$root/bench/python/footprint.py" --wheel "$wheel" || echo "test-dist: footprint benchmark failed" >&2

echo "dist: $passed passed, $failed failed"
[ "$failed" = 0 ]
