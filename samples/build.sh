#!/usr/bin/env bash
# Rebuild samples/wasm/ from the C sources in samples/c/.
#
#   samples/build.sh            rebuild every .wasm; if a wasmtime CLI is found, also run each
#                               WASI program and check its stdout against wasm/wasi/NAME.stdout
#   samples/build.sh --record   the same, but (re)write the .stdout files instead of checking
#
# Needs clang, wasm-ld and wasi-libc; on Debian/Ubuntu: apt-get install clang lld wasi-libc.
# Environment: CLANG (default clang), WASI_SYSROOT (passed as --sysroot to the WASI build; Debian's
# clang finds /usr/lib/wasm32-wasi by itself), WASMTIME (default: wasmtime on PATH).
#
# Two builds of every kernel samples/c/kernels/NAME.c:
#   wasm/bare/NAME.wasm   the kernel alone, exported as NAME (plus memory), no libc, no entry;
#   wasm/wasi/NAME.wasm   samples/c/programs/NAME.c, a WASI command whose main includes the kernel
#                         as a static function, so that clang -O2 inlines it into main.
# And wasm/cuda/NAME.wasm from samples/c/cuda/NAME.c: WASI commands that call wasi:cuda.
# The output is byte-reproducible for a given clang: no debug info (--strip-debug), no paths.
# The `name` section is kept, so the analysis can print function names.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
record=0
for arg in "$@"; do
    case "$arg" in
        --record) record=1 ;;
        -h | --help)
            sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "build.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

die() {
    echo "build.sh: error: $*" >&2
    exit 1
}

CLANG="${CLANG:-clang}"
command -v "$CLANG" >/dev/null 2>&1 ||
    die "'$CLANG' not found; install clang, lld and wasi-libc (apt-get install clang lld wasi-libc) or set CLANG"

# clang must know the wasm32 target and find wasm-ld (from lld).
echo 'int x;' | "$CLANG" --target=wasm32 -c -x c - -o /dev/null 2>/dev/null ||
    die "'$CLANG' cannot compile for wasm32 (is it an LLVM clang with the WebAssembly target?)"
wasm_ld="$("$CLANG" --target=wasm32 -print-prog-name=wasm-ld)"
if [[ "$wasm_ld" != */* ]]; then wasm_ld="$(command -v "$wasm_ld" || true)"; fi
[[ -n "$wasm_ld" && -x "$wasm_ld" ]] ||
    die "wasm-ld not found (it comes with lld: apt-get install lld)"

# The WASI sysroot: headers and libc.a for wasm32-wasi.
wasi_flags=(--target=wasm32-wasi)
if [[ -n "${WASI_SYSROOT:-}" ]]; then wasi_flags+=("--sysroot=$WASI_SYSROOT"); fi
echo '#include <stdio.h>' | "$CLANG" "${wasi_flags[@]}" -fsyntax-only -x c - 2>/dev/null ||
    die "no WASI sysroot: <stdio.h> not found for wasm32-wasi (apt-get install wasi-libc, or set WASI_SYSROOT)"
libc_a="$("$CLANG" "${wasi_flags[@]}" -print-file-name=libc.a)"
[[ "$libc_a" == /* && -f "$libc_a" ]] ||
    die "no WASI sysroot: libc.a for wasm32-wasi not found (apt-get install wasi-libc, or set WASI_SYSROOT)"

# Flags. -O2 and default unrolling: the point is real compiler output. No -msimd128, no -g.
warn=(-Wall -Wextra)
bare_flags=(--target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--strip-debug)
# -nodefaultlibs -lc: link wasi-libc but not compiler-rt's libclang_rt.builtins-wasm32.a, which
# Debian ships in a separate package (libclang-rt-NN-dev-wasm32) that `wasi-libc` does not pull
# in. None of the samples needs it (wasi-libc's printf does not use long double by default);
# a sample that did would fail to link with an undefined symbol.
wasi_flags+=(-O2 -nodefaultlibs -Wl,--strip-debug)
wasi_libs=(-lc)

echo "build.sh: $("$CLANG" --version | head -n 1), wasm-ld: $wasm_ld, libc: $libc_a"

out_bare="$here/wasm/bare"
out_wasi="$here/wasm/wasi"
mkdir -p "$out_bare" "$out_wasi"
# Start from a clean slate so that a removed sample leaves no stale module behind.
rm -f "$out_bare"/*.wasm "$out_wasi"/*.wasm

size() { wc -c <"$1" | tr -d ' '; }

# Compile from inside samples/c with relative paths, so no absolute path can reach the output.
cd "$here/c"
shopt -s nullglob
kernels=(kernels/*.c)
[[ ${#kernels[@]} -gt 0 ]] || die "no kernels in $here/c/kernels"

for src in "${kernels[@]}"; do
    name="$(basename "$src" .c)"
    out="$out_bare/$name.wasm"
    "$CLANG" "${bare_flags[@]}" "${warn[@]}" "-Wl,--export=$name" "$src" -o "$out" ||
        die "bare build of $src failed"
    echo "bare  wasm/bare/$name.wasm ($(size "$out") bytes)"
done

programs=()
for src in "${kernels[@]}"; do
    name="$(basename "$src" .c)"
    prog="programs/$name.c"
    [[ -f "$prog" ]] || die "kernel $src has no WASI program $prog"
    out="$out_wasi/$name.wasm"
    "$CLANG" "${wasi_flags[@]}" "${warn[@]}" "$prog" "${wasi_libs[@]}" -o "$out" ||
        die "WASI build of $prog failed"
    echo "wasi  wasm/wasi/$name.wasm ($(size "$out") bytes)"
    programs+=("$name")
done

# Guests that call wasi:cuda themselves (samples/c/cuda/wasi_cuda.h). They import `wasi:cuda`,
# which the wasmtime CLI does not provide: run them with `tensorwasm run` (see samples/README.md).
out_cuda="$here/wasm/cuda"
mkdir -p "$out_cuda"
rm -f "$out_cuda"/*.wasm
for prog in cuda/*.c; do
    name="$(basename "$prog" .c)"
    out="$out_cuda/$name.wasm"
    "$CLANG" "${wasi_flags[@]}" "${warn[@]}" "$prog" "${wasi_libs[@]}" -o "$out" ||
        die "WASI build of $prog failed"
    echo "cuda  wasm/cuda/$name.wasm ($(size "$out") bytes)"
done

# Check the shapes the WASI programs exist for, when llvm-objdump is at hand: the kernel (a static
# function) must have been inlined into main, so no function of its name may remain; and the
# helper of calls_fn must have stayed out of line.
objdump="${LLVM_OBJDUMP:-$(command -v llvm-objdump || true)}"
if [[ -z "$objdump" ]]; then
    objdump="$("$CLANG" -print-prog-name=llvm-objdump)"
    [[ "$objdump" == */* && -x "$objdump" ]] || objdump=""
fi
if [[ -n "$objdump" ]]; then
    for name in "${programs[@]}"; do
        funcs="$("$objdump" -d "$out_wasi/$name.wasm" | sed -n 's/^[0-9a-f]* <\(.*\)>:$/\1/p')"
        if grep -qx "$name" <<<"$funcs"; then
            die "wasm/wasi/$name.wasm: clang did not inline the kernel $name into main"
        fi
    done
    funcs="$("$objdump" -d "$out_wasi/calls_fn.wasm" | sed -n 's/^[0-9a-f]* <\(.*\)>:$/\1/p')"
    grep -qx smooth <<<"$funcs" || die "wasm/wasi/calls_fn.wasm: the noinline helper smooth is gone"
    echo "check kernels inlined into main in every wasm/wasi/*.wasm; calls_fn keeps its call"
else
    echo "build.sh: no llvm-objdump (set LLVM_OBJDUMP): inlining not checked"
fi

# Run the WASI programs when a wasmtime CLI is at hand.
WASMTIME="${WASMTIME:-$(command -v wasmtime || true)}"
if [[ -z "$WASMTIME" ]]; then
    echo "build.sh: no wasmtime (set WASMTIME): the WASI programs were not run"
    exit 0
fi
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
failed=0
for name in "${programs[@]}"; do
    expected="$out_wasi/$name.stdout"
    "$WASMTIME" run "$out_wasi/$name.wasm" >"$tmp" ||
        die "wasm/wasi/$name.wasm failed under $WASMTIME"
    if [[ $record -eq 1 ]]; then
        cp "$tmp" "$expected"
        echo "run   wasm/wasi/$name.wasm -> wasm/wasi/$name.stdout (recorded)"
    elif [[ ! -f "$expected" ]]; then
        echo "run   wasm/wasi/$name.wasm: no wasm/wasi/$name.stdout (run with --record)" >&2
        failed=1
    elif cmp -s "$expected" "$tmp"; then
        echo "run   wasm/wasi/$name.wasm: stdout matches wasm/wasi/$name.stdout"
    else
        echo "run   wasm/wasi/$name.wasm: stdout DIFFERS from wasm/wasi/$name.stdout:" >&2
        diff "$expected" "$tmp" >&2 || true
        failed=1
    fi
done
exit $failed
