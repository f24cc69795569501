#!/usr/bin/env bash
# Builds the real Kubernetes control plane the tests run against, from Go modules at a pinned version:
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from k8s.io/kubernetes, and etcd
# from go.etcd.io/etcd. The binaries are cached outside the repository, keyed by version, so only the
# first run builds (minutes, both cores). Prints the directory that holds them.
#
#   scripts/k8s-control-plane.sh build     build what is missing (default), print the bin directory
#   scripts/k8s-control-plane.sh path      print the bin directory, fail when anything is missing
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces every k8s.io/<staging> module with
# ./staging/src/..., which a module download does not resolve. A small wrapper module requires it and
# replaces each staging module with its published v0.<minor>.<patch> release instead.
set -euo pipefail

K8S_VERSION="${SLOSERVE_K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${SLOSERVE_ETCD_VERSION:-v3.6.16}"
CACHE="${SLOSERVE_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sloserve/k8s}/${K8S_VERSION}"
BIN="$CACHE/bin"
TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd)

missing() {
  for t in "${TOOLS[@]}"; do [ -x "$BIN/$t" ] || return 0; done
  return 1
}

cmd="${1:-build}"
case "$cmd" in
  path)
    if missing; then
      echo "k8s-control-plane: binaries for $K8S_VERSION are not built; run scripts/k8s-control-plane.sh build" >&2
      exit 1
    fi
    echo "$BIN"
    exit 0
    ;;
  build) ;;
  *)
    echo "usage: $0 [build|path]" >&2
    exit 2
    ;;
esac

if ! missing; then
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || {
  echo "k8s-control-plane: Go is required to build the control plane (https://go.dev/doc/install)" >&2
  exit 1
}

# One build at a time (test files may ask concurrently); the loser waits and reuses the result.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if ! missing; then
  echo "$BIN"
  exit 0
fi

export GOFLAGS="-buildvcs=false"
export CGO_ENABLED=0
log="$CACHE/build.log"
: >"$log"
started=$(date +%s)

# --- Kubernetes: wrapper module with the staging modules replaced by their releases --------------------
wrap="$CACHE/src/kubernetes"
mkdir -p "$wrap" "$BIN"
minor="${K8S_VERSION#v1.}"
staging_version="v0.${minor}"
upstream_mod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
[ -f "$upstream_mod" ] || {
  echo "k8s-control-plane: could not download k8s.io/kubernetes@${K8S_VERSION}" >&2
  exit 1
}
go_directive=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream_mod" | head -1)
{
  echo "module sloserve.local/k8s-control-plane"
  echo
  echo "go ${go_directive}"
  echo
  echo "require k8s.io/kubernetes ${K8S_VERSION}"
  echo
  echo "replace ("
  sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/k8s.io/[a-z0-9-]*$#\t\1 => \1 '"${staging_version}"'#p' "$upstream_mod"
  echo ")"
} >"$wrap/go.mod"
cat >"$wrap/tools.go" <<'EOF'
//go:build tools

package tools
EOF
ldflags="-s -w"
for kv in "gitVersion=${K8S_VERSION}" "gitMajor=1" "gitMinor=${minor%%.*}" "gitTreeState=clean"; do
  ldflags+=" -X k8s.io/component-base/version.${kv} -X k8s.io/client-go/pkg/version.${kv}"
done
echo "k8s-control-plane: building Kubernetes ${K8S_VERSION} (first time only; several minutes)" >&2
(
  cd "$wrap"
  go build -mod=mod -trimpath -ldflags "$ldflags" -o "$BIN/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl
) >>"$log" 2>&1 || {
  echo "k8s-control-plane: building Kubernetes failed; last lines of $log:" >&2
  tail -30 "$log" >&2
  exit 1
}

# --- etcd: its server's main package behind a two-line wrapper ----------------------------------------
ewrap="$CACHE/src/etcd"
mkdir -p "$ewrap"
cat >"$ewrap/go.mod" <<EOF
module sloserve.local/etcd

go 1.24

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
EOF
cat >"$ewrap/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
echo "k8s-control-plane: building etcd ${ETCD_VERSION}" >&2
(
  cd "$ewrap"
  go build -mod=mod -trimpath -ldflags "-s -w" -o "$BIN/etcd" .
) >>"$log" 2>&1 || {
  echo "k8s-control-plane: building etcd failed; last lines of $log:" >&2
  tail -30 "$log" >&2
  exit 1
}
echo "k8s-control-plane: built in $(($(date +%s) - started)) s into $BIN" >&2
echo "$BIN"
