#!/usr/bin/env bash
# C layer: builds the example pipeline and the ABI test against the shared and the
# static libtasker, runs them, checks the stored data with an independent reader
# (Python's sqlite3), and runs both under valgrind memcheck.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
LIB="$CARGO_TARGET_DIR/debug"
OUT=build/c
mkdir -p "$OUT"
cargo build -q -p tasker-core

CFLAGS=(-Wall -Wextra -Werror -std=c11 -Iinclude)
for prog in examples/c/pipeline.c tests/c/abi_test.c; do
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
done
# Installed with a pkg-config file, as a C user would consume it.
TASKER_CARGO_PROFILE=dev bash scripts/install-c.sh "$tmp/prefix" >/dev/null
pc_flags=$(PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --cflags --libs tasker)
# shellcheck disable=SC2086
check "pkg-config build" gcc "${CFLAGS[@]}" examples/c/pipeline.c $pc_flags -o "$OUT/pipeline_pc"
check "pkg-config build runs" "$OUT/pipeline_pc" "sqlite://$tmp/pc.db" > /dev/null

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
else
    echo "valgrind missing: run scripts/setup.sh" >&2
    failed=$((failed + 1))
fi
echo "C: $passed passed, $failed failed"
[ "$failed" = 0 ]
