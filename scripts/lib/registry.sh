# Shell helpers shared by scripts/demo.sh and bench/: a throw-away
# docker-registry on 127.0.0.1 and a skopeo push of a .wasm file as a CNCF
# Wasm OCI artifact. Source this file; it expects $work to be a temp dir.

# start_registry: starts docker-registry, sets $registry (127.0.0.1:PORT) and $registry_pid.
start_registry() {
  cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: info, formatter: text, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: "127.0.0.1:0"}
YAML
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  local port=
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/registry.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$work/registry.log" >&2; echo "docker-registry did not start" >&2; return 1; }
  registry=127.0.0.1:$port
}

# push_wasm FILE REPO:TAG: writes an OCI layout for FILE and copies it to $registry.
push_wasm() {
  local wasm=$1 target=$2 layout
  layout=$(mktemp -d "$work/layout.XXXXXX")
  mkdir -p "$layout/blobs/sha256"
  _blob() { local d; d=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$layout/blobs/sha256/$d"; echo "sha256:$d $(stat -c %s "$1")"; }
  local os=wasip2
  [ "$(head -c 8 "$wasm" | od -An -tx1 | tr -d ' ')" = "0061736d01000000" ] && os=wasip1
  read -r layer_digest layer_size < <(_blob "$wasm")
  printf '{"architecture":"wasm","os":"%s","layerDigests":["%s"]}' "$os" "$layer_digest" > "$layout.config"
  read -r config_digest config_size < <(_blob "$layout.config")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/wasm","digest":"%s","size":%s}]}' \
    "$config_digest" "$config_size" "$layer_digest" "$layer_size" > "$layout.manifest"
  read -r manifest_digest manifest_size < <(_blob "$layout.manifest")
  printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"push"}}]}' \
    "$manifest_digest" "$manifest_size" > "$layout/index.json"
  skopeo copy --quiet --insecure-policy --preserve-digests --dest-tls-verify=false \
    "oci:$layout:push" "docker://$registry/$target"
}
