#!/usr/bin/env bash
# API benchmark: `kubectl decoder secret web-tls -n bench` (guest/plugins/decoder
# through krew-wasm and its API gateway) against `native-decoder`
# (crates/test-support/src/bin/native-decoder.rs: the same work with kube-rs,
# natively), both against the test API server (kube-api-serve) on 127.0.0.1,
# run side by side by hyperfine, alternating, on this machine. Prints medians,
# the difference and the ratio, directly and through kubectl, then the sizes
# of the binaries. Budget (DESIGN.md): an API plugin within 3 ms of native.
#
#   bench/api.sh [RUNS]        (default 200 runs per command)
#
# Builds the host in $CARGO_TARGET_DIR (default target/) and the guest in
# guest/target. Only 127.0.0.1 is contacted.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
runs=${1:-200}
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$repo/$target_dir ;; esac
source scripts/lib/registry.sh

need() { # TOOL PACKAGE
  command -v "$1" >/dev/null || {
    echo "bench/api.sh needs \`$1\`: install it with \`apt-get install -y $2\`" >&2
    exit 1
  }
}
need hyperfine hyperfine
need docker-registry docker-registry
need skopeo skopeo
need kubectl kubernetes-client
need python3 python3

# The host and the test binaries are built apart: built together, cargo would
# unify test-support's features into the krew-wasm binary (aws-lc-rs gains
# `ring-io` and `ring-sig-verify` from rcgen and jsonwebtoken, for one), and it
# would not be the binary users get.
cargo build --locked --release -p test-support --bins
cargo build --locked --release -p krew-wasm
# Each guest package alone, for the same reason: built with podwatch (as the
# tests build the fixtures), the SDK's `kube` feature would be unified in and
# decoder.wasm would not be its real size. A target directory of its own, so
# that a test run building the fixtures meanwhile cannot replace the file.
wasm_dir=$repo/guest/target/bench/wasm32-wasip2/release
guest_build() {
  (cd guest && env -u CARGO_TARGET_DIR -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
    cargo build --locked --release --target wasm32-wasip2 --target-dir target/bench -p "$1")
}
guest_build decoder
guest_build hello     # the no-SDK baseline, for its size
guest_build api-probe # the smallest SDK plugin in the tree, for its size

krew_wasm=$target_dir/release/krew-wasm
native=$target_dir/release/native-decoder
work=$(mktemp -d)
registry_pid=
serve_pid=
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

start_registry
push_wasm "$wasm_dir/decoder.wasm" bench/decoder:v1
export KREW_WASM_ROOT=$work/root
mkdir -p "$work/native"
ln -s "$native" "$work/native/kubectl-nativedecoder"
export PATH=$KREW_WASM_ROOT/bin:$work/native:$PATH
"$krew_wasm" pull "$registry/bench/decoder:v1" >/dev/null
kill "$registry_pid"; registry_pid=

# The API server: `ready` once its fixtures are in and the kubeconfig is
# written; it stops when its stdin (the coprocess pipe) closes or on SIGTERM.
coproc SERVE { exec "$target_dir/release/kube-api-serve" --kubeconfig "$work/kubeconfig" 2>"$work/serve.log"; }
serve_pid=$SERVE_PID
read -r -t 30 ready <&"${SERVE[0]}" || true
[ "${ready:-}" = ready ] || { cat "$work/serve.log" >&2; echo "kube-api-serve did not start" >&2; exit 1; }
export KUBECONFIG=$work/kubeconfig

# Both must succeed and describe the same certificates, or the comparison
# means nothing.
wasm_out=$(kubectl decoder secret web-tls -n bench) || { echo "kubectl decoder failed" >&2; exit 1; }
native_out=$(kubectl nativedecoder secret web-tls -n bench) || { echo "kubectl nativedecoder failed" >&2; exit 1; }
fingerprints=$(sed -n 's/.*SHA-256 fingerprint: *//p' <<<"$native_out")
[ "$(wc -l <<<"$fingerprints")" = 2 ] || { echo "native-decoder did not describe 2 certificates" >&2; exit 1; }
while read -r fp; do
  grep -qF "$fp" <<<"$wasm_out" || { echo "decoder's output lacks certificate $fp" >&2; exit 1; }
done <<<"$fingerprints"

# hyperfine runs all of one command, then all of the other; to keep drift
# (thermal, other load) out of the difference, alternate short rounds and pool
# the samples.
round() { # NAME RUNS CMD_A CMD_B
  hyperfine -N --warmup 2 --runs "$2" --export-json "$work/$1.$i.json" "$3" "$4" >/dev/null 2>&1
}
rounds=$(( (runs + 9) / 10 ))
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$rounds"); do
  round direct 10 "$KREW_WASM_ROOT/bin/kubectl-decoder secret web-tls -n bench" "$native secret web-tls -n bench"
  round kubectl 10 "kubectl decoder secret web-tls -n bench" "kubectl nativedecoder secret web-tls -n bench"
done

python3 - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
print(f"{'benchmark':<26}{'krew-wasm':>11}{'native':>11}{'difference':>12}{'ratio':>7}{'samples':>9}")
for name, label in [("direct", "plugin started directly"), ("kubectl", "through kubectl")]:
    samples, cpu = ([], []), ([], [])
    for i in range(1, rounds + 1):
        for j, result in enumerate(json.load(open(f"{work}/{name}.{i}.json"))["results"]):
            samples[j].extend(result["times"])
            cpu[j].append(result["user"] + result["system"])  # this round's mean
    wasm, native = (statistics.median(s) * 1000 for s in samples)
    print(f"{label:<26}{wasm:>9.2f}ms{native:>9.2f}ms{wasm - native:>+10.2f}ms{wasm / native:>6.2f}x{len(samples[0]):>9}")
    # CPU time does not grow when other processes take the cores: a check on
    # the wall-clock figures when the machine is not idle.
    wasm, native = (statistics.mean(c) * 1000 for c in cpu)
    print(f"{'  CPU (user+sys), mean':<26}{wasm:>9.2f}ms{native:>9.2f}ms{wasm - native:>+10.2f}ms{wasm / native:>6.2f}x")
PY
echo "wall-clock medians; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
  "load average before $load_before, after $(cut -d' ' -f1-3 /proc/loadavg); budget: within 3 ms of native"

echo
show_size() { # LABEL FILE
  printf '%-44s%12s bytes %8s\n' "$1" "$(stat -Lc %s "$2")" "($(numfmt --to=iec --suffix=B "$(stat -Lc %s "$2")"))"
}
show_size "decoder.wasm (blocking SDK helper)" "$wasm_dir/decoder.wasm"
show_size "decoder, precompiled (.cwasm)" "$(ls "$KREW_WASM_ROOT"/cache/*/*.cwasm)"
show_size "api-probe.wasm (smallest SDK plugin)" "$wasm_dir/api-probe.wasm"
show_size "hello.wasm (no SDK)" "$wasm_dir/hello.wasm"
show_size "krew-wasm host" "$krew_wasm"
show_size "native-decoder (kube-rs, rustls, x509-parser)" "$native"
