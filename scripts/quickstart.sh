#!/usr/bin/env bash
# The main job on a fresh machine: build tensorwasm, make a signing key, build the samples into
# signed bundles, verify and inspect one, and run them from their precompiled code.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "quickstart: needs a Rust toolchain (cargo) on PATH" >&2; exit 1; }

echo "==> building tensorwasm (release; the first build compiles Wasmtime and Cranelift, ~5 min on 2 cores)"
cargo build --release --locked -p tensorwasm --bin tensorwasm
tw=target/release/tensorwasm
work=target/quickstart
mkdir -p "$work"

echo "==> tensorwasm keygen"
$tw keygen --out "$work/release" --force

echo "==> tensorwasm build samples/wat/arith.wat"
$tw build samples/wat/arith.wat -o "$work/arith.twb" --key "$work/release.key" --version 1
$tw build samples/wat/hello-wasi.wat -o "$work/hello.twb" --key "$work/release.key" --quiet

echo "==> tensorwasm verify"
$tw verify "$work/arith.twb" --trusted "$work/release.pub"

echo "==> tensorwasm inspect"
$tw inspect "$work/arith.twb" --trusted "$work/release.pub"

echo "==> tensorwasm run --invoke (from the bundle's precompiled code)"
echo "add(1, 2)      = $($tw run "$work/arith.twb" --trusted "$work/release.pub" --invoke add --args '[1, 2]')"
echo "scale(0.1, 3)  = $($tw run "$work/arith.twb" --trusted "$work/release.pub" --invoke scale --args '[0.1, 3]')"

echo "==> tensorwasm run (a WASI command)"
set +e
$tw run "$work/hello.twb" --trusted "$work/release.pub" -- world
echo "exit code: $? (the number of arguments the guest was given)"
set -e

echo "==> tensorwasm analyze (which loop nests could go to a GPU, and why not)"
$tw analyze samples/wat/arith.wat
echo "==> a C matmul compiled by clang -O2: the plan, and its kernel lowered to PTX"
$tw analyze samples/wasm/bare/matmul.wasm | tail -n 14
$tw build samples/wasm/bare/matmul.wasm -o "$work/matmul.twb" --key "$work/release.key" --emit-ptx "$work/kernels"
ls "$work/kernels"

echo "==> where each kernel ran"
echo "no kernels: GPU offload of loop nests is not built yet, so every loop ran on the CPU"
echo "    (the HTTP daemon tensorwasmd is not built yet either: bundles run in-process)"
