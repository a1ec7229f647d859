#!/usr/bin/env bash
# Runs every test of the project: sets up what is missing (scripts/setup.sh), then each
# layer's script (scripts/test-<layer>.sh) in turn, and prints one summary line.
# `scripts/test.sh cli c` runs only the layers named (and sets up only what they need).
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="$PWD/target"
export CARGO_TERM_COLOR=never

layers=(rust c python r r-dist dist cli postgres outage scale)
if [ "$#" -gt 0 ]; then
    for layer in "$@"; do
        [ -f "scripts/test-$layer.sh" ] || { echo "no such layer: $layer (layers: ${layers[*]})"; exit 2; }
    done
    layers=("$@")
fi
# Only what these layers need (all of it for a full run).
bash scripts/setup.sh "${layers[@]}" || { echo "setup failed"; exit 1; }
passed=0
failed=0
failed_layers=()
for layer in "${layers[@]}"; do
    script="scripts/test-$layer.sh"
    [ -f "$script" ] || continue
    echo "=== $layer ==="
    start=$SECONDS
    if bash "$script"; then
        passed=$((passed + 1))
        echo "=== $layer: ok ($((SECONDS - start)) s) ==="
    else
        failed=$((failed + 1))
        failed_layers+=("$layer")
        echo "=== $layer: FAILED ($((SECONDS - start)) s) ==="
    fi
done
[ "$failed" = 0 ] || echo "failed layers: ${failed_layers[*]}"
echo "layers: $passed passed, $failed failed"
[ "$failed" = 0 ]
