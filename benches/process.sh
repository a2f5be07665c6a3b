#!/usr/bin/env bash
# Process-level benchmark: tensorwasm against the wasmtime CLI on the same modules.
#   1. `tensorwasm run app.twb --invoke add` vs `wasmtime run --allow-precompiled app.cwasm`
#   2. `tensorwasm build` vs `wasmtime compile` (a module with many functions)
#   3. bundle size vs .cwasm + .wasm
# Needs: target/release/tensorwasm (scripts/quickstart.sh builds it), `wasmtime` 48 on PATH
# (cargo install wasmtime-cli --version 48.0.8), hyperfine (apt-get install hyperfine).
# Usage: benches/process.sh [FUNCS]   (default 5000 functions for the build comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
tw=${TW:-target/release/tensorwasm}
funcs=${1:-5000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v wasmtime hyperfine >/dev/null || { echo "needs wasmtime and hyperfine on PATH" >&2; exit 1; }
echo "tensorwasm: $($tw --version)   wasmtime: $(wasmtime --version)   $(nproc) cores, $(date -u +%F)"

$tw keygen --out "$work/k" >/dev/null
cp samples/wat/arith.wat "$work/app.wat"
$tw build "$work/app.wat" -o "$work/app.twb" --key "$work/k.key" --quiet
wasmtime compile "$work/app.wat" -o "$work/app.cwasm"

echo; echo "## invoke add(1, 2) from precompiled code, whole process"
hyperfine -N --warmup 20 --runs 200 --export-markdown "$work/run.md" \
  "$tw run $work/app.twb --trusted $work/k.pub --invoke add --args [1,2]" \
  "wasmtime run --allow-precompiled --invoke add $work/app.cwasm 1 2" >/dev/null
cat "$work/run.md"

python3 - "$funcs" > "$work/big.wat" <<'PY'
import sys
n = int(sys.argv[1])
print("(module (memory 1)")
for i in range(n):
    print(f'(func (export "f{i}") (param i32 i32) (result i32) (local i32) '
          f'(loop $l local.get 0 local.get 1 i32.mul i32.const {i} i32.add local.set 2 '
          f'local.get 2 i32.const 3 i32.shl local.get 0 i32.xor local.set 0 '
          f'local.get 1 i32.const 1 i32.sub local.tee 1 '
          f'local.get 0 i32.const 65532 i32.and i32.load i32.add br_if $l) local.get 0 local.get 2 i32.add)')
print(")")
PY
$tw run "$work/big.wat" --invoke f0 --args '[1,1]' >/dev/null   # sanity: it is valid
echo; echo "## build: $funcs functions"
hyperfine -N --warmup 1 --runs 5 --export-markdown "$work/build.md" \
  "$tw build $work/big.wat -o $work/big.twb --key $work/k.key --quiet" \
  "wasmtime compile $work/big.wat -o $work/big.cwasm" >/dev/null
cat "$work/build.md"
wasm_bytes=$($tw inspect "$work/big.twb" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sections"][0]["raw_bytes"])')
twb=$(stat -c %s "$work/big.twb"); cwasm=$(stat -c %s "$work/big.cwasm")
echo; echo "## size: $funcs functions"
echo "| .wasm | .cwasm | .cwasm + .wasm | .twb | .twb / (.cwasm + .wasm) |"
echo "|---:|---:|---:|---:|---:|"
python3 -c "w,c,t=$wasm_bytes,$cwasm,$twb; print(f'| {w} | {c} | {c+w} | {t} | {t/(c+w):.2f} |')"
