#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd for the envtest
# backend into OUT (default: bin/k8s/<kubernetes version> at the repo root).
# Idempotent: when the binaries are there and report the pinned versions it
# does nothing. Versions come from this module's go.mod, the one place they
# are pinned.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
k8s=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
etcd=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
out=${1:-$here/../../bin/k8s/$k8s}
mkdir -p "$out"
out=$(cd "$out" && pwd)

matches() {
	[ -x "$out/kube-apiserver" ] && [ -x "$out/kube-controller-manager" ] && [ -x "$out/etcd" ] || return 1
	"$out/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $k8s" || return 1
	"$out/kube-controller-manager" --version 2>/dev/null | grep -qx "Kubernetes $k8s" || return 1
	"$out/etcd" --version 2>/dev/null | grep -qx "etcd Version: ${etcd#v}" || return 1
}

if matches; then
	echo "control plane $k8s (etcd $etcd) is up to date in $out"
	exit 0
fi

echo "building control plane $k8s (etcd $etcd) into $out; the first build takes about 5 minutes on 2 cores" >&2
# go build is silent while it works; say every 30s that it still does.
( while sleep 30; do echo "  still building the control plane (${SECONDS}s so far)..." >&2; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
major=${k8s#v}; major=${major%%.*}
minor=${k8s#v*.}; minor=${minor%%.*}
# Without these the binaries report v0.0.0-master, which version-checking
# clients refuse.
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
go build -ldflags "$ldflags" -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
go build -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
rm -f "$out/server" # left by older recipes that built etcd without -o

if ! matches; then
	echo "built binaries in $out do not report $k8s / etcd $etcd" >&2
	exit 1
fi
echo "control plane $k8s (etcd $etcd) built in $out"
