#!/usr/bin/env bash
# The main job on a fresh machine: build tensorwasm and tensorwasmd, make a signing key, build
# samples into signed bundles (a C saxpy whose loop becomes a GPU kernel checked by the oracle),
# run them in-process, serve them with tensorwasmd, deploy and run them over HTTP with
# `tensorwasm remote`, and show where each kernel ran (also for a guest that launches its own
# PTX through wasi:cuda). Without a GPU, kernels run on the PTX interpreter (--backend emulated)
# or decline to the CPU loop (--backend none) with the same output.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "quickstart: needs a Rust toolchain (cargo) on PATH" >&2; exit 1; }

echo "==> building tensorwasm (release; the first build compiles Wasmtime and Cranelift, ~5 min on 2 cores)"
cargo build --release --locked -p tensorwasm --bin tensorwasm
echo "==> building tensorwasmd (runtime-only Wasmtime, no compiler)"
cargo build --release --locked -p tensorwasmd --bin tensorwasmd
tw=target/release/tensorwasm
twd=target/release/tensorwasmd
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
$tw build samples/wasm/bare/matmul.wasm -o "$work/matmul.twb" --key "$work/release.key" --emit-ptx "$work/kernels" --quiet
ls "$work/kernels"

echo "==> tensorwasm build of a C saxpy program (WASI): kernels, each checked by the oracle"
$tw build samples/wasm/wasi/saxpy.wasm -o "$work/saxpy.twb" --key "$work/release.key"

echo "==> run it: kernels on the PTX interpreter (no GPU here), then every loop on the CPU"
$tw run "$work/saxpy.twb" --trusted "$work/release.pub" --backend emulated --min-threads 1 --stats
echo
$tw run "$work/saxpy.twb" --trusted "$work/release.pub" --backend none --stats
echo

echo "==> serve it: tensorwasmd on a loopback port, deploy, run over HTTP"
data="$work/daemon"
rm -rf "$data" && mkdir -p "$data/keys"
cp "$work/release.pub" "$data/keys/"
token="quickstart-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
cat > "$data/tokens.toml" <<TOKENS
[[token]]
name = "quickstart"
tenant = "demo"
rights = ["deploy", "invoke", "read"]
token = "$token"
TOKENS
chmod 600 "$data/tokens.toml"
$twd --data-dir "$data/store" --tokens "$data/tokens.toml" --trusted "$data/keys" \
  --listen 127.0.0.1:0 --backend emulated --min-threads 1 --log-level warn > "$data/out" &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$data/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^tensorwasmd listening on //p' "$data/out")
# The client: `tensorwasm remote`, with the token from the environment (never argv).
export TENSORWASM_URL="$url" TENSORWASM_TOKEN="$token"
$tw remote deploy "$work/saxpy.twb"

echo "==> run it over HTTP, and where each kernel ran (--stats)"
$tw remote run saxpy --stats

echo "==> a guest that brings its own PTX: wasi:cuda (samples/c/cuda/saxpy_cuda.c)"
$tw build samples/wasm/cuda/saxpy_cuda.wasm -o "$work/saxpy_cuda.twb" --key "$work/release.key" \
  --oracle-cases 100 --quiet
$tw remote deploy "$work/saxpy_cuda.twb"
$tw remote run saxpy_cuda --stats

echo "==> the daemon's kernel counters"
curl -sS "$url/metrics" | grep '^tensorwasmd_kernel_dispatches' || true
kill $daemon
