#!/usr/bin/env bash
# Installs libtasker for C and C++ programs under PREFIX (default /usr/local):
#
#   include/tasker.h
#   lib/libtasker.so.<abi>.<version>        the shared library, SONAME libtasker.so.<abi>
#   lib/libtasker.so.<abi> -> that file     what programs load at run time
#   lib/libtasker.so -> libtasker.so.<abi>  what the linker finds with -ltasker
#   lib/libtasker.a                         the static library
#   lib/pkgconfig/tasker.pc                 cc app.c $(pkg-config --cflags --libs tasker)
#   lib/cmake/tasker/taskerConfig*.cmake    find_package(tasker CONFIG REQUIRED)
#                                           target_link_libraries(app PRIVATE tasker::tasker)
#
# Usage: scripts/install-c.sh [PREFIX]
# The library is a release build with every feature (SQLite, PostgreSQL, the dashboard
# server). TASKER_CARGO_PROFILE=dev installs a debug build (quicker to build, for tests).
# <abi> is TASKER_ABI_VERSION: it changes only when an existing function changes, so
# programs keep running across releases that only add functions.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="${1:-/usr/local}"
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd) # absolute: it goes into tasker.pc and the rpath
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
PROFILE="${TASKER_CARGO_PROFILE:-release}"
[ "$PROFILE" = dev ] && OUTDIR=debug || OUTDIR="$PROFILE"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
ABI=$(sed -n 's/^#define TASKER_ABI_VERSION \([0-9]*\)$/\1/p' include/tasker.h)
[ -n "$VERSION" ] && [ -n "$ABI" ] || { echo "install-c: cannot read the version or the ABI" >&2; exit 1; }
SONAME="libtasker.so.$ABI"
SOFILE="libtasker.so.$ABI.$VERSION"

# The SONAME is given to the linker here rather than in every build of the core: a
# library with a versioned SONAME only runs where that name exists, which the cargo
# target directory (used by the tests and examples) does not provide. So the library
# the target directory had is put back afterwards (the next cargo build relinks it
# anyway): programs linked against target/ never pick up the SONAME.
# rustc also prints the system libraries a program linking the static library needs.
built="$CARGO_TARGET_DIR/$OUTDIR/libtasker.so"
log=$(mktemp)
saved=$(mktemp -d)
restore() {
    if [ -f "$saved/libtasker.so" ]; then
        cp -p "$saved/libtasker.so" "$built.restored" && mv -f "$built.restored" "$built"
    fi
    rm -rf "$saved" "$log"
}
trap restore EXIT
if [ -f "$built" ] && ! { command -v readelf >/dev/null && readelf -d "$built" | grep -q "(SONAME)"; }; then
    cp -p "$built" "$saved/libtasker.so"
fi
if ! cargo rustc -q --profile "$PROFILE" -p tasker-core --lib --all-features \
    --crate-type cdylib,staticlib -- -C "link-arg=-Wl,-soname,$SONAME" \
    --print native-static-libs 2>"$log"; then
    cat "$log" >&2
    exit 1
fi
# A fresh build does not print the list again; this is what rustc says on Linux.
static_libs=$(sed -n 's/.*native-static-libs: //p' "$log" | tail -n1)
static_libs=${static_libs:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}

if command -v readelf >/dev/null; then
    readelf -d "$built" | grep -q "(SONAME).*\[$SONAME\]" ||
        { echo "install-c: $built has no SONAME $SONAME" >&2; exit 1; }
fi

install -d "$PREFIX/include" "$PREFIX/lib/pkgconfig" "$PREFIX/lib/cmake/tasker"
install -m 644 include/tasker.h "$PREFIX/include/tasker.h"
install -m 755 "$built" "$PREFIX/lib/$SOFILE"
install -m 644 "$CARGO_TARGET_DIR/$OUTDIR/libtasker.a" "$PREFIX/lib/libtasker.a"
if [ "${TASKER_INSTALL_STRIP:-1}" = 1 ] && command -v strip >/dev/null; then
    # The release profile keeps line tables for profiling; installed copies drop them.
    strip --strip-debug "$PREFIX/lib/$SOFILE" "$PREFIX/lib/libtasker.a"
fi
ln -sfn "$SOFILE" "$PREFIX/lib/$SONAME"
ln -sfn "$SONAME" "$PREFIX/lib/libtasker.so"

# libc and libgcc_s come with every C program; the others are what the static library needs.
private=$(printf '%s\n' $static_libs | grep -vxE -- '-lc|-lgcc_s' | tr '\n' ' ' | sed 's/ $//')
cmake_libs=$(printf '%s\n' $private | sed 's/^-l//' | grep -vx pthread | tr '\n' ';' | sed 's/;$//')
subst() {
    sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$VERSION|g" -e "s|@ABI@|$ABI|g" \
        -e "s|@SONAME@|$SONAME|g" -e "s|@SOFILE@|$SOFILE|g" \
        -e "s|@MAJOR@|${VERSION%%.*}|g" -e "s|@MINOR@|$(echo "$VERSION" | cut -d. -f2)|g" \
        -e "s|@STATIC_LIBS_FLAGS@|$private|g" -e "s|@STATIC_LIBS@|$cmake_libs|g" "$1"
}
subst core/dist/tasker.pc.in > "$PREFIX/lib/pkgconfig/tasker.pc"
subst core/dist/taskerConfig.cmake.in > "$PREFIX/lib/cmake/tasker/taskerConfig.cmake"
subst core/dist/taskerConfigVersion.cmake.in > "$PREFIX/lib/cmake/tasker/taskerConfigVersion.cmake"
echo "installed libtasker $VERSION (ABI $ABI, $PROFILE) under $PREFIX"
