#!/usr/bin/env bash
# Prepares the GPU check on a machine without a GPU: builds the CUDA runner's tests, the record
# replayer and `tensorwasm`, records every differential kernel launch with what Wasmtime
# computed, and puts it all in .gpu/ (ignored by git), ready to copy to a GPU host and run with
# scripts/gpu-check.sh. Everything is built here because a GPU host may have no Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
rm -rf "$out" && mkdir -p "$out/bin"

# One workspace build (the compiler turns on the oracle's `cuda` feature), so nothing is built
# twice under different feature sets.
echo "==> building the workspace's tests, tensorwasm and the replayer"
exes=$(cargo test --workspace --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["package_id"].split("#")[-1].split("@")[0], m["target"]["name"], m["executable"])')
while read -r pkg name exe; do
  case "$pkg/$name" in
    tensorwasm-oracle/cuda|tensorwasm-oracle/cuda_fault|tensorwasm-oracle/ops|tensorwasm-oracle/kernels|tensorwasm-oracle/errors|tensorwasm-oracle/hardware)
      cp "$exe" "$out/bin/$name" ;;
    # The offload suite: bare samples and a wasi:cuda guest on the cuda backend.
    tensorwasm/offload) cp "$exe" "$out/bin/offload" ;;
  esac
done <<<"$exes"
cargo build --workspace --examples
cp target/debug/examples/replay target/debug/examples/gpu_bench target/debug/tensorwasm "$out/bin/"
strip "$out"/bin/*
ls "$out/bin"

echo "==> signed bundles of the WASI samples, for tensorwasm run --backend cuda"
mkdir -p "$out/bundles"
target/debug/tensorwasm keygen --out "$out/bundles/k" >/dev/null
PATH="$(scripts/cuda-tools | tail -n 1):$PATH"
# Half of them with an sm_90 cubin (the H200 loads it instead of JIT-compiling the PTX).
for s in wasi/saxpy wasi/vadd wasi/relu_clamp wasi/matmul wasi/conv2d wasi/batched_matmul cuda/saxpy_cuda; do
  name=$(basename "$s")
  cubin=()
  case "$name" in saxpy|relu_clamp|conv2d) cubin=(--cubin sm_90) ;; esac
  target/debug/tensorwasm build "samples/wasm/$s.wasm" -o "$out/bundles/$name.twb" \
    --key "$out/bundles/k.key" --oracle-cases 200 "${cubin[@]}" >/dev/null
  cp "samples/wasm/$s.stdout" "$out/bundles/$name.stdout"
done

echo "==> recording the differential launches (Wasmtime computes the expected memory)"
rm -rf target/launch-records
TENSORWASM_RECORD_LAUNCHES="$PWD/target/launch-records" \
  cargo test --workspace --test differential -- --nocapture 2>&1 | grep -E "kernels checked|test result"
tar -C target -czf "$out/records.tar.gz" launch-records
du -sh "$out"/* "$out"
# One archive for a GPU machine that takes at most 64 MiB of files along:
#   tar -xzf .gpu.tar.gz && scripts/gpu-check.sh .gpu
tar -czf .gpu.tar.gz .gpu
du -sh .gpu.tar.gz
