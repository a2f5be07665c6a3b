#!/usr/bin/env bash
# Build the large module for `cargo bench -p tensorwasm-tests --bench analysis`: real-world C
# libraries compiled with clang -O2 for wasm32-wasi and linked into one WASI reactor that exports
# every function (so that nothing is dropped as dead code). Each library is the C source bundled
# by one crate of crates.io, at an exact version, with the defines of the crate's build script
# unless noted:
#
#   SQLite 3.54.1      libsqlite3-sys 0.39.1       the amalgamation, with FTS3/4/5, R*Tree, Geopoly,
#                                                  session and other extensions on, no threads
#   zstd 1.5.7         zstd-sys 2.1.2+zstd.1.5.7   compression, decompression, dictionary builder
#   QuickJS-ng 0.16.2  rquickjs-sys 0.14.0         the JavaScript engine (quickjs, libregexp,
#                                                  libunicode, dtoa), with the crate's wasi defines
#   libwebp 1.6.0      libwebp-sys 0.14.4          decoder, encoder, demux, mux, sharpyuv, without
#                                                  WEBP_USE_THREAD (SIMD files compile to nothing)
#   brotli 1.0.9       brotlic-sys 0.2.2           common, decoder, encoder
#   OpenJPEG 2.5.3     openjpeg-sys 1.0.12         the JPEG 2000 codec, MUTEX_stub (no threads)
#   lz4 1.10.0         lz4-sys 1.11.1+lz4-1.10.0   lz4, lz4hc, lz4frame, xxhash
#   zlib 1.4           libz-sys 1.1.33             with the gz* file functions
#   libdeflate 1.26    libdeflate-sys 1.26.1
#   bzip2 1.0.8        bzip2-sys 0.1.13+1.0.8      BZ_NO_STDIO, as the crate builds it
#   Expat 2.1.0        expat-sys 2.1.6             XML_DTD, XML_NS (its CMake defaults)
#
#   benches/large-module.sh [OUT.wasm]      default: target/bench/large.wasm
#
# The C sources come from cargo's registry; the crates that are not there yet are fetched with
# `cargo fetch` through a throwaway project. Needs clang with the wasm32 target, wasm-ld (lld)
# and wasi-libc (Debian/Ubuntu: apt-get install clang lld wasi-libc). Environment: CLANG (default
# clang), WASI_SYSROOT (passed as --sysroot), JOBS (parallel compiles, default: number of cores).
#
# Builtins such as __muloti4 (libclang_rt for wasm32 is not in Debian's clang) are left as
# imports (--allow-undefined), and so are the process clocks that wasi-libc only emulates (clock,
# getrusage) and bzip2's bz_internal_error, which its user supplies: the module validates and
# every function body is real code; it is for analysis and compilation, not for running. No two
# libraries define the same symbol (zstd's xxhash is renamed with XXH_NAMESPACE). Takes several
# minutes (sqlite3.c is 9 MB of C, quickjs.c 2 MB).
set -euo pipefail

# The crates, pinned: CRATE=VERSION.
CRATES=(
    libsqlite3-sys=0.39.1
    zstd-sys=2.1.2+zstd.1.5.7
    rquickjs-sys=0.14.0
    libwebp-sys=0.14.4
    brotlic-sys=0.2.2
    openjpeg-sys=1.0.12
    lz4-sys=1.11.1+lz4-1.10.0
    libz-sys=1.1.33
    libdeflate-sys=1.26.1
    bzip2-sys=0.1.13+1.0.8
    expat-sys=2.1.6
)

die() {
    echo "large-module.sh: error: $*" >&2
    exit 1
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/target/bench/large.wasm}"
case "$out" in
    -h | --help)
        sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
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
    { find "$registry" -maxdepth 2 -type d -name "$1" 2>/dev/null || true; } | head -n 1
}
declare -A dir # CRATE -> its directory in the registry
missing=()
for c in "${CRATES[@]}"; do
    dir[${c%%=*}]="$(find_crate "${c%%=*}-${c#*=}")"
    if [[ -z "${dir[${c%%=*}]}" ]]; then missing+=("$c"); fi
done
if ((${#missing[@]} > 0)); then
    command -v cargo >/dev/null 2>&1 || die "the C sources are not in $registry and cargo is not available to fetch them"
    echo "fetching ${missing[*]/=/ } with cargo" >&2
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/src"
    {
        printf '[package]\nname = "fetch-large-module"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n'
        for c in "${missing[@]}"; do printf '%s = "=%s"\n' "${c%%=*}" "${c#*=}"; done
    } >"$tmp/Cargo.toml"
    : >"$tmp/src/lib.rs"
    (cd "$tmp" && cargo fetch --quiet) || die "cargo fetch failed (no network?)"
    for c in "${missing[@]}"; do
        dir[${c%%=*}]="$(find_crate "${c%%=*}-${c#*=}")"
        [[ -n "${dir[${c%%=*}]}" ]] || die "${c%%=*} ${c#*=} not in $registry after cargo fetch"
    done
fi
sqlite_c="${dir[libsqlite3-sys]}/sqlite3/sqlite3.c"
zstd_lib="${dir[zstd-sys]}/zstd/lib"
quickjs="${dir[rquickjs-sys]}/quickjs"
webp="${dir[libwebp-sys]}/vendor"
brotli="${dir[brotlic-sys]}/brotli/c"
openjp2="${dir[openjpeg-sys]}/vendor/src/lib/openjp2"
lz4="${dir[lz4-sys]}/liblz4/lib"
zlib="${dir[libz-sys]}/src/zlib"
libdeflate="${dir[libdeflate-sys]}/libdeflate"
bzip2="${dir[bzip2-sys]}/bzip2-1.0.8"
expat="${dir[expat-sys]}/expat/lib"
[[ -f "$sqlite_c" ]] || die "sqlite3.c not found (looked for $sqlite_c)"
[[ -f "$zstd_lib/zstd.h" ]] || die "zstd sources not found (looked in $zstd_lib)"
[[ -f "$quickjs/quickjs.c" ]] || die "QuickJS sources not found (looked in $quickjs)"
[[ -f "$webp/src/webp/decode.h" ]] || die "libwebp sources not found (looked in $webp)"
[[ -f "$brotli/include/brotli/encode.h" ]] || die "brotli sources not found (looked in $brotli)"
[[ -f "$openjp2/openjpeg.h" ]] || die "OpenJPEG sources not found (looked in $openjp2)"
[[ -f "$lz4/lz4.h" ]] || die "lz4 sources not found (looked in $lz4)"
[[ -f "$zlib/zlib.h" ]] || die "zlib sources not found (looked in $zlib)"
[[ -f "$libdeflate/libdeflate.h" ]] || die "libdeflate sources not found (looked in $libdeflate)"
[[ -f "$bzip2/bzlib.h" ]] || die "bzip2 sources not found (looked in $bzip2)"
[[ -f "$expat/expat.h" ]] || die "Expat sources not found (looked in $expat)"

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
quickjs_flags=(-D_GNU_SOURCE -DEMSCRIPTEN=1 -DFE_DOWNWARD=0 -DFE_UPWARD=0
    -Wno-implicit-const-int-float-conversion)
webp_flags=("-I$webp" -DNDEBUG=1 -D_THREAD_SAFE=1)
brotli_flags=("-I$brotli/include" -DBROTLI_BUILD_ENC_EXTRA_API -DBROTLI_HAVE_LOG2=1)
openjpeg_flags=("-I$openjp2" "-I${dir[openjpeg-sys]}/config" -DOPJ_HAVE_POSIX_MEMALIGN=1 -DOPJ_STATIC=1
    -DMUTEX_stub=1)
lz4_flags=()
zlib_flags=("-I$zlib" -DSTDC -D_LARGEFILE64_SOURCE)
libdeflate_flags=("-I$libdeflate")
bzip2_flags=("-I$bzip2" -D_FILE_OFFSET_BITS=64 -DBZ_NO_STDIO)
expat_flags=(-DBYTEORDER=1234 -DHAVE_MEMMOVE=1 -DHAVE_UNISTD_H=1 -DXML_DTD=1 -DXML_NS=1
    -DXML_CONTEXT_BYTES=1024)

# One job per source file, NAME|SOURCE, where NAME starts with the library and an underscore;
# the long ones first (sqlite3.c, then quickjs.c).
jobs=("sqlite3|$sqlite_c")
add() { # LIBRARY ROOT FILE...: jobs named LIBRARY_<path of FILE under ROOT, / as _>
    local lib="$1" root="$2" f rel
    shift 2
    for f in "$@"; do
        [[ -f "$f" ]] || die "$lib source not found: $f"
        rel="${f#"$root"/}"
        rel="${rel%.c}"
        jobs+=("${lib}_${rel//\//_}|$f")
    done
}
add quickjs "$quickjs" "$quickjs"/{quickjs,libregexp,libunicode,dtoa}.c
for f in "$zstd_lib"/common/*.c "$zstd_lib"/compress/*.c "$zstd_lib"/decompress/*.c "$zstd_lib"/dictBuilder/*.c; do
    jobs+=("zstd_$(basename "$f" .c)|$f")
done
mapfile -t webp_c < <(find "$webp/src" "$webp/sharpyuv" -name '*.c' | LC_ALL=C sort)
add webp "$webp" "${webp_c[@]}"
add brotli "$brotli" "$brotli"/common/*.c "$brotli"/dec/*.c "$brotli"/enc/*.c
add openjpeg "$openjp2" "$openjp2"/{thread,bio,cio,dwt,event,ht_dec,image,invert,j2k,jp2,mct,mqc}.c \
    "$openjp2"/{openjpeg,opj_clock,pi,t1,t2,tcd,tgt,function_list,opj_malloc,sparse_array}.c
add lz4 "$lz4" "$lz4"/{lz4,lz4frame,lz4hc,xxhash}.c
add zlib "$zlib" "$zlib"/*.c
add libdeflate "$libdeflate/lib" "$libdeflate"/lib/*.c "$libdeflate"/lib/{arm,x86}/cpu_features.c
add bzip2 "$bzip2" "$bzip2"/{blocksort,huffman,crctable,randtable,compress,decompress,bzlib}.c
add expat "$expat" "$expat"/{xmlparse,xmlrole,xmltok}.c

# Each job's flags: FLAGS_<library>.
export CLANG build COMMON="${common[*]}"
export FLAGS_sqlite3="${sqlite_flags[*]}" FLAGS_zstd="${zstd_flags[*]}" FLAGS_quickjs="${quickjs_flags[*]}"
export FLAGS_webp="${webp_flags[*]}" FLAGS_brotli="${brotli_flags[*]}" FLAGS_openjpeg="${openjpeg_flags[*]}"
export FLAGS_lz4="${lz4_flags[*]}" FLAGS_zlib="${zlib_flags[*]}" FLAGS_libdeflate="${libdeflate_flags[*]}"
export FLAGS_bzip2="${bzip2_flags[*]}" FLAGS_expat="${expat_flags[*]}"
# shellcheck disable=SC2016 # the job script is expanded by the bash that runs it
printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-$(nproc)}" -I{} bash -c '
    name="${1%%|*}"; src="${1#*|}"; flags_var="FLAGS_${name%%_*}"
    # shellcheck disable=SC2086
    "$CLANG" $COMMON ${!flags_var} -c "$src" -o "$build/$name.o" || { echo "failed: $src" >&2; exit 255; }
' _ {} || die "compilation failed"

# The objects in a fixed order, so that the link is reproducible.
mapfile -t objs < <(find "$build" -name '*.o' | LC_ALL=C sort)
"$CLANG" "${wasi[@]}" -mexec-model=reactor -O2 -nodefaultlibs "${objs[@]}" -lc \
    -Wl,--export-all -Wl,--strip-debug -Wl,--allow-undefined -o "$out" ||
    die "link failed"
rm -rf "$build"
echo "wrote $out ($(wc -c <"$out") bytes)"
