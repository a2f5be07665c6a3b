#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need when it is missing
# (NVIDIA's ptxas from PyPI, with no GPU and no CUDA install), then checks formatting and lints
# and runs every test. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "test.sh: needs a Rust toolchain (cargo) on PATH" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

if ! command -v ptxas >/dev/null; then
  echo "==> installing ptxas (nvidia-cuda-nvcc wheel from PyPI)"
  PATH="$(scripts/cuda-tools):$PATH"
  export PATH
fi
# Kernel tests must not silently skip when ptxas is missing.
export TENSORWASM_REQUIRE_PTXAS=1
ptxas --version | tail -n 1

# A one-shot build gains nothing from incremental state, which costs over a gigabyte of disk.
export CARGO_INCREMENTAL=0

echo "==> cargo fmt --check"
cargo fmt --all --check

echo "==> architecture invariants (docs/ARCHITECTURE.md)"
bash scripts/check-architecture.sh

echo "==> cargo clippy"
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "==> cargo test"
cargo test --locked --workspace
