#!/usr/bin/env bash
# Load benchmark for tensorwasmd: a trivial invoke (`add(1, 2)` of samples/wat/arith.wat) at
# 32 connections with one wrk thread, printing requests/s, latency percentiles, errors, and the daemon's
# resident memory before, after warm-up, every 30 s of the run and at the end. Not run in CI.
#
#   benches/daemon-load.sh [DURATION_SECONDS=60] [CONNECTIONS=32] [THREADS=1] [ALLOCATOR=pooling]
#
# One wrk thread drives more requests than the daemon serves (over 50,000 req/s here); wrk
# shares the machine's two cores with the daemon, and a second wrk thread only takes CPU time
# from it (docs/PERFORMANCE.md has both). THREADS=2 measures that configuration.
#
# Needs: wrk (`apt-get install wrk`), and builds target/release/tensorwasmd and tensorwasm.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-60}
CONNS=${2:-32}
THREADS=${3:-1}
ALLOCATOR=${4:-pooling}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p tensorwasmd
cargo build --release -q -p tensorwasm
TW=target/release/tensorwasm
# TWD=PATH runs another build of the daemon (an A/B comparison against an older commit).
TWD=${TWD:-target/release/tensorwasmd}

work=$(mktemp -d)
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
TOKEN=bench-token-0123456789abcdef
"$TW" keygen --out "$work/k" >/dev/null
"$TW" build samples/wat/arith.wat -o "$work/arith.twb" --key "$work/k.key" --quiet
cat > "$work/tokens.toml" <<TOML
[[token]]
name = "bench"
tenant = "bench"
rights = ["deploy", "invoke", "read"]
token = "$TOKEN"
rate = 0
TOML

"$TWD" --listen 127.0.0.1:0 --data-dir "$work/data" --tokens "$work/tokens.toml" \
       --trusted "$work/k.pub" --log-level warn --allocator "$ALLOCATOR" > "$work/out" 2> "$work/err" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^tensorwasmd listening on //p' "$work/out")
[ -n "$URL" ] || { cat "$work/err" >&2; exit 1; }
curl -fsS -X PUT --data-binary @"$work/arith.twb" -H "Authorization: Bearer $TOKEN" \
     "$URL/v1/bundles/arith" >/dev/null
curl -fsS -d '[1, 2]' -H "Authorization: Bearer $TOKEN" "$URL/v1/bundles/arith/invoke/add"; echo

rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$pid/status"; }
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "[1, 2]"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT req/s=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f requests=%d non2xx_or_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
LUA
echo "RSS at start: $(rss)"
wrk -t"$THREADS" -c"$CONNS" -d5s -s "$work/post.lua" "$URL/v1/bundles/arith/invoke/add" | grep RESULT | sed 's/^/warm-up: /'
echo "RSS after warm-up: $(rss)"
# Resident memory every 30 s during the run, to see whether it levels off.
( t=0; while sleep 30; do t=$((t + 30)); echo "RSS at +${t}s: $(rss)"; done ) > "$work/rss" &
sampler=$!
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$work/post.lua" "$URL/v1/bundles/arith/invoke/add"
kill "$sampler" 2>/dev/null || true
cat "$work/rss"
echo "RSS after ${DURATION}s: $(rss)"
curl -fsS "$URL/metrics" | grep -E '^tensorwasmd_(invocations_total|refused_total)' || true
