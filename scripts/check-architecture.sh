#!/usr/bin/env bash
# Checks the architecture invariants of docs/ARCHITECTURE.md that a command can check (the
# rest are tests, named there). Quick: cargo metadata only, no build. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
no() { # no WHAT PACKAGE DEPENDENCY...: PACKAGE must not depend on any DEPENDENCY (normal deps)
  local what=$1 pkg=$2; shift 2
  for dep in "$@"; do
    # Prints the paths from PACKAGE to DEPENDENCY; nothing (or an error: no such package in
    # the lock file) when there is none.
    if [[ -n $(cargo tree --locked -q -e normal -p "$pkg" -i "$dep" 2>/dev/null) ]]; then
      echo "check-architecture: $pkg depends on $dep ($what)" >&2
      fail=1
    fi
  done
}
no "the daemon deserializes and never compiles" tensorwasmd wasmtime-cranelift cranelift-codegen tensorwasm tensorwasm-offload
no "the offload pipeline builds and tests without a Wasm engine" tensorwasm-offload wasmtime cranelift-codegen
no "the guard is pure" tensorwasm-guard wasmtime cranelift-codegen wasm-encoder
no "the analysis stays light" tensorwasm-analysis wasmtime wasm-encoder tensorwasm-blueprints
no "the bundle format knows nothing of engines or kernels" tensorwasm-bundle wasmtime tensorwasm-analysis tensorwasm-guard
# Tests of the offload crate build no Cranelift either (dev-dependencies included).
if cargo tree --locked -q -e normal,dev -p tensorwasm-offload | grep -q cranelift; then
  echo "check-architecture: cargo test -p tensorwasm-offload would build Cranelift" >&2
  fail=1
fi
# Unsafe code: forbidden everywhere but the oracle (the CUDA runner) and the daemon (restore).
for c in analysis blueprints bundle compiler guard offload; do
  grep -q '^#!\[forbid(unsafe_code)\]' "$c/src/lib.rs" || { echo "check-architecture: $c does not forbid unsafe code" >&2; fail=1; }
done
for c in oracle daemon; do
  grep -q '^#!\[deny(unsafe_code)\]' "$c/src/lib.rs" || { echo "check-architecture: $c does not deny unsafe code" >&2; fail=1; }
done
allowed=$(grep -rln 'allow(unsafe_code)' --include=*.rs ./*/src | sort | tr '\n' ' ')
if [[ $allowed != "./daemon/src/restore.rs ./oracle/src/cuda.rs " ]]; then
  echo "check-architecture: unsafe code allowed in: $allowed (only daemon/src/restore.rs and oracle/src/cuda.rs may)" >&2
  fail=1
fi
# One guard: only guard/ evaluates a kernel's conditions.
if grep -rn 'fn check(' --include=*.rs daemon/src compiler/src offload/src | grep -q 'OffloadKernel'; then
  echo "check-architecture: a second guard evaluation outside guard/" >&2
  fail=1
fi
[[ $fail == 0 ]] && echo "check-architecture: every invariant holds"
exit $fail
