#!/usr/bin/env bash
# Installs what building and testing krew-wasm needs on a fresh Debian machine:
# the WASI targets of the pinned toolchain, Debian's docker-registry and skopeo
# (the real registry and the independent pusher the tests use), kubectl when
# the machine has none, openssl and script(1). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

rustup target add wasm32-wasip1 wasm32-wasip2

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v kubectl >/dev/null || need+=(kubernetes-client)
command -v curl >/dev/null || need+=(curl)
# Signing tests make keys and check signatures with openssl; the consent test
# answers krew-wasm's prompt through a real terminal made by script(1).
command -v openssl >/dev/null || need+=(openssl)
command -v script >/dev/null || need+=(bsdutils)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  sudo_if_needed apt-get update -qq
  # docker-registry's package tries to start a system service; we only use
  # the binary, started per test on 127.0.0.1.
  sudo_if_needed apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "setup: rust targets, docker-registry, skopeo, kubectl, openssl and script are ready"
