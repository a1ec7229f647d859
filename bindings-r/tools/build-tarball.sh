#!/usr/bin/env bash
# Builds the source tarball tasker_<version>.tar.gz that installs with R CMD INSTALL on a
# machine with Rust but without network: the R package, the core crate next to the R
# crate, and every crate dependency vendored into src/rust/vendor.tar.xz.
#
#   bash bindings-r/tools/build-tarball.sh [OUTPUT_DIR]     (default: the current directory)
#
# Needs git, cargo (with access to crates.io or a filled cargo cache), xz and R.
# Prints the path of the tarball on its last line.
#
# What the staged copy changes (the repository itself is left alone):
# - src/rust/Cargo.toml becomes a workspace of its own (the R crate plus core/), with the
#   repository's [workspace.package], [workspace.dependencies] and lints copied in, and a
#   release profile without debug info;
# - core/ loses what only the repository build uses: its dev-dependencies, benches and
#   tests, and the cdylib/staticlib crate types;
# - the repository's Cargo.lock pins the versions; cargo vendor drops what the R
#   package does not use.
set -euo pipefail

pkg_src=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$pkg_src/.." && pwd)
out=$(mkdir -p "${1:-$PWD}" && cd "${1:-$PWD}" && pwd)
export PATH="$PATH:$HOME/.cargo/bin"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/tasker"

# The version is written once, in the workspace Cargo.toml; DESCRIPTION must repeat it.
cargo_version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
desc_version=$(sed -n 's/^Version:[[:space:]]*//p' "$pkg_src/DESCRIPTION")
if [ "$cargo_version" != "$desc_version" ]; then
    echo "build-tarball: DESCRIPTION says Version: $desc_version, Cargo.toml says $cargo_version" >&2
    exit 1
fi

# The package and the core as git sees them (tracked and new files, never build products).
(cd "$root" && git ls-files -z --cached --others --exclude-standard -- bindings-r core |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$work"
mv "$work/bindings-r" "$stage"
rust="$stage/src/rust"
mkdir -p "$rust/core"
# assets/: the dashboard page, compiled into the server (run_monitor()).
cp -R "$work/core/Cargo.toml" "$work/core/src" "$work/core/assets" "$rust/core/"
rm -rf "$work/core"

# core/Cargo.toml without the repository-only parts.
awk '
    /^\[/ { skip = ($0 ~ /^\[(build-dependencies|dev-dependencies)\]/ || $0 ~ /^\[\[(bench|test|example)\]\]/) }
    /^build[ ]*=/ { next }
    /^crate-type[ ]*=/ { print "crate-type = [\"rlib\"]"; next }
    !skip { print }
' "$root/core/Cargo.toml" > "$rust/core/Cargo.toml"

# The R crate's manifest as the root of a workspace: its own sections, then the
# repository's shared workspace sections (the tasker-core path is "core" from both places).
{
    cat "$pkg_src/src/rust/Cargo.toml"
    printf '\n# Added by tools/build-tarball.sh: a workspace of its own inside the tarball.\n'
    printf '[workspace]\nresolver = "2"\nmembers = [".", "core"]\n\n'
    awk '
        /^\[/ { keep = ($0 ~ /^\[workspace\.(package|dependencies|lints)/) }
        keep { print }
    ' "$root/Cargo.toml"
    printf '\n[profile.release]\ndebug = false\n'
} > "$rust/Cargo.toml"
grep -q '^tasker-core = { path = "core"' "$rust/Cargo.toml" ||
    { echo "build-tarball: the tasker-core workspace dependency is not a path to core/" >&2; exit 1; }

cp "$root/Cargo.lock" "$rust/Cargo.lock"
(cd "$rust" && cargo vendor --quiet vendor >/dev/null)
# Crates for other platforms ship prebuilt import libraries (tens of MB) that a Unix build
# never reads: empty them, keeping cargo's checksums valid.
python3 - "$rust/vendor" <<'PY'
import json, os, sys
vendor = sys.argv[1]
for name in os.listdir(vendor):
    if not (name.startswith("windows_") or name.startswith("winapi-")):
        continue
    crate = os.path.join(vendor, name)
    sums_path = os.path.join(crate, ".cargo-checksum.json")
    with open(sums_path) as f:
        sums = json.load(f)
    for rel in list(sums["files"]):
        if rel.endswith((".a", ".lib", ".dll")):
            os.remove(os.path.join(crate, rel))
            del sums["files"][rel]
    with open(sums_path, "w") as f:
        json.dump(sums, f)
PY
(cd "$rust" && XZ_OPT="-6 -T0" tar -cJf vendor.tar.xz vendor && rm -rf vendor)

cd "$out"
R CMD build --no-build-vignettes "$stage" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
version=$(sed -n 's/^Version:[[:space:]]*//p' "$stage/DESCRIPTION")
echo "$out/tasker_${version}.tar.gz"
