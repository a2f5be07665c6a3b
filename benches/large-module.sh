#!/usr/bin/env bash
# Build the large module for `cargo bench -p tensorwasm-tests --bench analysis`: SQLite (the
# amalgamation bundled by the `libsqlite3-sys` crate, with FTS3/4/5, R*Tree, Geopoly, session and
# other extensions on) and zstd (compression, decompression and the dictionary builder, from the
# `zstd-sys` crate), compiled with clang -O2 for wasm32-wasi and linked into one WASI reactor that
# exports every function (so that nothing is dropped as dead code).
#
#   benches/large-module.sh [OUT.wasm]      default: target/bench/large.wasm
#
# The C sources come from cargo's registry (exact versions below); if they are not there yet,
# they are fetched with `cargo fetch` through a throwaway project. Needs clang with the wasm32
# target, wasm-ld (lld) and wasi-libc (Debian/Ubuntu: apt-get install clang lld wasi-libc).
# Environment: CLANG (default clang), WASI_SYSROOT (passed as --sysroot), JOBS (parallel
# compiles, default: number of cores).
#
# Builtins such as __muloti4 (libclang_rt for wasm32 is not in Debian's clang) are left as
# imports (--allow-undefined): the module validates and every function body is real code; it is
# for analysis and compilation, not for running. Takes a few minutes (sqlite3.c is 9 MB of C).
set -euo pipefail

SQLITE_CRATE=libsqlite3-sys
SQLITE_VERSION=0.39.1
ZSTD_CRATE=zstd-sys
ZSTD_VERSION=2.1.2+zstd.1.5.7

die() {
    echo "large-module.sh: error: $*" >&2
    exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/target/bench/large.wasm}"
case "$out" in
    -h | --help)
        sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

CLANG="${CLANG:-clang}"
command -v "$CLANG" >/dev/null 2>&1 ||
    die "'$CLANG' not found; install clang, lld and wasi-libc (apt-get install clang lld wasi-libc) or set CLANG"
wasi=(--target=wasm32-wasi)
if [[ -n "${WASI_SYSROOT:-}" ]]; then wasi+=("--sysroot=$WASI_SYSROOT"); fi
echo '#include <stdio.h>' | "$CLANG" "${wasi[@]}" -fsyntax-only -x c - 2>/dev/null ||
    die "'$CLANG' cannot compile for wasm32-wasi: no WebAssembly target or no WASI sysroot (apt-get install wasi-libc, or set WASI_SYSROOT)"

registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
find_crate() { # NAME-VERSION -> its directory in the registry, if present
    find "$registry" -maxdepth 2 -type d -name "$1" 2>/dev/null | head -n 1
}
sqlite_dir="$(find_crate "$SQLITE_CRATE-$SQLITE_VERSION")"
zstd_dir="$(find_crate "$ZSTD_CRATE-$ZSTD_VERSION")"
if [[ -z "$sqlite_dir" || -z "$zstd_dir" ]]; then
    command -v cargo >/dev/null 2>&1 || die "the C sources are not in $registry and cargo is not available to fetch them"
    echo "fetching $SQLITE_CRATE $SQLITE_VERSION and $ZSTD_CRATE $ZSTD_VERSION with cargo" >&2
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/src"
    printf '[package]\nname = "fetch-large-module"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = { version = "=%s", features = ["bundled"] }\n%s = "=%s"\n' \
        "$SQLITE_CRATE" "$SQLITE_VERSION" "$ZSTD_CRATE" "$ZSTD_VERSION" >"$tmp/Cargo.toml"
    : >"$tmp/src/lib.rs"
    (cd "$tmp" && cargo fetch --quiet) || die "cargo fetch failed (no network?)"
    sqlite_dir="$(find_crate "$SQLITE_CRATE-$SQLITE_VERSION")"
    zstd_dir="$(find_crate "$ZSTD_CRATE-$ZSTD_VERSION")"
fi
sqlite_c="$sqlite_dir/sqlite3/sqlite3.c"
zstd_lib="$zstd_dir/zstd/lib"
[[ -f "$sqlite_c" ]] || die "sqlite3.c not found (looked for $sqlite_c)"
[[ -f "$zstd_lib/zstd.h" ]] || die "zstd sources not found (looked in $zstd_lib)"

build="$(dirname "$out")/large-module.obj"
mkdir -p "$build"
rm -f "$build"/*.o

common=("${wasi[@]}" -O2 -g0 -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_SIGNAL
    -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_GETPID -Wno-deprecated-declarations)
sqlite_flags=(-DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_THREADSAFE=0
    -DSQLITE_ENABLE_FTS3 -DSQLITE_ENABLE_FTS3_PARENTHESIS -DSQLITE_ENABLE_FTS4 -DSQLITE_ENABLE_FTS5
    -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_GEOPOLY -DSQLITE_ENABLE_SESSION
    -DSQLITE_ENABLE_PREUPDATE_HOOK -DSQLITE_ENABLE_MATH_FUNCTIONS -DSQLITE_ENABLE_DBSTAT_VTAB
    -DSQLITE_ENABLE_STAT4 -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_EXPLAIN_COMMENTS
    -DSQLITE_ENABLE_BYTECODE_VTAB -DSQLITE_ENABLE_DBPAGE_VTAB -DSQLITE_ENABLE_STMTVTAB
    -DSQLITE_ENABLE_NORMALIZE -DSQLITE_ENABLE_API_ARMOR)
zstd_flags=(-DZSTD_DISABLE_ASM -DXXH_NAMESPACE=ZSTD_ "-I$zstd_lib" "-I$zstd_lib/common")

# One job per source file; sqlite3.c first (it is the long one).
jobs=("sqlite3|$sqlite_c")
for f in "$zstd_lib"/common/*.c "$zstd_lib"/compress/*.c "$zstd_lib"/decompress/*.c "$zstd_lib"/dictBuilder/*.c; do
    jobs+=("zstd_$(basename "$f" .c)|$f")
done
export CLANG build
export COMMON="${common[*]}" SQLITE_FLAGS="${sqlite_flags[*]}" ZSTD_FLAGS="${zstd_flags[*]}"
printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-$(nproc)}" -I{} bash -c '
    name="${1%%|*}"; src="${1#*|}"
    if [[ "$name" == sqlite3 ]]; then flags=$SQLITE_FLAGS; else flags=$ZSTD_FLAGS; fi
    # shellcheck disable=SC2086
    "$CLANG" $COMMON $flags -c "$src" -o "$build/$name.o" || { echo "failed: $src" >&2; exit 255; }
' _ {} || die "compilation failed"

# The objects in a fixed order, so that the link is reproducible.
mapfile -t objs < <(find "$build" -name '*.o' | LC_ALL=C sort)
"$CLANG" "${wasi[@]}" -mexec-model=reactor -O2 -nodefaultlibs "${objs[@]}" -lc \
    -Wl,--export-all -Wl,--strip-debug -Wl,--allow-undefined -o "$out" ||
    die "link failed"
rm -rf "$build"
echo "wrote $out ($(wc -c <"$out") bytes)"
