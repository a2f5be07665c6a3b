#!/usr/bin/env bash
# The GPU check, run on a host with an NVIDIA GPU from the folder scripts/gpu-prepare.sh filled
# (default .gpu). Every step must pass; a missing GPU is a failure here, never a skip.
#   1. the CUDA runner's own tests (device info, offset pointers, bad PTX, a faulting kernel);
#   2. every interpreter semantics and kernel test, each launch cross-checked byte for byte on
#      the GPU (TENSORWASM_ORACLE_BACKEND=cuda), and the table of hardware-pinned float results;
#   3. every differential launch record replayed on the interpreter and the GPU against the
#      memory Wasmtime computed;
#   4. `tensorwasm oracle --backend cuda` on the kernel-author samples, and the buggy fma kernel
#      caught on the hardware;
#   5. the offload suite on the cuda backend (bare samples against the original module, a
#      wasi:cuda guest), and WASI sample bundles run with --backend cuda: the same stdout as on
#      the CPU, with a kernel dispatched;
#   6. the GPU time of the reference kernels at GPU-sized problems (examples/gpu_bench.rs).
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.gpu}
export TENSORWASM_REQUIRE_GPU=1
fail=0
step() { echo; echo "==> $*"; "$@" || { echo "FAILED: $*"; fail=1; }; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || fail=1
step "$dir/bin/cuda"
step "$dir/bin/cuda_fault"
for t in ops kernels errors; do
  step env TENSORWASM_ORACLE_BACKEND=cuda "$dir/bin/$t"
done
step env TENSORWASM_ORACLE_BACKEND=cuda "$dir/bin/hardware" --nocapture
rm -rf /tmp/launch-records && tar -C /tmp -xzf "$dir/records.tar.gz"
step "$dir/bin/replay" --backend both /tmp/launch-records
s=samples/oracle
# matmul_tiled, stencil2d_tiled, conv2d_tiled: kernels with the tiled-matmul, tiled-stencil and
# tiled-conv2d blueprints (shared memory, bar.sync).
for k in vadd saxpy matmul matmul_tiled stencil2d_tiled conv2d_tiled idiv; do
  e=${k%_tiled}
  step "$dir/bin/tensorwasm" oracle --wasm $s/$k/$k.wat --export $e --ptx $s/$k/$k.ptx \
    --entry $e --plan $s/$k/plan.toml --cases 300 --seed 7 --backend cuda
done
echo; echo "==> the buggy fma kernel must fail on the GPU (exit 1)"
"$dir/bin/tensorwasm" oracle --wasm $s/saxpy/saxpy.wat --export saxpy --ptx $s/buggy/saxpy_fma.ptx \
  --entry saxpy_fma --plan $s/saxpy/plan.toml --seed 12345 --backend cuda
rc=$?; [ $rc -eq 1 ] || { echo "FAILED: expected exit 1, got $rc"; fail=1; }
step "$dir/bin/offload" cuda --nocapture
# Whole programs on the cuda backend: the same stdout as on the CPU, and a kernel dispatched.
run_bundle() {
  local b=$1 out err
  out=$("$dir/bin/tensorwasm" run "$dir/bundles/$b.twb" --trusted "$dir/bundles/k.pub" \
    --backend cuda --min-threads 1 --stats 2>/tmp/run.err) || { cat /tmp/run.err; return 1; }
  err=$(cat /tmp/run.err); echo "$err"
  [ "$out" == "$(cat "$dir/bundles/$b.stdout")" ] || { echo "stdout differs: $out"; return 1; }
  grep -Eq ": [1-9][0-9]* dispatched" <<<"$err" || { echo "no kernel dispatched"; return 1; }
}
for b in saxpy vadd relu_clamp matmul conv2d batched_matmul saxpy_cuda; do
  step run_bundle "$b"
done
step "$dir/bin/gpu_bench"
echo; [ $fail -eq 0 ] && echo "GPU CHECK PASSED" || echo "GPU CHECK FAILED"
exit $fail
