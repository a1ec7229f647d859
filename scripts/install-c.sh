#!/usr/bin/env bash
# Installs libtasker for C programs: release build, header, shared and static library,
# and a pkg-config file.  Usage: scripts/install-c.sh [PREFIX]   (default /usr/local)
#   cc prog.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs tasker)
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${1:-/usr/local}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PROFILE="${TASKER_CARGO_PROFILE:-release}"   # dev for a quick test install
cargo build -q --profile "$PROFILE" -p tasker-core
[ "$PROFILE" = dev ] && OUTDIR=debug || OUTDIR="$PROFILE"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
install -d "$PREFIX/include" "$PREFIX/lib/pkgconfig"
install -m 644 include/tasker.h "$PREFIX/include/tasker.h"
install -m 755 "$CARGO_TARGET_DIR/$OUTDIR/libtasker.so" "$PREFIX/lib/libtasker.so"
install -m 644 "$CARGO_TARGET_DIR/$OUTDIR/libtasker.a" "$PREFIX/lib/libtasker.a"
sed -e "s|@PREFIX@|$PREFIX|" -e "s|@VERSION@|$VERSION|" core/tasker.pc.in > "$PREFIX/lib/pkgconfig/tasker.pc"
echo "installed libtasker $VERSION under $PREFIX"
