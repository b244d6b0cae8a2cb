#!/usr/bin/env bash
# Makes the container images a kind node runs, named as kubeadm and kind
# expect them, and saves them into WORK/images.tar for node.sh to preload into
# the node's containerd. Called by build.sh, which sets WORK, K8S, CP_DIR.
#
# Each image is one layer made with `docker import` from a small root file
# system of Debian packages unpacked with dpkg-deb (distroless: no package
# manager, a shell only where the image's job needs one):
#   glibc     libc, for the cgo-linked Kubernetes binaries and etcd
#   iptables  libc and iptables (nft), nftables, conntrack, for kube-proxy
#   busybox   busybox-static, for local-path-provisioner's helper pod
#   (none)    for the static coredns, local-path-provisioner and pause
set -euo pipefail

: "${WORK:?}" "${K8S:?}" "${CP_DIR:?}"
bins=$WORK/k8s
gobin=$WORK/gobin
debs=$WORK/debs
rootfs=$WORK/rootfs
# shellcheck disable=SC1091
. "$WORK/manifests/images.env"

glibc_pkgs="libc6 libgcc-s1 gcc-12-base"
iptables_pkgs="$glibc_pkgs iptables libip4tc2 libip6tc2 libxtables12 libnftnl11 libmnl0 libnetfilter-conntrack3 libnfnetlink0 netbase conntrack nftables libnftables1 libjansson4 libgmp10 libedit2 libbsd0 libmd0 libtinfo6"

mkdir -p "$debs"
# The stamp is the package list: a package added here is downloaded.
if [ "$(cat "$debs/.done" 2>/dev/null)" != "$iptables_pkgs busybox-static" ]; then
	rm -f "$debs"/*.deb
	# As root, apt would warn that its _apt user cannot write here.
	(cd "$debs" && apt-get download -o APT::Sandbox::User=root $iptables_pkgs busybox-static >/dev/null)
	echo "$iptables_pkgs busybox-static" >"$debs/.done"
fi

deb() { ls "$debs/$1"_*.deb | head -n1; }

# mkroot DIR PKG...: unpack the packages into DIR in Debian 12's merged-/usr
# layout, with the few files every image wants.
mkroot() {
	local d=$1 p l
	shift
	rm -rf "$d"
	mkdir -p "$d"
	for p in "$@"; do dpkg-deb -x "$(deb "$p")" "$d"; done
	for l in bin sbin lib lib64; do
		if [ -d "$d/$l" ] && [ ! -L "$d/$l" ]; then
			mkdir -p "$d/usr/$l"
			cp -a "$d/$l/." "$d/usr/$l/"
			rm -rf "${d:?}/$l"
		fi
		[ -e "$d/$l" ] || ln -s "usr/$l" "$d/$l"
	done
	mkdir -p "$d/etc" "$d/tmp" "$d/run" "$d/var" "$d/proc" "$d/sys" "$d/dev"
	ln -sfn ../run "$d/var/run"
	chmod 1777 "$d/tmp"
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$d/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
	printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
	rm -rf "$d/usr/share/doc" "$d/usr/share/man" "$d/usr/share/info" "$d/usr/share/lintian" "$d/usr/share/locale"
}

mkroot "$rootfs/glibc" $glibc_pkgs
mkroot "$rootfs/iptables" $iptables_pkgs
# Unpacking runs no maintainer scripts, so update-alternatives never pointed
# iptables at the nft backend; kube-proxy and kind's node both use nft here.
for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
	ln -sf xtables-nft-multi "$rootfs/iptables/usr/sbin/$t"
done
rm -rf "$rootfs/busybox"
mkdir -p "$rootfs/busybox"
dpkg-deb -x "$(deb busybox-static)" "$rootfs/busybox"
(
	cd "$rootfs/busybox"
	mkdir -p tmp etc
	chmod 1777 tmp
	for a in sh mkdir rm rmdir ls cat chmod chown cp mv; do ln -sf busybox "bin/$a"; done
)

stage=$WORK/imgstage
rm -rf "$stage"
mkdir -p "$stage"
names=()
# image NAME BASE ENTRYPOINT [SRC DEST]...: BASE is a rootfs name or "-".
image() {
	local name=$1 base=$2 ep=$3 d
	shift 3
	d=$stage/${name//[\/:]/_}
	mkdir -p "$d"
	[ "$base" = - ] || cp -a "$rootfs/$base/." "$d/"
	while [ $# -gt 0 ]; do
		install -D -m 0755 "$1" "$d/$2"
		shift 2
	done
	tar -C "$d" --numeric-owner -c . | docker import \
		-c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		-c "ENTRYPOINT $ep" - "$name" >/dev/null
	rm -rf "$d"
	names+=("$name")
	echo "  $name" >&2
}

# Names as kubeadm lists them for this version (build.sh wrote the list).
kubeadm_image() { grep "/$1:" "$WORK/kubeadm-images.txt"; }
bin=/usr/local/bin
image "$(kubeadm_image kube-apiserver)" glibc "[\"$bin/kube-apiserver\"]" "$CP_DIR/kube-apiserver" "$bin/kube-apiserver"
image "$(kubeadm_image kube-controller-manager)" glibc "[\"$bin/kube-controller-manager\"]" "$CP_DIR/kube-controller-manager" "$bin/kube-controller-manager"
image "$(kubeadm_image kube-scheduler)" glibc "[\"$bin/kube-scheduler\"]" "$bins/kube-scheduler" "$bin/kube-scheduler"
image "$(kubeadm_image kube-proxy)" iptables "[\"$bin/kube-proxy\"]" "$bins/kube-proxy" "$bin/kube-proxy"
# kubeadm only checks etcd's tag; the binary is the control plane's etcd.
image "$(kubeadm_image etcd)" glibc "[\"$bin/etcd\"]" "$CP_DIR/etcd" "$bin/etcd"
image "$(kubeadm_image coredns)" - '["/coredns"]' "$gobin/coredns" coredns
image "$(kubeadm_image pause)" - '["/pause"]' "$gobin/pause" pause
image "$STORAGE_PROVISIONER_IMAGE" - "[\"$bin/local-path-provisioner\"]" "$gobin/local-path-provisioner" "$bin/local-path-provisioner"
image "$STORAGE_HELPER_IMAGE" busybox '["/bin/sh"]'

docker save -o "$WORK/images.tar" "${names[@]}"
# They live on in the tar and, after node.sh, inside the node image only.
docker rmi "${names[@]}" >/dev/null
rm -rf "$stage"
echo "  saved ${#names[@]} images to $WORK/images.tar ($(du -h "$WORK/images.tar" | cut -f1))" >&2
