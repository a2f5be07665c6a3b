#!/usr/bin/env bash
# The build's oracle step on every C sample: build time, kernels planned and shipped, and per
# kernel the oracle's cases and how many ran the kernel. Prints a Markdown table.
# Usage: benches/oracle-build.sh   (uses target/release/tensorwasm; builds it if missing)
#        TW=path/to/tensorwasm benches/oracle-build.sh   (another binary, e.g. an older build)
set -euo pipefail
cd "$(dirname "$0")/.."
tw=${TW:-target/release/tensorwasm}
if [ -z "${TW:-}" ] && [ ! -x "$tw" ]; then
  cargo build --release --locked -p tensorwasm --bin tensorwasm
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$tw keygen --out "$work/k" >/dev/null
echo "| sample | build ms | kernels shipped / planned | oracle per kernel: cases (ran the kernel; largest grid) |"
echo "|---|---:|---:|---|"
for f in samples/wasm/bare/*.wasm samples/wasm/wasi/*.wasm; do
  form=$(basename "$(dirname "$f")")
  $tw build "$f" -o "$work/o.twb" --key "$work/k.key" --json 2>/dev/null | python3 -c '
import json, sys
r = json.load(sys.stdin)
ks = r["kernels"]
cells = []
for k in ks:
    o = k.get("oracle")
    if o is None:
        cells.append(k["name"] + ": -")
        continue
    mark = "" if k["offloaded"] else " FAILED" if o.get("failure") else " dropped"
    grid = "; %d" % o["largest_grid"] if "largest_grid" in o else ""
    cells.append("%s: %d (%d%s)%s" % (k["name"], o["cases"], o["dispatched"], grid, mark))
print("| %s (%s) | %d | %d / %d | %s |" % (r["name"], sys.argv[1], r["duration_ms"],
      sum(k["offloaded"] for k in ks), len(ks), "; ".join(cells) or "-"))
' "$form"
done
