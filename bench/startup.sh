#!/usr/bin/env bash
# Start-up benchmark: `kubectl hello` through krew-wasm against a native
# `kubectl-hello` built from the same source (guest/fixtures/hello), run side
# by side by hyperfine, alternating, on this machine. Prints medians and the
# difference, directly and through kubectl. Budget (DESIGN.md): within 2 ms.
#
#   bench/startup.sh [RUNS]        (default 300 runs per command)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${1:-300}
source scripts/lib/registry.sh
command -v hyperfine >/dev/null || { echo "install hyperfine: apt-get install -y hyperfine" >&2; exit 1; }

cargo build --locked --release -p krew-wasm
(cd guest && cargo build --locked --release --target wasm32-wasip2 -p hello)
(cd guest && cargo build --locked --release --target "$(rustc -vV | sed -n 's/host: //p')" -p hello)
host=$(rustc -vV | sed -n 's/host: //p')

work=$(mktemp -d)
registry_pid=
trap '[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT
start_registry
push_wasm guest/target/wasm32-wasip2/release/hello.wasm bench/hello:v1

export KREW_WASM_ROOT=$work/root KUBECONFIG=$work/none
mkdir -p "$work/native"
cp "guest/target/$host/release/hello" "$work/native/kubectl-hellonative"
export PATH=$KREW_WASM_ROOT/bin:$work/native:$PATH
"$repo/target/release/krew-wasm" pull "$registry/bench/hello:v1" >/dev/null
kill "$registry_pid"; registry_pid=

# Same output, or the comparison means nothing.
[ "$(kubectl hello a b)" = "$(kubectl hellonative a b)" ] || { echo "outputs differ" >&2; exit 1; }

hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/direct.json" \
  "$KREW_WASM_ROOT/bin/kubectl-hello a b" "$work/native/kubectl-hellonative a b" >/dev/null
hyperfine -N --warmup 10 --runs "$((runs / 3))" --export-json "$work/kubectl.json" \
  "kubectl hello a b" "kubectl hellonative a b" >/dev/null

python3 - "$work/direct.json" "$work/kubectl.json" <<'PY'
import json, sys
print(f"{'benchmark':<34}{'krew-wasm':>12}{'native':>12}{'difference':>13}{'ratio':>8}")
for label, path in [("plugin started directly", sys.argv[1]), ("through kubectl", sys.argv[2])]:
    wasm, native = (r["median"] * 1000 for r in json.load(open(path))["results"])
    print(f"{label:<34}{wasm:>10.2f}ms{native:>10.2f}ms{wasm - native:>+11.2f}ms{wasm / native:>7.1f}x")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), budget: within 2 ms of native"
