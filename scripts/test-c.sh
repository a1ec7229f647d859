#!/usr/bin/env bash
# C layer: builds the example pipeline and the ABI test against the shared and the
# static libtasker, runs them, checks the stored data with an independent reader
# (Python's sqlite3), installs libtasker into a prefix (scripts/install-c.sh) and builds
# the example against it with pkg-config and with CMake, and runs the programs under
# valgrind memcheck.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
LIB="$CARGO_TARGET_DIR/debug"
OUT=build/c
mkdir -p "$OUT"
cargo build -q -p tasker-core --all-features

CFLAGS=(-Wall -Wextra -Werror -std=c11 -Iinclude)
for prog in examples/c/pipeline.c examples/c/log_callback.c tests/c/abi_test.c tests/c/serve_test.c tests/c/dag_test.c tests/c/listener_test.c; do
    name=$(basename "$prog" .c)
    gcc "${CFLAGS[@]}" "$prog" -L"$LIB" -ltasker -lm -Wl,-rpath,"$LIB" -o "$OUT/${name}_shared"
    gcc "${CFLAGS[@]}" "$prog" "$LIB/libtasker.a" -lm -lpthread -ldl -o "$OUT/${name}_static"
done
# The header also compiles as C++.
echo '#include "tasker.h"
int main() { return tasker_abi_version() == TASKER_ABI_VERSION ? 0 : 1; }' > "$OUT/cpp_check.cpp"
g++ -Wall -Werror -Iinclude "$OUT/cpp_check.cpp" -L"$LIB" -ltasker -Wl,-rpath,"$LIB" -o "$OUT/cpp_check"
"$OUT/cpp_check"

passed=0
failed=0
check() { # name, command...
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name" >&2; fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
verify() { # db file: the million increments and the handled failure are stored
    python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = dict(db.execute("SELECT subtask_name, items_complete FROM subtasks").fetchall())
status = dict(db.execute("SELECT subtask_name, status FROM subtasks").fetchall())
run = db.execute("SELECT status, total_subtasks FROM runs").fetchone()
ok = db.execute("PRAGMA integrity_check").fetchone()[0]
assert rows["count items"] == 1_000_000, rows
assert status == {"count items": "COMPLETED", "flaky step": "FAILED", "summarise": "COMPLETED"}, status
assert run == ("COMPLETED", 3), run
assert ok == "ok", ok
PY
}
for kind in shared static; do
    check "pipeline ($kind)" "$OUT/pipeline_$kind" "sqlite://$tmp/$kind.db" > "$tmp/$kind.out"
    check "pipeline ($kind) stored data" verify "$tmp/$kind.db"
    check "abi test ($kind)" "$OUT/abi_test_$kind" "sqlite://$tmp/abi_$kind.db"
    check "log callback ($kind)" "$OUT/log_callback_$kind" "sqlite://$tmp/log_$kind.db"
    check "dashboard server from C ($kind)" "$OUT/serve_test_$kind" "sqlite://$tmp/serve_$kind.db"
    check "dependencies and the DAG from C ($kind)" "$OUT/dag_test_$kind" "sqlite://$tmp/dag_$kind.db"
    check "listeners get the stored events ($kind)" "$OUT/listener_test_$kind" "sqlite://$tmp/listen_$kind.db"
done
# Installed as a C user gets it (scripts/install-c.sh; a debug build here, the dist layer
# installs the release build): the versioned shared library and its links, pkg-config and
# the CMake package, each building the example pipeline.
prefix="$tmp/prefix"
TASKER_CARGO_PROFILE=dev bash scripts/install-c.sh "$prefix" >/dev/null
abi=$(sed -n 's/^#define TASKER_ABI_VERSION //p' include/tasker.h)
check "installed SONAME is libtasker.so.$abi" \
    sh -c "readelf -d '$prefix/lib/libtasker.so' | grep -q 'SONAME.*\\[libtasker.so.$abi\\]'"
check "libtasker.so -> libtasker.so.$abi" test "$(readlink "$prefix/lib/libtasker.so")" = "libtasker.so.$abi"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check "pkg-config version" test "$(pkg-config --modversion tasker)" = \
    "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
pc_flags=$(pkg-config --cflags --libs tasker)
# Static: the archive from libdir, and the system libraries it needs (Libs.private).
pc_static=$(pkg-config --cflags tasker)" $(pkg-config --variable=libdir tasker)/libtasker.a "
pc_static+=$(pkg-config --static --libs-only-l tasker | sed 's/-ltasker\b//')
# shellcheck disable=SC2086
check "pkg-config build" gcc "${CFLAGS[@]}" examples/c/pipeline.c $pc_flags -o "$OUT/pipeline_pc"
# shellcheck disable=SC2086
check "pkg-config static build" gcc "${CFLAGS[@]}" examples/c/pipeline.c $pc_static -o "$OUT/pipeline_pc_static"
check "the static build needs no libtasker.so" \
    sh -c "! readelf -d '$OUT/pipeline_pc_static' | grep -q 'NEEDED.*libtasker'"
check "pkg-config static build runs" "$OUT/pipeline_pc_static" "sqlite://$tmp/pc_static.db" > /dev/null
check "the pkg-config build loads libtasker.so.$abi" \
    sh -c "readelf -d '$OUT/pipeline_pc' | grep -q 'NEEDED.*\\[libtasker.so.$abi\\]'"
check "pkg-config build runs" "$OUT/pipeline_pc" "sqlite://$tmp/pc.db" > /dev/null
check "pkg-config build stored data" verify "$tmp/pc.db"
if command -v cmake >/dev/null; then
    rm -rf "$OUT/cmake"
    if cmake -S examples/c/cmake -B "$OUT/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$tmp/cmake.log" 2>&1 &&
        cmake --build "$OUT/cmake" >>"$tmp/cmake.log" 2>&1; then
        passed=$((passed + 1))
        check "CMake build runs" "$OUT/cmake/pipeline" "sqlite://$tmp/cmake.db" > /dev/null
        check "CMake build stored data" verify "$tmp/cmake.db"
        check "CMake static build runs" "$OUT/cmake/pipeline_static" "sqlite://$tmp/cmake_static.db" > /dev/null
    else
        cat "$tmp/cmake.log" >&2
        echo "FAIL: CMake build against the installed package" >&2
        failed=$((failed + 1))
    fi
else
    echo "cmake missing: run scripts/setup.sh" >&2
    failed=$((failed + 1))
fi

# Metadata a C program records by itself: its executable as the script, the command
# line, and the commit of the git repository holding it, clean and then with a change.
metadata() { # repo dir, expected dirty flag (0/1)
    python3 - "$1" "$2" <<'PY'
import sqlite3, subprocess, sys
repo, dirty = sys.argv[1], int(sys.argv[2])
head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
db = sqlite3.connect(f"{repo}/meta.db")
row = db.execute("SELECT script_path, command_line, git_commit, git_dirty, runtime, tasker_version, user_name"
                 " FROM runs ORDER BY start_time DESC LIMIT 1").fetchone()
script, cmd, commit, is_dirty, runtime, version, user = row
assert script == f"{repo}/bin/pipeline", row
assert cmd.startswith(f"{repo}/bin/pipeline sqlite://"), row
assert commit == head, (row, head)
assert is_dirty == dirty, row
assert runtime is None and version and user, row
PY
}
if command -v git >/dev/null; then
    repo="$tmp/repo"
    mkdir -p "$repo/bin"
    cp examples/c/pipeline.c "$repo/"
    printf 'bin/\n*.db*\n' > "$repo/.gitignore"
    git -C "$repo" init -q && git -C "$repo" add -A &&
        git -C "$repo" -c user.name=t -c user.email=t@t commit -qm "pipeline"
    cp "$OUT/pipeline_shared" "$repo/bin/pipeline"
    "$repo/bin/pipeline" "sqlite://$repo/meta.db" > /dev/null
    check "C metadata, clean repository" metadata "$repo" 0
    echo "/* a local change */" >> "$repo/pipeline.c"
    "$repo/bin/pipeline" "sqlite://$repo/meta.db" > /dev/null
    check "C metadata, local changes" metadata "$repo" 1
else
    echo "git missing: the C metadata test needs it" >&2
    failed=$((failed + 1))
fi

if command -v valgrind >/dev/null; then
    VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite)
    check "pipeline under valgrind" "${VG[@]}" "$OUT/pipeline_shared" "sqlite://$tmp/vg.db" > /dev/null
    check "abi test under valgrind" "${VG[@]}" "$OUT/abi_test_shared" "sqlite://$tmp/vg_abi.db" > /dev/null
    check "dashboard server from C under valgrind" "${VG[@]}" "$OUT/serve_test_shared" "sqlite://$tmp/vg_serve.db" > /dev/null
    check "installed (pkg-config) under valgrind" "${VG[@]}" "$OUT/pipeline_pc" "sqlite://$tmp/vg_pc.db" > /dev/null
    check "installed (CMake) under valgrind" "${VG[@]}" "$OUT/cmake/pipeline" "sqlite://$tmp/vg_cmake.db" > /dev/null
else
    echo "valgrind missing: run scripts/setup.sh" >&2
    failed=$((failed + 1))
fi
echo "C: $passed passed, $failed failed"
[ "$failed" = 0 ]
