#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the kind node image and the kind
# backend. Usage: docker.sh [ensure|check]
#
#   ensure (default)  installs docker.io (and jq) with apt when dockerd is
#                     missing, and starts dockerd when no engine answers.
#   check             exits 0 when an engine answers or could be installed and
#                     started here, and prints why not otherwise (for CI).
#
# Nothing from a container may leave this machine. A dockerd started here
# therefore has IP forwarding off (it leaves net.ipv4.ip_forward at 0) and
# masquerading off on its default bridge; since kind's own network asks for
# masquerading anyway, rules in DOCKER-USER (which Docker never flushes) drop
# whatever a container bridge would forward to another interface, whatever
# the forwarding setting. dockerd runs with a clean environment, a config file
# of its own (not /etc/docker/daemon.json) and a proxy on a closed local port,
# so an image pull fails at once instead of reaching out.
# When the host's capability bounding set lacks CAP_SYS_RESOURCE, the runc
# wrapper beside this script becomes the default runtime (see runc-wrap).
# Its pid file and log are in STATE (default bin/kindnode at the repo root).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=${STATE:-$here/../../bin/kindnode}
mkdir -p "$state" && state=$(cd "$state" && pwd)
mode=${1:-ensure}

answers() { docker info >/dev/null 2>&1; }

# Bit 24 of the bounding set is CAP_SYS_RESOURCE.
lacks_sys_resource() {
	local bnd
	bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
	(((0x$bnd >> 24) & 1)) && return 1
	return 0
}

why_not() {
	if [ "$(id -u)" != 0 ]; then
		echo "not root: dockerd cannot be installed or started by this script"
		return 0
	fi
	if ! command -v dockerd >/dev/null && ! command -v apt-get >/dev/null; then
		echo "no dockerd and no apt-get to install docker.io"
		return 0
	fi
	if [ ! -d /sys/fs/cgroup ]; then
		echo "no cgroup file system at /sys/fs/cgroup"
		return 0
	fi
	return 1
}

install_packages() {
	local need=()
	command -v dockerd >/dev/null || need+=(docker.io)
	command -v jq >/dev/null || need+=(jq)
	command -v iptables >/dev/null || need+=(iptables)
	[ ${#need[@]} -eq 0 ] && return 0
	echo "installing ${need[*]} with apt (for the kind node image and the kind backend)" >&2
	apt-get update -qq
	# The package's service would start an engine with forwarding on (and
	# turn net.ipv4.ip_forward on); policy-rc.d keeps it from starting.
	local prc=/usr/sbin/policy-rc.d had=
	[ -e "$prc" ] && had=$(mktemp) && cp -p "$prc" "$had"
	printf '#!/bin/sh\nexit 101\n' >"$prc"
	chmod +x "$prc"
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null || rc=$?
	if [ -n "$had" ]; then mv "$had" "$prc"; else rm -f "$prc"; fi
	[ "$rc" = 0 ] || return "$rc"
	if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
		systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
	fi
}

# isolate makes sure nothing a container sends is forwarded off the machine.
isolate() {
	local rule
	for rule in "-i br-+ ! -o br-+" "-i docker0 ! -o docker0"; do
		# shellcheck disable=SC2086
		iptables -C DOCKER-USER $rule -j DROP 2>/dev/null || iptables -I DOCKER-USER $rule -j DROP
	done
	if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != 0 ]; then
		echo "warning: net.ipv4.ip_forward is 1 on this host (something else turned it on); the DOCKER-USER rules still keep containers' traffic in" >&2
	fi
}

start() {
	mkdir -p "$state"
	local args=(--ip-forward=false --ip-masq=false --log-driver=json-file
		--pidfile "$state/dockerd.pid")
	if lacks_sys_resource; then
		install -m 0755 "$here/runc-wrap" "$state/runc-wrap"
		args+=(--add-runtime "runc-wrap=$state/runc-wrap" --default-runtime runc-wrap)
		echo "this host's capability bounding set lacks CAP_SYS_RESOURCE: dockerd runs containers through $state/runc-wrap" >&2
	fi
	echo '{}' >"$state/daemon.json"
	args+=(--config-file "$state/daemon.json")
	echo "starting dockerd (no forwarding off this machine, pulls blocked; log: $state/dockerd.log)" >&2
	env -i PATH="$PATH" HOME="${HOME:-/root}" \
		HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
		setsid nohup dockerd "${args[@]}" >"$state/dockerd.log" 2>&1 </dev/null &
	local i
	for ((i = 0; i < 60; i++)); do
		if answers; then
			isolate
			return 0
		fi
		if ! kill -0 $! 2>/dev/null; then
			echo "dockerd exited; the end of $state/dockerd.log:" >&2
			tail -n 15 "$state/dockerd.log" >&2
			return 1
		fi
		sleep 0.5
	done
	echo "dockerd did not answer within 30s; see $state/dockerd.log" >&2
	return 1
}

case $mode in
check)
	if answers; then exit 0; fi
	if reason=$(why_not); then
		echo "$reason"
		exit 1
	fi
	exit 0
	;;
ensure)
	if answers; then
		if [ "$(id -u)" = 0 ] && command -v iptables >/dev/null; then
			isolate
		fi
		if lacks_sys_resource && [ "$(docker info -f '{{.DefaultRuntime}}' 2>/dev/null)" = runc ]; then
			echo "warning: a Docker engine not started by gitopsim answers, with runc as its default runtime; on this host (no CAP_SYS_RESOURCE) its privileged containers fail. Stop it and rerun to get one with $here/runc-wrap." >&2
		fi
		exit 0
	fi
	if reason=$(why_not); then
		echo "cannot run Docker here: $reason" >&2
		exit 1
	fi
	install_packages
	start
	;;
*)
	echo "usage: $0 [ensure|check]" >&2
	exit 2
	;;
esac
