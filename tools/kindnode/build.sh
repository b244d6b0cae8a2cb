#!/usr/bin/env bash
# Builds gitopsim's kind node image offline: every piece comes from Debian
# packages, the Go module proxy and the control plane tools/controlplane
# builds, nothing from a container registry. Usage: build.sh
#
# Idempotent: the image carries a label with a hash of its recipe (this
# directory, the pinned versions and the control-plane binaries); when an image
# with that label exists, nothing is done. Intermediate results are kept in
# WORK (default bin/kindnode at the repo root), each behind its own stamp, so
# an interrupted build goes on where it stopped.
#
# The steps, as kind-offline.md (shared/reference) found them to work:
#   1. a Docker engine (docker.sh) and debootstrap, gcc, jq
#   2. the control plane (tools/controlplane/build.sh)
#   3. kubelet, kubeadm, kubectl, kube-proxy, kube-scheduler (this module)
#   4. crictl, coredns, local-path-provisioner (go install at pinned
#      versions), pause (gcc -static from the Kubernetes module's source), and
#      kind's storage manifest (read from the kind module by ./manifests)
#   5. the component images kubeadm and kind expect (images.sh)
#   6. the node's root file system and the image itself (node.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${WORK:-$root/bin/kindnode}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export WORK=$work
cd "$here"

# One build at a time: make kind-image and make e2e-kind share WORK.
exec 9>"$work/.lock"
if ! flock -n 9; then
	echo "[kind-image] another build of the node image is running; waiting for it" >&2
	flock 9
fi

# shellcheck source=versions.env
. ./versions.env
k8s=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
kind=$(cd "$root" && go list -m -f '{{.Version}}' sigs.k8s.io/kind)
image=${NODE_IMAGE:-$NODE_REPO:$k8s}
cp_dir=$root/bin/k8s/$k8s

# The three places that pin Kubernetes must agree, or the image would hold
# mismatched binaries or carry a tag gitopsim does not look for.
cp_k8s=$(cd "$root/tools/controlplane" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
sim_k8s=$(sed -n 's/^const KubernetesVersion = "\(.*\)"/\1/p' "$root/sim/cluster/assets.go")
if [ "$k8s" != "$cp_k8s" ] || [ "$k8s" != "$sim_k8s" ]; then
	echo "Kubernetes versions differ: tools/kindnode/go.mod $k8s, tools/controlplane/go.mod $cp_k8s, sim/cluster/assets.go $sim_k8s; make them one" >&2
	exit 1
fi
# The kubelet is linked against this host's glibc and the component images
# are this host's Debian packages, so the node's Debian must be the host's.
host_suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
if [ "$host_suite" != "$DEBIAN_SUITE" ]; then
	echo "the node image is Debian $DEBIAN_SUITE and is built from this host's packages and glibc; this host is ${host_suite:-not Debian}. Build it on Debian $DEBIAN_SUITE (or change DEBIAN_SUITE in tools/kindnode/versions.env to this host's release)." >&2
	exit 1
fi

step() { echo "[kind-image] $*" >&2; }
# Go and debootstrap are silent while they work; say every 30s that they
# still do, as make tools does.
ticking() { # what, command...
	local what=$1
	shift
	(while sleep 30; do echo "  still $what (${SECONDS}s so far)..." >&2; done) &
	local ticker=$!
	local rc=0
	"$@" || rc=$?
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	return "$rc"
}

recipe() {
	local f
	for f in kube-apiserver kube-controller-manager etcd; do
		[ -x "$cp_dir/$f" ] || { echo "$cp_dir/$f is missing after the control-plane build" >&2; return 1; }
	done
	{
		echo "k8s=$k8s kind=$kind"
		cat go.mod go.sum versions.env build.sh images.sh node.sh runc-wrap manifests/main.go node/*
		sha256sum "$cp_dir/kube-apiserver" "$cp_dir/kube-controller-manager" "$cp_dir/etcd" 2>/dev/null | cut -d' ' -f1
	} | sha256sum | cut -c1-16
}

step "1/6 Docker engine and host packages"
"$here/docker.sh" ensure
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -n "$(find /usr/lib -name libc.a -print -quit 2>/dev/null)" ] || need+=(libc6-dev)
command -v jq >/dev/null || need+=(jq)
command -v containerd >/dev/null || need+=(containerd)
if [ ${#need[@]} -gt 0 ]; then
	step "installing ${need[*]} with apt"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

step "2/6 control plane (kube-apiserver, kube-controller-manager, etcd)"
"$root/tools/controlplane/build.sh" >&2

want=$(recipe) || exit 1
have=$(docker image inspect -f '{{index .Config.Labels "org.gitopsim.recipe"}}' "$image" 2>/dev/null || true)
if [ "$have" = "$want" ]; then
	echo "kind node image $image is up to date (recipe $want)"
	exit 0
fi
step "building $image (recipe $want); cold, about 5 minutes on 2 cores once the control plane is built"

# 3. Node binaries, with the control plane's build settings (cgo on, as in
# tools/controlplane) so that the packages both builds share come from Go's
# build cache. The node's Debian userland has the same glibc as this host.
bins=$work/k8s
built_version() { "$bins/kubelet" --version 2>/dev/null | awk '{print $2}'; }
# What the binaries depend on besides their version: modules, toolchain,
# cgo, and this script's build line.
bins_stamp=$({ cat go.mod go.sum; go env GOVERSION CGO_ENABLED; grep -n 'go build' build.sh; } | sha256sum)
if [ "$(built_version)" != "$k8s" ] || [ "$(cat "$bins/.recipe" 2>/dev/null)" != "$bins_stamp" ]; then
	step "3/6 kubelet, kubeadm, kubectl, kube-proxy, kube-scheduler $k8s (a minute or two: most packages are in the control plane's build cache)"
	major=${k8s#v}
	major=${major%%.*}
	minor=${k8s#v*.}
	minor=${minor%%.*}
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
	mkdir -p "$bins"
	ticking "building the node binaries" go build -ldflags "$ldflags" -o "$bins/" \
		k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl \
		k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kube-scheduler
	[ "$(built_version)" = "$k8s" ] || { echo "built kubelet does not report $k8s" >&2; exit 1; }
	echo "$bins_stamp" >"$bins/.recipe"
else
	step "3/6 node binaries $k8s are built"
fi

# The images kubeadm pulls for this version; coredns is built at the version
# kubeadm names, so the two always agree.
"$bins/kubeadm" config images list --kubernetes-version "$k8s" >"$work/kubeadm-images.txt"
coredns=$(sed -n 's|.*/coredns:\(v.*\)$|\1|p' "$work/kubeadm-images.txt")
[ -n "$coredns" ] || { echo "kubeadm $k8s names no coredns image" >&2; exit 1; }

# 4. The other Go pieces, static (their images have no libc).
gobin=$work/gobin
mkdir -p "$gobin"
goinstall() { # name module@version
	local name=$1 mod=$2 stamp
	stamp="$mod $(go env GOVERSION) static -s -w"
	if [ "$(cat "$gobin/.$name" 2>/dev/null)" = "$stamp" ] && [ -x "$gobin/$name" ]; then
		return 0
	fi
	step "4/6 $mod"
	CGO_ENABLED=0 GOBIN=$gobin ticking "building $name" go install -ldflags "-s -w" "$mod"
	echo "$stamp" >"$gobin/.$name"
}
goinstall crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL"
goinstall coredns "github.com/coredns/coredns@$coredns"
goinstall local-path-provisioner "github.com/rancher/local-path-provisioner@$LOCAL_PATH"

pause_tag=$(sed -n 's|.*/pause:\(.*\)$|\1|p' "$work/kubeadm-images.txt")
if [ ! -x "$gobin/pause" ] || [ "$(cat "$gobin/.pause" 2>/dev/null)" != "$k8s/$pause_tag" ]; then
	step "4/6 pause $pause_tag (gcc -static, from the Kubernetes $k8s source)"
	src=$(go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
	gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag" -o "$gobin/pause" "$src"
	strip "$gobin/pause"
	echo "$k8s/$pause_tag" >"$gobin/.pause"
fi

kind_dir=$(cd "$root" && go mod download -json "sigs.k8s.io/kind@$kind" | jq -r .Dir)
go run ./manifests "$kind_dir" "$work/manifests"

step "5/6 component images (apiserver, controller-manager, scheduler, proxy, etcd, coredns, pause, local-path)"
KIND_DIR=$kind_dir K8S=$k8s CP_DIR=$cp_dir ./images.sh

step "6/6 node root file system and image"
KIND_DIR=$kind_dir K8S=$k8s IMAGE=$image RECIPE=$want DEBIAN_SUITE=$DEBIAN_SUITE DEBIAN_MIRROR=$DEBIAN_MIRROR \
	ticking "assembling the node" ./node.sh
echo "kind node image $image built in ${SECONDS}s (recipe $want); use it with gitopsim up --cluster kind --kind-image $image"
