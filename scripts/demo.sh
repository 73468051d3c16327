#!/usr/bin/env bash
# The main job end to end: build krew-wasm and the hello plugin, start a
# registry on 127.0.0.1, push the plugin with skopeo (as a CNCF Wasm OCI
# artifact), pull it with krew-wasm and run it through the real kubectl.
# Everything happens in a temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/lib/registry.sh

echo "==> building krew-wasm and the hello plugin"
cargo build --locked -p krew-wasm
(cd guest && cargo build --locked --release --target wasm32-wasip2 -p hello)
krew_wasm=$repo/target/debug/krew-wasm

work=$(mktemp -d)
registry_pid=
trap '[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT

echo "==> starting docker-registry on 127.0.0.1"
start_registry
echo "==> pushing hello.wasm to $registry/plugins/hello:v1 with skopeo"
push_wasm guest/target/wasm32-wasip2/release/hello.wasm plugins/hello:v1

export KREW_WASM_ROOT=$work/krew-wasm
export PATH=$KREW_WASM_ROOT/bin:$PATH
export KUBECONFIG=$work/no-kubeconfig
echo "==> krew-wasm pull $registry/plugins/hello:v1"
"$krew_wasm" pull "$registry/plugins/hello:v1"
echo "==> krew-wasm list"
"$krew_wasm" list
echo "==> kubectl hello a b"
kubectl hello a b
echo "==> kubectl plugin list"
kubectl plugin list 2>&1 | grep -F "$KREW_WASM_ROOT/bin"
echo "==> done: pushed, pulled and run through kubectl"
