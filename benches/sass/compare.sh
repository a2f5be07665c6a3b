#!/usr/bin/env bash
# Code-quality benchmark: TensorWasm's PTX against the same kernels in plain CUDA C
# (benches/sass/kernels.cu) compiled by nvcc, compared in SASS. Installs nvcc, ptxas and
# cuobjdump from PyPI (scripts/cuda-tools --full; no GPU needed) and runs the Rust example
# blueprints/examples/sass_compare.rs, which prints a Markdown table (counting rules in its
# header). Arguments go to the example: [--dump DIR] [sm_80 sm_90 ...].
#
#   benches/sass/compare.sh                 # sm_80 and sm_90
#   benches/sass/compare.sh --dump /tmp/sass sm_80
#
# Set CARGO_TARGET_DIR to build elsewhere. Exit status: 0 all kernels within the target ratio,
# 2 some kernel over it, 1 an error (a tool missing, a spill, a kernel that fails to assemble).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$("$root/scripts/cuda-tools" --full)
export PATH="$bin:$PATH"
cd "$root"
exec cargo run -q --release -p tensorwasm-blueprints --example sass_compare -- "$@"
