#!/usr/bin/env bash
# Builds the kubectl that the Flux v1 image runs into OUT (default:
# bin/kubectl/<version> at the repo root), for the e2e divergence suite.
# Idempotent: when the binary is there and reports the pinned version it does
# nothing. The version comes from this module's go.mod.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
v=$(go list -m -f '{{.Version}}' k8s.io/kubectl) # v0.21.14 is kubectl v1.21.14
k="v1.${v#v0.}"
out=${1:-$here/../../bin/kubectl/$k}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The stamp is the recipe's inputs, so that a change to them rebuilds.
stamp=$(cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)
ok() {
	[ -x "$out/kubectl" ] && [ "$(cat "$out/.recipe" 2>/dev/null)" = "$stamp" ] &&
		"$out/kubectl" version --client --short 2>/dev/null | grep -qx "Client Version: $k"
}

if ok; then
	echo "kubectl $k (Flux v1's) is up to date in $out"
	exit 0
fi
echo "building kubectl $k (the one the Flux v1 image runs) into $out; about 2 minutes on 2 cores" >&2
( while sleep 30; do echo "  still building kubectl (${SECONDS}s so far)..." >&2; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
major=${k#v}; major=${major%%.*}
minor=${k#v*.}; minor=${minor%%.*}
go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$k -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean" -o "$out/kubectl" .
echo "$stamp" >"$out/.recipe"
if ! ok; then
	echo "built $out/kubectl does not report $k" >&2
	exit 1
fi
echo "kubectl $k built in $out"
