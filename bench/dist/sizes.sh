#!/usr/bin/env bash
# What each Cargo feature of the core costs in size: libtasker.so (release, debug info
# stripped as scripts/install-c.sh installs it) for sqlite, sqlite+postgres,
# sqlite+server and all three, and the Python wheel for sqlite, sqlite+postgres and
# all (the wheel's `server` feature brings the command line, which needs PostgreSQL).
#
#   bash bench/dist/sizes.sh        (release builds in the repository's target dir)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "libtasker.so (release, strip --strip-debug), by features of tasker-core:"
for features in sqlite "sqlite postgres" "sqlite server" "sqlite postgres server"; do
    cargo rustc -q --release -p tasker-core --lib --no-default-features --features "$features" \
        --crate-type cdylib 2>/dev/null
    cp "$CARGO_TARGET_DIR/release/libtasker.so" "$out/lib.so"
    strip --strip-debug "$out/lib.so"
    printf '  %-24s %6d KiB\n' "${features// /+}" "$(( $(stat -c %s "$out/lib.so") / 1024 ))"
done

echo "Python wheel (maturin build --release), by features of tasker-python:"
for flags in "--no-default-features" "--no-default-features --features postgres" ""; do
    rm -rf "$out/wheel"
    # shellcheck disable=SC2086
    .venv/bin/maturin build -q --release --locked --offline $flags --out "$out/wheel" >/dev/null 2>&1
    name=${flags:-default (postgres, server: the wheel users get)}
    printf '  %-44s %6d KiB\n' "$name" "$(( $(stat -c %s "$out"/wheel/*.whl) / 1024 ))"
done
