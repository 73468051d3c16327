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

# hyperfine runs all of one command, then all of the other; to keep drift
# (thermal, other load) out of the difference, alternate short rounds and pool
# the samples.
round() { # NAME RUNS CMD_A CMD_B
  hyperfine -N --warmup 3 --runs "$2" --export-json "$work/$1.$i.json" "$3" "$4" >/dev/null 2>&1
}
rounds=$(( runs / 10 ))
for i in $(seq "$rounds"); do
  round direct 10 "$KREW_WASM_ROOT/bin/kubectl-hello a b" "$work/native/kubectl-hellonative a b"
  round kubectl 4 "kubectl hello a b" "kubectl hellonative a b"
done

python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
print(f"{'benchmark':<26}{'krew-wasm':>11}{'native':>11}{'difference':>12}{'ratio':>7}{'samples':>9}")
for name, label in [("direct", "plugin started directly"), ("kubectl", "through kubectl")]:
    samples = ([], [])
    for i in range(1, rounds + 1):
        for j, result in enumerate(json.load(open(f"{work}/{name}.{i}.json"))["results"]):
            samples[j].extend(result["times"])
    wasm, native = (statistics.median(s) * 1000 for s in samples)
    print(f"{label:<26}{wasm:>9.2f}ms{native:>9.2f}ms{wasm - native:>+10.2f}ms{wasm / native:>6.1f}x{len(samples[0]):>9}")
PY
echo "medians; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); budget: within 2 ms of native"
