#!/usr/bin/env bash
# Assembles the kind node's root file system in WORK/noderoot and imports it
# into Docker as IMAGE, labelled with RECIPE. Called by build.sh, which sets
# WORK, K8S, KIND_DIR, IMAGE, RECIPE, DEBIAN_SUITE and DEBIAN_MIRROR.
#
# It follows kind's images/base/Dockerfile (the base image) and
# pkg/build/nodeimage (the node image) with Debian's own containerd, runc
# and CNI plugins in place of the ones kind builds from Git, plus two changes
# this project needs (kind-offline.md):
#   - restrict_oom_score_adj in the node's containerd, because no process on
#     a host without CAP_SYS_RESOURCE may lower oom_score_adj;
#   - a static single-node CNI config instead of kindnetd, whose source is
#     not on the Go module proxy.
set -euo pipefail

: "${WORK:?}" "${K8S:?}" "${KIND_DIR:?}" "${IMAGE:?}" "${RECIPE:?}" "${DEBIAN_SUITE:?}" "${DEBIAN_MIRROR:?}"
here=$(cd "$(dirname "$0")" && pwd)
files=$KIND_DIR/images/base/files
base=$WORK/debian-$DEBIAN_SUITE
r=$WORK/noderoot
bins=$WORK/k8s
gobin=$WORK/gobin

# Debian minbase, kept between builds: it changes only with the suite.
if [ ! -f "$base/.done" ]; then
	echo "  debootstrap $DEBIAN_SUITE (minbase)" >&2
	rm -rf "$base"
	debootstrap --variant=minbase "$DEBIAN_SUITE" "$base" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
	touch "$base/.done"
fi

# A build killed in the chroot leaves proc mounted there; never delete
# through a mount.
umount "$r/proc" 2>/dev/null || true
rm -rf --one-file-system "$r"
cp -a "$base" "$r"
rm -f "$r/.done"

# The packages kind's base image installs, from Debian (containerd, runc and
# the CNI plugins too, which kind builds itself). No service may start in the
# chroot, hence policy-rc.d.
echo "  packages in the node (apt in a chroot)" >&2
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
chmod +x "$r/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$r/etc/resolv.conf"
mount -t proc proc "$r/proc"
trap 'umount "$r/proc" 2>/dev/null || true' EXIT
chroot "$r" /bin/sh -c 'export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq &&
	apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus \
		containerd runc containernetworking-plugins \
		conntrack iptables nftables iproute2 ethtool util-linux mount kmod \
		libseccomp2 pigz fuse-overlayfs e2fsprogs bash ca-certificates curl jq procps socat &&
	apt-get clean && rm -rf /var/lib/apt/lists/*' >"$WORK/node-apt.log" 2>&1 ||
	{ tail -n 20 "$WORK/node-apt.log" >&2; exit 1; }
umount "$r/proc"
trap - EXIT
rm -f "$r/usr/sbin/policy-rc.d"
: >"$r/etc/resolv.conf"

# kind's base image files and the Dockerfile's steps.
install -D -m 0755 -t "$r/usr/local/bin" "$files"/usr/local/bin/*
mkdir -p "$r/kind/bin" "$r/kind/manifests" "$r/LICENSES" "$r/etc/containerd" \
	"$r/etc/systemd/system/kubelet.service.d" "$r/etc/kubernetes/manifests"
install -m 0644 "$files/kind/README.txt" "$r/kind/"
install -m 0755 "$files"/kind/bin/* "$r/kind/bin/"
install -m 0644 "$files"/LICENSES/* "$r/LICENSES/"
install -m 0644 "$files/etc/crictl.yaml" "$r/etc/"
install -m 0644 "$files"/etc/containerd/* "$r/etc/containerd/"
install -m 0644 "$files"/etc/default/* "$r/etc/default/"
install -m 0644 "$files"/etc/sysctl.d/* "$r/etc/sysctl.d/"
find "$files/etc/systemd/system" -maxdepth 1 -type f -exec install -m 0644 -t "$r/etc/systemd/system/" {} +
install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$r/etc/systemd/system/kubelet.service.d/"
# kind's units run /usr/local/bin/containerd; Debian installs it in /usr/bin.
ln -sf /usr/bin/containerd "$r/usr/local/bin/containerd"
grep -q 'restrict_oom_score_adj = false' "$r/etc/containerd/config.toml" ||
	{ echo "kind's containerd config no longer sets restrict_oom_score_adj = false; check node.sh against it" >&2; exit 1; }
sed -i 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$r/etc/containerd/config.toml"
ctr oci spec |
	jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
	jq 'del(.process.rlimits)' >"$r/etc/containerd/cri-base.json"
find "$r/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$r"/lib/systemd/system/multi-user.target.wants/* "$r"/etc/systemd/system/*.wants/* \
	"$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/sockets.target.wants/*udev* \
	"$r"/lib/systemd/system/sockets.target.wants/*initctl* "$r"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>"$r/etc/systemd/journald.conf"
ln -sf /usr/lib/systemd/systemd "$r/sbin/init"
chroot "$r" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1
chroot "$r" systemctl mask systemd-binfmt.service >/dev/null 2>&1
mkdir -p "$r/opt/cni/bin" "$r/etc/cni/net.d"
for p in host-local loopback ptp portmap; do cp "$r/usr/lib/cni/$p" "$r/opt/cni/bin/"; done
install -m 0644 "$here/node/10-static.conflist" "$r/etc/cni/net.d/"

# The node image proper: Kubernetes binaries, version, manifests.
install -m 0755 "$bins/kubelet" "$bins/kubeadm" "$bins/kubectl" "$r/usr/bin/"
install -m 0755 "$gobin/crictl" "$r/usr/local/bin/"
printf '%s' "$K8S" >"$r/kind/version"
install -m 0644 "$here/node/default-cni.yaml" "$r/kind/manifests/default-cni.yaml"
install -m 0644 "$WORK/manifests/default-storage.yaml" "$r/kind/manifests/default-storage.yaml"

# Preload the component images into the node's containerd (namespace k8s.io,
# pinned, unpacked by the CRI plugin on first use) with a containerd of the
# host's own whose root is the node's /var/lib/containerd.
echo "  preloading images into the node's containerd" >&2
st=$(mktemp -d "$WORK/ctrd.XXXXXX")
cat >"$st/config.toml" <<TOML
version = 2
root = "$r/var/lib/containerd"
state = "$st/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$st/containerd.sock"
TOML
containerd --config "$st/config.toml" >"$st/log" 2>&1 &
ctrd=$!
trap 'kill $ctrd 2>/dev/null || true; wait $ctrd 2>/dev/null || true; rm -rf "$st"' EXIT
for _ in $(seq 100); do [ -S "$st/containerd.sock" ] && break; sleep 0.1; done
if [ ! -S "$st/containerd.sock" ]; then
	echo "containerd (for preloading images) did not start; its log:" >&2
	tail -n 20 "$st/log" >&2
	exit 1
fi
ctr -a "$st/containerd.sock" -n k8s.io images import --label=io.cri-containerd.pinned=pinned \
	--all-platforms --no-unpack --digests "$WORK/images.tar" >/dev/null
# --digests also names each image import-<date>@sha256:…; kind's own node
# images carry the same extra names.
ctr -a "$st/containerd.sock" -n k8s.io images ls -q | grep -v '^import-' | sed 's/^/    /' >&2
kill "$ctrd"
wait "$ctrd" 2>/dev/null || true
rm -rf "$st"
trap - EXIT

# One layer, with what kind's Dockerfile sets, except STOPSIGNAL, which
# docker import (20.10) refuses; kind removes its nodes with docker rm -f.
echo "  docker import $IMAGE" >&2
old=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
tar -C "$r" --numeric-owner -c . | docker import \
	-c 'ENV container=docker' \
	-c "LABEL org.gitopsim.recipe=$RECIPE org.gitopsim.kubernetes=$K8S" \
	-c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' - "$IMAGE" >/dev/null
rm -rf "$r" "$WORK/images.tar"
# The image this one replaces keeps no name; remove it unless a cluster
# still runs on it.
if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
	docker rmi "$old" >/dev/null 2>&1 || true
fi
docker image ls "$IMAGE" >&2
